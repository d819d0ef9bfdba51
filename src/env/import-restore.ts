/**
 * Import restore steps: package members written into a worktree (paths and checksums checked
 * again while writing), volume members streamed into Docker volumes (verified on the way), the
 * `--standalone` repository, and Docker's data root for the free-space check.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, readdir, rm, symlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { checkEntryPath, readTar } from "../core/archive.js";
import { decompressStream } from "../core/codec.js";
import { verifyingStream } from "../core/digest.js";
import { getDocker } from "../core/docker/client.js";
import { writeVolumeTar } from "../core/docker/volumes.js";
import { DockpackError } from "../core/errors.js";
import { git } from "../core/git.js";
import type { Reporter } from "../core/output.js";
import { exists } from "./import-aside.js";
import type { Journal } from "./journal.js";
import type { PackageMetadata } from "./package-format.js";

/**
 * Writes the members under `prefix` (files and symlinks) into `dest`, checking every path and
 * every file's sha256 against `checksums` again while writing. Returns the relative paths written.
 */
export async function restoreMembers(
  file: string,
  prefix: string,
  dest: string,
  checksums: Map<string, string>,
): Promise<Set<string>> {
  const written = new Set<string>();
  await readTar(createReadStream(file, { highWaterMark: 1024 * 1024 }), async (header, body) => {
    if (!header.name.startsWith(prefix) || header.type === "directory") {
      body.resume();
      return;
    }
    const rel = header.name.slice(prefix.length);
    const why = checkEntryPath(rel);
    if (why) throw new DockpackError("PACKAGE_UNSAFE_PATH", `member '${header.name}' is unsafe: ${why}`);
    const target = join(dest, rel);
    await mkdir(dirname(target), { recursive: true });
    await rm(target, { force: true, recursive: false }).catch(() => {});
    if (header.type === "symlink") {
      await symlink(header.linkname ?? "", target);
      body.resume();
    } else if (header.type === "file") {
      const expected = checksums.get(header.name);
      if (!expected)
        throw new DockpackError("PACKAGE_MEMBER_UNLISTED", `member '${header.name}' has no checksum`);
      await pipeline(
        body,
        verifyingStream(expected, header.name),
        createWriteStream(target, { mode: 0o644 }),
      );
      await chmod(target, (header.mode ?? 0o644) & 0o111 ? 0o755 : 0o644);
    } else body.resume();
    written.add(rel);
  });
  return written;
}

/** Removes checked-out files that the code snapshot did not contain (deleted before export). */
export async function removeFilesNotIn(worktree: string, keep: Set<string>): Promise<void> {
  const tracked = (await git(["ls-files", "-z"], worktree)).split("\0").filter(Boolean);
  for (const f of tracked) if (!keep.has(f)) await rm(join(worktree, f), { force: true });
}

/** Streams one volume member (verified on the way) into the Docker volume `dockerName`. */
export async function restoreVolume(
  file: string,
  member: string,
  sha256: string,
  codec: PackageMetadata["volumes"][number]["codec"],
  dockerName: string,
  reporter: Reporter,
  size: number,
  journal: Journal,
): Promise<void> {
  let found = false;
  const source = createReadStream(file, { highWaterMark: 1024 * 1024 });
  const unhook = journal.onCancel(() =>
    source.destroy(new DockpackError("INTERRUPTED", "Interrupted by a signal.")),
  );
  const inFlight: { writing?: Promise<unknown> } = {};
  try {
    await readVolumeMember(source, member, sha256, codec, dockerName, reporter, size, inFlight, () => {
      found = true;
    });
  } finally {
    unhook();
    // the tar reader may fail before the engine upload ends: wait for it (and its helper
    // container's removal), or the rollback could not remove the volume
    await inFlight.writing?.catch(() => {});
  }
  if (!found) throw new DockpackError("PACKAGE_MEMBER_MISSING", `member '${member}' is missing`);
}

