/**
 * Image references with containers/image transport prefixes, and {@link openImage} which reads
 * any of them into the one {@link Image} shape:
 *
 * - `docker-daemon:NAME[:TAG]` or `docker-daemon:ID` — an image in the local Docker Engine
 *   (saved with GET /images/get and unpacked into a temporary directory as it streams, one file
 *   per member; removed at close)
 * - `docker-archive:PATH[:NAME:TAG|:@N]` — `docker save` output (Docker < 25 or ≥ 25)
 * - `oci:DIR[:REF]` — an OCI image layout directory
 * - `oci-archive:PATH[:REF]` — an OCI image layout in a tar file
 * - `docker://REGISTRY/REPO[:TAG|@DIGEST]` — an image in a registry, pulled through dockpack's
 *   OCI client into a temporary layout (registry.ts; credentials as for every registry command)
 * - no prefix: an existing file (docker-archive or OCI archive, detected) or directory (OCI
 *   layout), else a daemon image name or ID.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { PackageTarWriter } from "../core/archive/file-writer.js";
import { decompressStream, detectFileCodec } from "../core/codec.js";
import { inspectImage } from "../core/docker/images.js";
import { DockpackError } from "../core/errors.js";
import { ensureFreeSpace, makeTempDir, removeTempDir } from "../core/fs.js";
import type { Reporter } from "../core/output.js";
import { type BlobContainer, DirContainer, TarContainer } from "./container.js";
import { readDockerArchive, readDockerManifest } from "./docker-archive.js";
import { ExtractedContainer, type MemberHook } from "./extract.js";
import type { Image, ImageFormat } from "./image.js";
import { readOciLayout } from "./oci-layout.js";
import { startSave } from "./save-stream.js";
import { canPackNatively, canUnpackNatively, type PackOptions, unpackSave } from "./save-unpack.js";

/** Options of {@link openImages}. */
export interface OpenImagesOptions {
  /**
   * Called for each member of an engine image's `docker save` as soon as it is unpacked (its
   * file and size; its sha256 when hashed), before the save ends: callers start work on layers
   * early.
   */
  onMember?: MemberHook;
  /**
   * Hash the layers of an engine image's `docker save` again while unpacking (default true).
   * The engine checks every layer against its diff_id while saving (Docker's layer store
   * verifies each layer's tar stream); a caller that verifies what it builds downstream (delta
   * create: `delta apply` checks every rebuilt layer) may pass false to save that CPU.
   */
  hashLayers?: boolean;
  /**
   * With `hashLayers: false`: compress each layer of an engine image's `docker save` with zstd
   * while it streams (see save-unpack's `pack`), when the programs are there; such a layer then
   * has codec zstd, its uncompressed `size` set, and {@link ExtractedContainer.packed} says how
   * it was compressed. For callers that ship whole compressed layers (delta create `-m layer`).
   */
  packLayers?: Omit<PackOptions, "drop" | "into"> & {
    /**
     * For a one-image save that packs: called with the image's layer count just before the save
     * starts; the package writer it resolves to receives the compressed layers (save-unpack's
     * `into`), or undefined for files in the directory as usual.
     */
    into?: (layerCount: number) => Promise<PackageTarWriter | undefined>;
    /**
     * diff_ids the caller will not read (the target has them): such layers of a one-image save
     * are dropped while it streams (neither compressed nor written; their size is kept).
     */
    have?: ReadonlySet<string> | Promise<ReadonlySet<string>>;
  };
}

/** A parsed image reference. `select` picks an image inside an archive or layout. */
export interface ImageRef {
  transport: ImageFormat | "docker";
  /** Daemon: the name or ID; `docker`: the registry reference; others: the file or directory path. */
  path: string;
  select?: string;
  /** The reference as the user wrote it. */
  raw: string;
}

const PREFIXES: ImageFormat[] = ["docker-daemon", "docker-archive", "oci-archive", "oci"];

