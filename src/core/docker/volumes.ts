/**
 * Named volumes through the Docker Engine API (v1.41): existence, create, remove, size, and
 * streaming their files out and in as tar.
 *
 * Files are read and written without starting anything and without pulling an image: a
 * container is *created* (never started) from the local helper image ({@link ensureHelperImage})
 * with the volume mounted at `/data`, then `GET /containers/{id}/archive?path=/data/.` streams
 * the files out and `PUT /containers/{id}/archive?path=/data` streams them in. The helper
 * container is removed when the stream ends or fails.
 *
 * What survives the engine's archive endpoints (verified against Docker 20.10): numeric
 * owners (uid/gid), modes including setuid/setgid/sticky, symlinks, hardlinks (as tar link
 * entries), empty directories and mtimes. `copyUIDGID` is *not* used: with it the engine would
 * chown every file to the container's user, so it is left off to keep the owners in the tar.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type Docker from "dockerode";
import tar from "tar-stream";
import { interrupted, onAbort } from "../abort.js";
import { DockpackError, toDockpackError } from "../errors.js";
import { onCleanup } from "../fs.js";
import { engineMessage, requireEngine, statusCode } from "./client.js";
import { helperHooks as hooks } from "./helper-hooks.js";
import { ensureHelperImage, HELPER_IMAGE, helperLabels } from "./helper-image.js";
import { gatedPrefixedTar } from "./tar-gate.js";
import { renameTarEntries } from "./tar-rename.js";

/** Where the helper container mounts the volume. */
const MOUNT = "/data";

function notFound(name: string): DockpackError {
  return new DockpackError("VOLUME_NOT_FOUND", `Docker volume '${name}' does not exist.`, {
    hint: "List volumes with 'docker volume ls'; create it first (createVolume) when importing.",
    details: { volume: name },
  });
}

function engineError(what: string, name: string, err: unknown): DockpackError {
  return new DockpackError(
    "VOLUME_FAILED",
    `Docker volume '${name}': ${what} failed: ${engineMessage(err)}`,
    {
      hint: "Check that the Docker Engine is running and the volume is not in a broken state.",
      cause: err,
      details: { volume: name },
    },
  );
}

/** True when the named volume exists (GET /volumes/{name}). */
export async function volumeExists(name: string): Promise<boolean> {
  const docker = await requireEngine();
  try {
    await docker.getVolume(name).inspect();
    return true;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    throw engineError("inspect", name, err);
  }
}

/**
 * Creates the named volume with the `local` driver (or `options.driver` with `options.driverOpts`,
 * e.g. a bind-style `{type: none, o: bind, device}`) and the given labels (POST /volumes/create).
 * Throws `VOLUME_EXISTS` when it already exists (so that no user data is reused by accident).
 */
export async function createVolume(
  name: string,
  labels: Record<string, string> = {},
  options: { driver?: string; driverOpts?: Record<string, string> } = {},
): Promise<void> {
  const docker = await requireEngine();
  if (await volumeExists(name)) {
    throw new DockpackError("VOLUME_EXISTS", `Docker volume '${name}' already exists.`, {
      hint: "Choose another name, or remove it first (docker volume rm) if its data is not needed.",
      details: { volume: name },
    });
  }
  try {
    await docker.createVolume({
      Name: name,
      Driver: options.driver ?? "local",
      Labels: labels,
      ...(options.driverOpts ? { DriverOpts: options.driverOpts } : {}),
    });
  } catch (err) {
    throw engineError("create", name, err);
  }
}

/**
 * Removes the named volume (DELETE /volumes/{name}). Throws `VOLUME_NOT_FOUND` when missing and
 * `VOLUME_IN_USE` when a container still uses it.
 */
export async function removeVolume(name: string): Promise<void> {
  const docker = await requireEngine();
  try {
    await docker.getVolume(name).remove();
  } catch (err) {
    if (statusCode(err) === 404) throw notFound(name);
    if (statusCode(err) === 409) {
      throw new DockpackError("VOLUME_IN_USE", `Docker volume '${name}' is in use by a container.`, {
        hint: "Remove the containers that use it first (docker ps -a --filter volume=NAME).",
        cause: err,
        details: { volume: name },
      });
    }
    throw engineError("remove", name, err);
  }
}

/**
 * The volume's size in bytes: the engine's `GET /system/df` `Volumes[].UsageData.Size` (the
 * local driver walks the volume directory; disk usage, so it counts blocks). When the engine
 * reports -1 (unknown, e.g. other drivers) the sum of the file sizes in {@link readVolumeTar}'s
 * stream is returned instead. Throws `VOLUME_NOT_FOUND`.
 */