async function readVolumeMember(
  source: Readable,
  member: string,
  sha256: string,
  codec: PackageMetadata["volumes"][number]["codec"],
  dockerName: string,
  reporter: Reporter,
  size: number,
  inFlight: { writing?: Promise<unknown> },
  onFound: () => void,
): Promise<void> {
  await readTar(source, async (header, body) => {
    if (header.name !== member) {
      body.resume();
      return;
    }
    onFound();
    const bar = reporter.progress(`volume ${dockerName}`, size);
    let done = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        done += chunk.length;
        bar.update(Math.min(done, size));
        cb(null, chunk);
      },
    });
    // both sides must have finished (the helper container removed) before a rollback may run
    const all = Promise.allSettled([
      pipeline(body, verifyingStream(sha256, member), decompressStream(codec), counter),
      writeVolumeTar(dockerName, counter).catch((err) => {
        counter.destroy(err);
        throw err;
      }),
    ]);
    inFlight.writing = all;
    const results = await all;
    bar.stop();
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (done !== size)
      throw new DockpackError(
        "VOLUME_RESTORE_INCOMPLETE",
        `Volume ${dockerName}: ${done} of ${size} tar bytes of ${member} reached the engine.`,
        {
          hint: "Run the import again; check the Docker Engine's log.",
        },
      );
  });
}

/** Docker's data root when the engine is local (unix socket), for the free-space check. */
export async function dockerRootDir(): Promise<string | null> {
  try {
    const info = (await getDocker().info()) as { DockerRootDir?: string };
    const dir = info.DockerRootDir;
    if (dir && (await exists(dir))) return dir;
  } catch {
    // remote or unreadable: skip the check
  }
  return null;
}

/**
 * `--standalone DIR`: a fresh repository in DIR (must not exist or be empty) whose first commit
 * holds the package's code snapshot and environment files. Removed again on rollback.
 * @throws DockpackError `PACKAGE_NO_CODE` when the package has no code, `IMPORT_STANDALONE_NOT_EMPTY`
 */
export async function createStandaloneRepo(
  dir: string,
  file: string,
  meta: PackageMetadata,
  checksums: Map<string, string>,
  target: string,
  journal: Journal,
  reporter: Reporter,
): Promise<string> {
  if (!meta.include_code)
    throw new DockpackError(
      "PACKAGE_NO_CODE",
      `${file} holds no code snapshot, so --standalone cannot build a repository from it.`,
      {
        hint: "Export with --include-code, or import inside a clone of the project.",
      },
    );
  const present = await readdir(dir).catch(() => null);
  if (present && present.length > 0)
    throw new DockpackError("IMPORT_STANDALONE_NOT_EMPTY", `${dir} exists and is not empty.`, {
      hint: "Name a new or empty folder for --standalone.",
    });
  await mkdir(dir, { recursive: true });
  journal.added(`remove ${dir}`, async () => {
    if (present) {
      for (const n of await readdir(dir)) await rm(join(dir, n), { recursive: true, force: true });
    } else await rm(dir, { recursive: true, force: true });
  });
  reporter.info(`creating repository ${dir} from the code snapshot`);
  await git(["init", "-q"], dir);
  // the main checkout's branch must not be the imported branch, which gets its own worktree
  await git(["symbolic-ref", "HEAD", `refs/heads/${target === "main" ? "trunk" : "main"}`], dir);
  await restoreMembers(file, "code/", dir, checksums);
  await restoreMembers(file, "environment/", dir, checksums);
  await git(["add", "-A"], dir);
  await git(
    [
      "-c",
      "user.name=dockpack",
      "-c",
      "user.email=dockpack@localhost",
      "commit",
      "-q",
      "--allow-empty",
      "-m",
      `Code of ${meta.project}/${meta.branch} from a dockpack package (commit ${meta.commit ?? "none"})`,
    ],
    dir,
  );
  return dir;
}