async function kind(path: string): Promise<"file" | "dir" | "other" | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? "dir" : s.isFile() ? "file" : "other";
  } catch {
    return undefined;
  }
}

/** Splits `PATH[:SELECT]`, preferring the longest prefix that exists on disk. */
async function splitPathSelect(rest: string): Promise<{ path: string; select?: string }> {
  if (await kind(rest)) return { path: rest };
  let i = rest.indexOf(":");
  while (i !== -1) {
    const path = rest.slice(0, i);
    if (await kind(path)) return { path, select: rest.slice(i + 1) || undefined };
    i = rest.indexOf(":", i + 1);
  }
  const first = rest.indexOf(":");
  return first === -1
    ? { path: rest }
    : { path: rest.slice(0, first), select: rest.slice(first + 1) || undefined };
}

/**
 * Parses an image reference (see the module doc). Files are not opened; a path with no prefix
 * that exists is an archive or layout, anything else a daemon reference.
 */
export async function parseImageRef(raw: string): Promise<ImageRef> {
  if (raw.startsWith("docker://")) {
    if (raw.length === 9)
      throw new DockpackError("IMAGE_REF_INVALID", `'${raw}' names no image after 'docker://'.`, {
        usage: true,
      });
    return { transport: "docker", path: raw.slice(9), raw };
  }
  for (const p of PREFIXES) {
    if (raw.startsWith(`${p}:`)) {
      const rest = raw.slice(p.length + 1);
      if (!rest) {
        throw new DockpackError("IMAGE_REF_INVALID", `'${raw}' names no image after '${p}:'.`, {
          usage: true,
        });
      }
      if (p === "docker-daemon") return { transport: p, path: rest, raw };
      return { transport: p, ...(await splitPathSelect(rest)), raw };
    }
  }
  const k = await kind(raw);
  if (k === "dir") return { transport: "oci", path: raw, raw };
  if (k === "file" || k === "other") return { transport: "docker-archive", path: raw, raw };
  if (/\.(tar|tar\.gz|tgz|oci)$/.test(raw)) {
    throw new DockpackError("IMAGE_NOT_FOUND", `The image archive '${raw}' does not exist.`, {
      hint: "Check the path; for an image in the Docker Engine give its name:tag or ID.",
    });
  }
  return { transport: "docker-daemon", path: raw, raw };
}

/**
 * Opens an archive file; a compressed one (`docker save | gzip > x.tar.gz`, zstd, xz, bzip2)
 * is decompressed to a temporary file first (streaming), removed by the returned `close`.
 */
async function openFileContainer(
  ref: ImageRef,
  reporter?: Reporter,
): Promise<{ container: BlobContainer; close?: () => Promise<void> }> {
  const k = await kind(ref.path);
  if (ref.transport === "oci" && k !== "dir") {
    throw new DockpackError("IMAGE_NOT_FOUND", `The OCI layout directory '${ref.path}' does not exist.`, {
      hint: "Give a directory holding oci-layout and index.json.",
    });
  }
  if (ref.transport === "oci") return { container: new DirContainer(ref.path) };
  if (k === "other" || k === "dir") {
    throw new DockpackError(
      "IMAGE_NOT_FOUND",
      `The image archive '${ref.path}' is not a regular file (a ${k === "dir" ? "directory" : "fifo, device or socket"}).`,
      { hint: "Give an archive file (docker save -o FILE), or oci:DIR for an OCI layout directory." },
    );
  }
  if (k !== "file") {
    throw new DockpackError("IMAGE_NOT_FOUND", `The image archive '${ref.path}' does not exist.`, {
      hint: "Check the path.",
    });
  }
  const codec = await detectFileCodec(ref.path);
  if (codec === "none") return { container: await TarContainer.open(ref.path) };
  const dir = await makeTempDir("dockpack-image-");
  try {
    const file = join(dir, "image.tar");
    const progress = reporter?.progress(`decompress ${ref.path}`);
    const input = createReadStream(ref.path);
    input.on("data", (c) => progress?.increment(c.length));
    await pipeline(input, decompressStream(codec), createWriteStream(file));
    progress?.stop();
    return { container: await TarContainer.open(file), close: () => removeTempDir(dir) };
  } catch (e) {
    await removeTempDir(dir);
    throw e;
  }
}