export async function volumeSize(name: string): Promise<number> {
  const docker = await requireEngine();
  if (!(await volumeExists(name))) throw notFound(name);
  try {
    const df = (await docker.df()) as { Volumes?: Array<{ Name: string; UsageData?: { Size?: number } }> };
    const size = df.Volumes?.find((v) => v.Name === name)?.UsageData?.Size;
    if (typeof size === "number" && size >= 0) return size;
  } catch {
    // fall back to the walk below
  }
  return sumTarSizes(await readVolumeTar(name));
}

async function sumTarSizes(input: Readable): Promise<number> {
  let total = 0;
  const extract = tar.extract();
  extract.on("entry", (header, body, next) => {
    if (header.type === "file" || header.type === "contiguous-file") total += header.size ?? 0;
    body.on("end", next);
    body.resume();
  });
  await pipeline(input, extract);
  return total;
}

/** Unregister functions of the exit cleanups of live helper containers, by container id. */
const cleanups = new Map<string, () => void>();

/** Names of live helper containers, by container id (for the helper hooks, helper-hooks.ts). */
const names = new Map<string, string>();

/** Creates (never starts) a helper container with `volume` mounted at /data. Returns it. */
async function helperContainer(docker: Docker, volume: string, readOnly: boolean): Promise<Docker.Container> {
  await ensureHelperImage(docker);
  const name = `dockpack-helper-${randomBytes(6).toString("hex")}`;
  await hooks()?.beforeCreate(name, volume);
  try {
    const container = await docker.createContainer({
      name,
      Image: HELPER_IMAGE,
      Labels: { ...helperLabels(), "io.dockpack.volume": volume },
      NetworkDisabled: true,
      HostConfig: {
        Mounts: [{ Type: "volume", Source: volume, Target: MOUNT, ReadOnly: readOnly }],
        NetworkMode: "none",
      },
    });
    hooks()?.created(name);
    // An interrupted run (SIGINT/SIGTERM, process.exit) leaves no helper container behind.
    cleanups.set(
      container.id,
      onCleanup(
        () => removeQuietly(container),
        () => {
          const r = spawnSync("docker", ["rm", "-f", container.id], { stdio: "ignore", timeout: 10_000 });
          if (r.status === 0) hooks()?.removed(name);
        },
      ),
    );
    names.set(container.id, name);
    return container;
  } catch (err) {
    // the engine answered with a refusal: nothing was created (no answer: it may still land)
    if (statusCode(err) !== undefined) hooks()?.removed(name);
    throw engineError("mounting in a helper container", volume, err);
  }
}

async function removeQuietly(container: Docker.Container): Promise<void> {
  cleanups.get(container.id)?.();
  cleanups.delete(container.id);
  try {
    await container.remove({ force: true, v: false });
  } catch (err) {
    // already gone (404) counts as removed; otherwise the ledger keeps the name for the recovery
    if (statusCode(err) !== 404) return;
  }
  const name = names.get(container.id);
  names.delete(container.id);
  if (name) hooks()?.removed(name);
}

/**
 * Streams the files of a named volume as an uncompressed tar (Docker Engine API
 * `GET /containers/{id}/archive?path=/data/.`).
 *
 * Entry names are relative to the volume root: the root directory itself is the first entry,
 * named `./` (it carries the root's owner and mode), every other entry has no prefix (`db/`,
 * `db/PG_VERSION`, `link -> target`); hardlink targets are renamed the same way. Owners are
 * numeric (uname/gname are whatever the engine found, usually empty). Long names use PAX
 * headers. Nothing is buffered: entries are re-emitted one by one as they arrive.
 *
 * The helper container is removed when the returned stream ends, fails or is destroyed.
 * Throws `VOLUME_NOT_FOUND` when the volume does not exist (the engine would otherwise create
 * it silently), `VOLUME_FAILED` when the engine refuses.
 */
export async function readVolumeTar(name: string): Promise<Readable> {
  const docker = await requireEngine();
  if (!(await volumeExists(name))) throw notFound(name);
  const container = await helperContainer(docker, name, true);
  let raw: NodeJS.ReadableStream;
  try {
    raw = (await container.getArchive({ path: `${MOUNT}/.` })) as NodeJS.ReadableStream;
  } catch (err) {
    await removeQuietly(container);
    throw engineError("reading files", name, err);
  }
  const renamed = renameTarEntries(relName);
  // The engine holds the container's lock while an archive download is open, so a removal waits
  // for it: on SIGINT/SIGTERM the download is cut first (cleanups run newest first).
  const cutDownload = () => {
    (raw as unknown as Readable).destroy();
  };
  const unregisterExit = onCleanup(cutDownload);
  const unregisterSignal = onAbort(() => {
    cutDownload();
    out.destroy();
  });
  const unregisterAbort = () => {
    unregisterExit();
    unregisterSignal();
  };
  let removal: Promise<void> | undefined;
  const cleanup = () => {
    unregisterAbort();
    removal ??= removeQuietly(container);
    return removal;
  };
  // The output ends only after the helper container is gone, so a caller that sees `end` sees
  // no leftover container.
  const out = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk, _enc, cb) {
      cb(null, chunk);
    },
    flush(cb) {
      cleanup().then(() => cb());
    },
  });
  pipeline(raw as unknown as Readable, renamed).catch((err) => {
    out.destroy(engineError("reading files", name, err));
  });
  renamed.pipe(out);
  out.on("close", () => {
    (raw as unknown as Readable).destroy?.();
    void cleanup();
  });
  return out;
}

