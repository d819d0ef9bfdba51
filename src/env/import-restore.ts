/**
 * Import restore steps: package members written into a worktree (restore-files.ts: paths and
 * checksums checked again while writing, no link ever followed), volume members streamed into
 * Docker volumes (verified, size-capped and entry-checked on the way), the
 * `--standalone` repository, and Docker's data root for the free-space check.
 */
import { createReadStream } from "node:fs";
import { lstat, mkdir, readdir, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { interrupted } from "../core/abort.js";
import { readTarStrict } from "../core/archive.js";
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
import { capBytes } from "./package-volume.js";

import { restoreMembers } from "./restore-files.js";

export { restoreMembers };

/**
 * Removes checked-out files that the code snapshot did not contain (deleted before export).
 * Never follows a symlink: a path whose parent is a symlink (e.g. one the package created) is
 * skipped, and a symlink at the path itself is removed, not its target.
 */
export async function removeFilesNotIn(worktree: string, keep: Set<string>): Promise<void> {
  const tracked = (await git(["ls-files", "-z"], worktree)).split("\0").filter(Boolean);
  for (const f of tracked) {
    if (keep.has(f)) continue;
    if (!(await parentsAreDirectories(worktree, f))) continue;
    await unlink(join(worktree, f)).catch(() => {});
  }
}

async function parentsAreDirectories(root: string, rel: string): Promise<boolean> {
  const parts = rel.split("/");
  let dir = root;
  for (let i = 0; i < parts.length - 1; i++) {
    dir = join(dir, parts[i]);
    const st = await lstat(dir).catch(() => null);
    if (!st?.isDirectory() || st.isSymbolicLink()) return false;
  }
  return true;
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
  options: { allowSpecialFiles?: boolean } = {},
): Promise<void> {
  let found = false;
  const source = createReadStream(file, { highWaterMark: 1024 * 1024 });
  const unhook = journal.onCancel(() => source.destroy(interrupted()));
  const inFlight: { writing?: Promise<unknown> } = {};
  try {
    await readVolumeMember(
      source,
      member,
      sha256,
      codec,
      dockerName,
      reporter,
      size,
      inFlight,
      options,
      () => {
        found = true;
      },
    );
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
  options: { allowSpecialFiles?: boolean },
  onFound: () => void,
): Promise<void> {
  await readTarStrict(source, async (entry, body) => {
    if (entry.name !== member) return;
    if (entry.type !== "file")
      throw new DockpackError("PACKAGE_MEMBER_TYPE_INVALID", `member '${member}' is a ${entry.type}`);
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
      pipeline(
        body,
        verifyingStream(sha256, member),
        decompressStream(codec),
        capBytes(size, member),
        counter,
      ),
      writeVolumeTar(dockerName, counter, {
        untrusted: true,
        allowSpecialFiles: options.allowSpecialFiles === true,
      }).catch((err) => {
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
  await git(["-c", "core.hooksPath=/dev/null", "init", "-q"], dir);
  // the main checkout's branch must not be the imported branch, which gets its own worktree
  await git(["symbolic-ref", "HEAD", `refs/heads/${target === "main" ? "trunk" : "main"}`], dir);
  await restoreMembers(file, "code/", dir, checksums);
  await restoreMembers(file, "environment/", dir, checksums);
  await git(["add", "-A"], dir);
  await git(
    [
      "-c",
      "core.hooksPath=/dev/null",
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