/**
 * Opens an image from any reference form. Daemon images are saved to a temporary file first
 * (streamed, never in memory; progress through `reporter`). Close the image when done.
 * Throws `IMAGE_NOT_FOUND`, `IMAGE_FORMAT_UNKNOWN`, `IMAGE_MANIFEST_INVALID`,
 * `IMAGE_CONFIG_INVALID`, `ARCHIVE_TRUNCATED`, `ENGINE_UNAVAILABLE`.
 */
export async function openImage(raw: string, reporter?: Reporter): Promise<Image> {
  const ref = await parseImageRef(raw);
  if (ref.transport === "docker-daemon") return openDaemonImage(ref, reporter);
  if (ref.transport === "docker") {
    // The OCI client (undici) loads only for registry images: engine and file images start sooner.
    const { openRegistryImage } = await import("./registry.js");
    return openRegistryImage(ref.path, raw, reporter);
  }
  const { container, close } = await openFileContainer(ref, reporter);
  try {
    if (ref.transport === "oci" || ref.transport === "oci-archive") {
      return await readOciLayout(container, raw, ref.transport, ref.select, close);
    }
    // A bare file may be an OCI archive without manifest.json.
    if (!(await container.has("manifest.json")) && (await container.has("index.json"))) {
      return await readOciLayout(container, raw, "oci-archive", ref.select, close);
    }
    return await readDockerArchive(container, raw, ref.select, close);
  } catch (e) {
    await close?.();
    throw e;
  }
}

async function openDaemonImage(ref: ImageRef, reporter?: Reporter): Promise<Image> {
  return (await openDaemonImages([ref], reporter, {}))[0];
}

/**
 * Saves several engine images with ONE `docker save` (layers they share are written once),
 * unpacked into a temporary directory as it streams ({@link ExtractedContainer}: one file per
 * layer, sha256 known), and opens each; the directory is removed when the last is closed.
 * Images are matched to their manifest entry by image ID (the config file name).
 */