/**
 * A volume's archive for a caller that downloads it itself (the export's fast path reads the
 * engine's socket directly): a never-started helper container with the volume mounted read-only
 * at /data, the request path of its `GET /containers/{id}/archive`, and the rename that turns
 * the engine's entry names into the ones {@link readVolumeTar} yields (apply it with
 * tar-rename.ts). The tar is the engine's, uncompressed.
 */
export interface VolumeArchive {
  /** Request path, e.g. `/containers/ID/archive?path=%2Fdata%2F.` (no API version prefix, as dockerode). */
  path: string;
  /** Entry name as stored by the engine → name relative to the volume root. */
  rename: (name: string) => string;
  /** Removes the helper container (idempotent; never throws). */
  release(): Promise<void>;
}

/**
 * Creates the helper container of {@link VolumeArchive} (removed by `release()`, or by the exit
 * cleanups when the process ends first). Throws `VOLUME_NOT_FOUND`, `VOLUME_FAILED`.
 */
export async function openVolumeArchive(name: string): Promise<VolumeArchive> {
  return { ...(await parkedHelper(name, true, `${MOUNT}/.`)), rename: relName };
}

/**
 * The upload side of {@link VolumeArchive}, for a caller that sends the tar itself (import's
 * one-pass restore writes to the engine's socket directly): a never-started helper container with
 * the volume mounted read-write at /data and the request path of its
 * `PUT /containers/{id}/archive?path=/`. The tar must hold every entry under `data/`, as
 * {@link writeVolumeTar} sends it (`dir` is that prefix, `data`), and be checked before it is sent
 * when it comes from a package (core/archive StrictTarScanner + TarEntryChecker).
 * @throws DockpackError `VOLUME_NOT_FOUND`, `VOLUME_FAILED`
 */
export async function openVolumeUpload(
  name: string,
): Promise<{ path: string; dir: string; release(): Promise<void> }> {
  return { ...(await parkedHelper(name, false, "/")), dir: MOUNT.slice(1) };
}

/** A helper container of `volume` and the archive path of `at`; see {@link openVolumeArchive}. */
async function parkedHelper(
  volume: string,
  readOnly: boolean,
  at: string,
): Promise<{ path: string; release(): Promise<void> }> {
  const docker = await requireEngine();
  if (!(await volumeExists(volume))) throw notFound(volume);
  const container = await helperContainer(docker, volume, readOnly);
  let removal: Promise<void> | undefined;
  return {
    path: `/containers/${container.id}/archive?path=${encodeURIComponent(at)}`,
    release: () => {
      removal ??= removeQuietly(container);
      return removal;
    },
  };
}

/** `./` → `./`; `./a/b` → `a/b`; `data/a` → `a` (older engines). */
function relName(name: string): string {
  if (name === "./" || name === "." || name === "data/" || name === "data") return "./";
  if (name.startsWith("./")) return name.slice(2);
  if (name.startsWith("data/")) return name.slice(5);
  return name;
}

/** Options of {@link writeVolumeTar}. */
export interface WriteVolumeOptions {
  /**
   * The tar comes from an untrusted source (a package): it is read with the strict reader
   * (readTarStrict) and every entry is checked in order by a TarEntryChecker before it reaches
   * the engine: no `..` or absolute names, nothing below an earlier symlink or file, hardlinks
   * only to earlier files of the same tar, no device nodes or fifos unless `allowSpecialFiles`.
   * A refused entry fails the write with `VOLUME_SPECIAL_FILE` or `VOLUME_UNSAFE_ENTRY`.
   */
  untrusted?: boolean;
  /** With `untrusted`: accept character/block devices and fifos. Default false. */
  allowSpecialFiles?: boolean;
}