async function openDaemonImages(
  refs: ImageRef[],
  reporter: Reporter | undefined,
  options: OpenImagesOptions,
): Promise<Image[]> {
  // The inspections, the caller's `have` and the check for GNU tar run at once: the save starts
  // as soon as all are known.
  const [infos, have, native, canPack] = await Promise.all([
    Promise.all(refs.map((r) => inspectImage(r.path))),
    options.packLayers?.have,
    options.hashLayers === false ? canUnpackNatively() : false,
    options.packLayers ? canPackNatively() : false,
  ]);
  const ids = infos.map((info) => info.Id);
  const sizes = new Map(infos.map((info) => [info.Id, info.Size ?? 0]));
  const layers = infos.at(-1)?.RootFS?.Layers ?? [];
  const pack = canPack ? options.packLayers : undefined;
  const drop =
    pack && have && refs.length === 1 ? layers.flatMap((d, i) => (have.has(d) ? [i] : [])) : undefined;
  const dir = await makeTempDir("dockpack-image-");
  // The saved file is at most the images' sizes (shared layers are saved once) plus tar framing.
  const needed = [...sizes.values()].reduce((a, b) => a + b, 0);
  await ensureFreeSpace(
    dir,
    Math.ceil(needed * 1.02),
    `docker save of ${refs.map((r) => r.path).join(", ")}`,
  ).catch(async (e) => {
    await removeTempDir(dir);
    throw e;
  });
  const opened: Image[] = [];
  try {
    const names = refs.map((r) => r.path);
    const progress = reporter?.progress(`docker save ${names.join(" ")}`);
    const location = `docker save of ${names.join(", ")}`;
    let container: ExtractedContainer;
    if (native) {
      // No hashing on the way: GNU tar unpacks the CLI's output, node never reads the bytes.
      const into = pack?.into && refs.length === 1 ? await pack.into(layers.length) : undefined;
      container = await unpackSave(
        [...new Set(names)],
        dir,
        location,
        options.onMember,
        (n) => progress?.increment(n),
        pack && {
          level: pack.level,
          longAbove: pack.longAbove,
          ...(drop ? { drop } : {}),
          ...(into ? { into } : {}),
        },
      );
    } else {
      const save = await startSave([...new Set(names)]);
      save.stream.on("data", (c: Buffer) => progress?.increment(c.length));
      // Unpacked as it arrives (one file per layer, hashed on the way): readers then use each
      // layer file in place instead of copying it out of one big tar.
      try {
        container = await ExtractedContainer.extract(save.stream, dir, location, {
          onMember: options.onMember,
          hash: options.hashLayers ?? true,
        });
      } catch (e) {
        // A save that failed on its own explains the cut stream better than the tar reader.
        save.stop();
        await save.done();
        throw e;
      }
      await save.done();
    }
    progress?.stop();
    const entries = await readDockerManifest(container);
    let open = refs.length;
    const release = async () => {
      open--;
      if (open === 0) await removeTempDir(dir);
    };
    for (let i = 0; i < refs.length; i++) {
      const hex = ids[i].replace(/^sha256:/, "");
      const at = entries.findIndex(
        (e) => e.Config.replace(/^blobs\/sha256\//, "").replace(/\.json$/, "") === hex,
      );
      if (at === -1) {
        throw new DockpackError(
          "IMAGE_NOT_FOUND",
          `docker save of ${refs[i].path} holds no image ${ids[i]}.`,
        );
      }
      const image = await readDockerArchive(container, refs[i].raw, `@${at}`, release);
      for (const l of image.layers) {
        l.size ??= container.packed(l.blob)?.size;
        // Dropped only layers the caller said it would not read (their position told the script).
        if (container.dropped(l.blob) && !have?.has(l.diffId)) {
          throw new DockpackError(
            "IMAGE_FAILED",
            `${location}: layer ${l.index} (${l.diffId}) was dropped while unpacking, but it is needed.`,
            { hint: "This is a bug in dockpack; report it with the command you ran." },
          );
        }
      }
      if (image.repoTags.length === 0 && !/^(sha256:)?[a-f0-9]{12,64}$/.test(refs[i].path)) {
        (image.repoTags as string[]).push(
          refs[i].path.includes(":") ? refs[i].path : `${refs[i].path}:latest`,
        );
      }
      opened.push(image);
    }
    return opened;
  } catch (e) {
    await removeTempDir(dir);
    throw e;
  }
}

/**
 * Opens several images at once (see {@link openImage}); engine images among them are read with
 * a single `docker save`, so layers they share are saved once. Close each image when done.
 */
export async function openImages(
  raws: string[],
  reporter?: Reporter,
  options: OpenImagesOptions = {},
): Promise<Image[]> {
  const refs = await Promise.all(raws.map((r) => parseImageRef(r)));
  const daemon = refs.filter((r) => r.transport === "docker-daemon");
  const out: (Image | undefined)[] = new Array(raws.length);
  try {
    if (daemon.length > 0) {
      const images = await openDaemonImages(daemon, reporter, options);
      daemon.forEach((r, i) => {
        out[refs.indexOf(r)] = images[i];
      });
    }
    for (let i = 0; i < refs.length; i++) if (!out[i]) out[i] = await openImage(raws[i], reporter);
    return out as Image[];
  } catch (e) {
    for (const img of out) await img?.close();
    throw e;
  }
}