/**
 * Writes a tar stream into a named volume (Docker Engine API `PUT /containers/{id}/archive?path=/`, entries moved under `data/`),
 * streaming. Entry names are taken relative to the volume root (`a/b`, `./a/b` and a `./` root
 * entry, which sets the root's owner and mode, are all accepted: the form {@link readVolumeTar}
 * yields). Owners (numeric uid/gid) and modes, setuid bits included, are kept; existing files
 * with the same names are replaced, others are left alone: write into a new, empty volume to get
 * an exact copy. When the input fails midway, the volume holds the entries written so far: write
 * into a fresh volume and remove it on failure. An error of the input stream (e.g. a
 * `DIGEST_MISMATCH` from a verifying stream) is rethrown as is; unreadable tar data is
 * `VOLUME_TAR_INVALID`. The volume must exist (`VOLUME_NOT_FOUND` otherwise); the engine's refusal
 * (bad tar, no space) is `VOLUME_FAILED`. The helper container is removed in all cases.
 */
export async function writeVolumeTar(
  name: string,
  input: Readable,
  options: WriteVolumeOptions = {},
): Promise<void> {
  const docker = await requireEngine();
  if (!(await volumeExists(name))) {
    input.destroy();
    throw notFound(name);
  }
  const container = await helperContainer(docker, name, false);
  // The archive goes in at "/" with every entry under "data/": only then does the engine apply
  // the root entry's owner and mode to the mount point and re-apply the mode of hardlinks
  // (its chown of a hardlink clears setuid; its chmod finds the link target only relative to
  // the container root).
  const prefixed = options.untrusted
    ? gatedPrefixedTar(input, MOUNT.slice(1), options)
    : prefixEntries(input, MOUNT.slice(1));
  // On SIGINT/SIGTERM the upload is cut first, or the removal would wait for it.
  const cutUpload = () => {
    prefixed.destroy(interrupted());
  };
  const unregisterExit = onCleanup(cutUpload);
  const unregisterSignal = onAbort(cutUpload);
  const unregisterAbort = () => {
    unregisterExit();
    unregisterSignal();
  };
  let inputFailure: unknown;
  const inputDone = prefixed.done.catch((err) => {
    inputFailure = err;
  });
  try {
    await container.putArchive(prefixed as unknown as string, { path: "/" });
    await inputDone;
    if (inputFailure) throw inputFailure;
  } catch (err) {
    // When the input failed (bad tar, digest mismatch upstream, read error), that is the error
    // to report, not the engine's aborted request.
    await Promise.race([inputDone, new Promise((r) => setTimeout(r, 1000))]);
    if (inputFailure) throw toDockpackError(inputFailure);
    if (err instanceof DockpackError) throw err;
    throw engineError("writing files", name, err);
  } finally {
    unregisterAbort();
    await removeQuietly(container);
  }
}

/**
 * Re-emits a tar with every entry moved under `dir/` (`./` and `.` become `dir/`). Hardlink
 * targets move too; symlink targets are kept. Streaming, one entry at a time. `done` settles when
 * the input is fully read (rejects on a bad tar or input error).
 */
function prefixEntries(input: Readable, dir: string): Readable & { done: Promise<void> } {
  const extract = tar.extract();
  const pack = tar.pack();
  const move = (n: string) => {
    const rel = relName(n);
    return rel === "./" ? `${dir}/` : `${dir}/${rel.replace(/^\/+/, "")}`;
  };
  extract.on("entry", (header, body, next) => {
    const moved = { ...header, name: move(header.name) };
    if (header.type === "link" && header.linkname) moved.linkname = move(header.linkname);
    if (header.pax) {
      const pax: Record<string, string> = { ...header.pax };
      delete pax.path;
      delete pax.linkpath;
      moved.pax = pax;
    }
    // the output may be gone already (its reader destroyed it: an abort): stop reading, no throw
    if (pack.destroyed || pack.destroying) {
      extract.destroy(new Error("output closed"));
      return;
    }
    const sink = pack.entry(moved, (err) => {
      if (err) extract.destroy(err);
      else next();
    });
    // Failures travel through `done`; these per-entry streams must not throw them again.
    sink.on("error", () => {});
    body.on("error", () => {});
    body.pipe(sink);
  });
  let inputError: unknown;
  input.on("error", (err) => {
    inputError ??= err;
  });
  // The failure is reported through `done`; the engine request may not listen for errors.
  pack.on("error", () => {});
  const done = pipeline(input, extract).then(
    () => {
      pack.finalize();
    },
    (err) => {
      const failure =
        inputError !== undefined
          ? toDockpackError(inputError)
          : new DockpackError(
              "VOLUME_TAR_INVALID",
              `The tar stream for the volume is unreadable: ${err.message}`,
              {
                hint: "Check that the input is an uncompressed tar archive.",
                cause: err,
              },
            );
      pack.destroy(failure);
      throw failure;
    },
  );
  done.catch(() => {});
  return Object.assign(pack, { done }) as unknown as Readable & { done: Promise<void> };
}
