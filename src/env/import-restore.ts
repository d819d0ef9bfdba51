/**
 * Import restore steps: package members written into a worktree (restore-files.ts: paths and
 * checksums checked again while writing, no link ever followed), volume members streamed into
 * Docker volumes (verified, size-capped and entry-checked on the way), the
 * `--standalone` repository, and Docker's data root for the free-space check.
 */
import { createReadStream } from "node:fs";
import { lstat, mkdir, readdir, rm, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { interrupted } from "../core/abort.js";
import { getDocker } from "../core/docker/client.js";
import { writeVolumeTar } from "../core/docker/volumes.js";
// records each helper container before its create request (crash recovery)
import "./helper-ledger.js";
import { DockpackError, isDockpackError, toDockpackError } from "../core/errors.js";
import { commitAsDockpack, git } from "../core/git.js";
import type { Reporter } from "../core/output.js";
import { rawEngineSocket } from "./export-archive.js";
import { exists } from "./import-aside.js";
import { restoreVolumeFast } from "./import-volume-fast.js";
import type { Journal } from "./journal.js";
import type { PackageMetadata, PackageVolume } from "./package-format.js";
import { checkVolumeMember, type VolumeCheck } from "./package-volume-check.js";

import { restoreMembers, type SealedRestore } from "./restore-files.js";

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

/**
 * Restores one volume member into the (new, empty) Docker volume `dockerName` in one read of its
 * bytes at `at` in the package (the place the verification read found): hashed, decompressed
 * with the recorded codec capped at the recorded tar size, the tar checked entry by entry
 * exactly as `validate` does, while the same tar bytes stream into the engine. The fast path
 * (a zstd member on a local engine, import-volume-fast.ts) does not recompute the tar's sha256:
 * the member's digest binds every tar byte (zstd decodes deterministically), the tar's size is
 * checked; the stream path ({@link checkVolumeMember}, then `writeVolumeTar`, untrusted: the
 * same entry checks again before the engine) checks it too, as `validate` does.
 * Any difference from what metadata.json records fails the restore with the code `validate`
 * reports for it (`PACKAGE_CHECKSUM_MISMATCH`, `PACKAGE_VOLUME_INVALID`, `PACKAGE_SPECIAL_FILE`,
 * `PACKAGE_UNSAFE_PATH`; `details.packageProblem` is true), after the upload ended and its
 * helper container is gone: the caller removes the volume (import's rollback).
 * `options.source` replaces the file read (a streaming registry import: registry-stream.ts);
 * `options.signal` stops the restore as an interruption does (`INTERRUPTED`).
 * @throws DockpackError as above; `VOLUME_*` when the engine fails; `INTERRUPTED`; the source's
 *   error (`DIGEST_MISMATCH` for a corrupt registry chunk)
 */
export async function restoreVolume(
  file: string,
  at: { offset: number; size: number },
  packaged: PackageVolume,
  dockerName: string,
  reporter: Reporter,
  journal: Journal,
  options: { allowSpecialFiles?: boolean; identity?: string; source?: Readable; signal?: AbortSignal } = {},
): Promise<void> {
  const member = packaged.member;
  const size = packaged.size;
  const bar = reporter.progress(`volume ${dockerName}`, size);
  let done = 0;
  const progress = (n: number) => {
    done += n;
    bar.update(Math.min(done, size));
  };
  /** Hooks `stop` to an interruption (journal cancel, `options.signal`); returns the unhook. */
  const stopper = (stop: () => void) => {
    const unhookCancel = journal.onCancel(stop);
    options.signal?.addEventListener("abort", stop);
    if (options.signal?.aborted) stop();
    return () => {
      unhookCancel();
      options.signal?.removeEventListener("abort", stop);
    };
  };
  const socketPath = rawEngineSocket();
  let pass: Pass;
  try {
    // a local engine and a plain zstd member in the file: the fast one pass (import-volume-fast.ts)
    if (socketPath && !options.source && !options.identity && packaged.codec === "zstd") {
      const { readFailure, engineFailure, ...check } = await restoreVolumeFast(
        file,
        at,
        packaged,
        dockerName,
        socketPath,
        { allowSpecialFiles: options.allowSpecialFiles === true, progress, stopper },
      );
      // as the stream path: a read that failed found nothing
      pass = { check: readFailure === undefined ? check : undefined, readFailure, engineFailure };
    } else pass = await streamPass(file, at, packaged, dockerName, options, progress, stopper);
  } finally {
    bar.stop();
  }
  const { readFailure, engineFailure } = pass;
  const problem = pass.check ? volumeProblem(pass.check, packaged, at.size) : null;
  if (problem)
    throw new DockpackError(
      problem.code,
      `${basename(file)}: volume '${packaged.name}': ${problem.message}`,
      {
        hint: "The package is damaged or crafted; do not import it. Nothing of it was kept.",
        details: { packageProblem: true, member, problems: [{ ...problem, member }] },
      },
    );
  // the source's own refusal (a registry chunk that failed its digest) names the problem
  if (readFailure && toDockpackError(readFailure).details?.packageProblem === true) throw readFailure;
  if (readFailure) throw engineFailure ?? readFailure;
  if (engineFailure) throw engineFailure;
  if (done !== size)
    throw new DockpackError(
      "VOLUME_RESTORE_INCOMPLETE",
      `Volume ${dockerName}: ${done} of ${size} tar bytes of ${member} reached the engine.`,
      { hint: "Run the import again; check the Docker Engine's log." },
    );
}

/**
 * What a restore's one pass found: the check (none when the read failed; no `tarSha256` from the
 * fast path), the failures.
 */
type Pass = {
  check?: Omit<VolumeCheck, "tarSha256"> & { tarSha256?: string };
  readFailure?: unknown;
  engineFailure?: unknown;
};

/**
 * The one pass through streams (any engine, codec and source): checkVolumeMember reads the
 * member and feeds its tar to writeVolumeTar. Returns once both sides have finished (the helper
 * container removed), so that a rollback may run.
 */
async function streamPass(
  file: string,
  at: { offset: number; size: number },
  packaged: PackageVolume,
  dockerName: string,
  options: { allowSpecialFiles?: boolean; identity?: string; source?: Readable },
  progress: (n: number) => void,
  stopper: (stop: () => void) => () => void,
): Promise<Pass> {
  const source =
    options.source ??
    (at.size > 0
      ? createReadStream(file, { start: at.offset, end: at.offset + at.size - 1, highWaterMark: 1024 * 1024 })
      : Readable.from([]));
  const unhook = stopper(() => source.destroy(interrupted()));
  const toEngine = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      progress(chunk.length);
      cb(null, chunk);
    },
  });
  // its failures travel through writeVolumeTar's promise
  toEngine.on("error", () => undefined);
  let engineFailure: unknown;
  const writing = writeVolumeTar(dockerName, toEngine, {
    untrusted: true,
    allowSpecialFiles: options.allowSpecialFiles === true,
  }).catch((err) => {
    engineFailure = err;
    // the engine gave up (not a refused entry, which the check reports too): stop reading
    if (!isDockpackError(err) || !CONTENT_REFUSALS.test(err.code)) source.destroy(err);
  });
  let check: VolumeCheck | undefined;
  let readFailure: unknown;
  try {
    check = await checkVolumeMember(
      source,
      packaged,
      { allowSpecialFiles: options.allowSpecialFiles === true, sink: toEngine },
      options.identity,
    );
  } catch (err) {
    readFailure = err;
    toEngine.destroy(toDockpackError(err));
  } finally {
    unhook();
    // both sides must have finished (the helper container removed) before a rollback may run
    await writing;
  }
  return { check, readFailure, engineFailure };
}

/** Failures of writeVolumeTar that come from the tar's content, which the check names itself. */
const CONTENT_REFUSALS = /^(PACKAGE_|VOLUME_SPECIAL_FILE$|VOLUME_UNSAFE_ENTRY$|VOLUME_TAR_INVALID$)/;

/**
 * The problem `validate` would report first for this volume member (crossCheck's order), or null;
 * the tar's digest only when the pass computed it.
 */
function volumeProblem(
  c: NonNullable<Pass["check"]>,
  v: PackageVolume,
  storedSize: number,
): { code: string; message: string } | null {
  if (c.sha256 !== v.sha256 || c.size !== v.compressed_size || c.size !== storedSize)
    return {
      code: "PACKAGE_CHECKSUM_MISMATCH",
      message: `member '${v.member}': expected ${v.sha256}, got ${c.sha256}`,
    };
  if (c.problem) return c.problem;
  if ((c.tarSha256 !== undefined && c.tarSha256 !== v.tar_sha256) || c.tarSize !== v.size)
    return {
      code: "PACKAGE_CHECKSUM_MISMATCH",
      message: "its decompressed tar does not match metadata.json",
    };
  return null;
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
  sealed?: SealedRestore,
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
  await restoreMembers(file, "code/", dir, checksums, sealed);
  await restoreMembers(file, "environment/", dir, checksums, sealed);
  await git(["add", "-A"], dir);
  await commitAsDockpack(
    dir,
    `Code of ${meta.project}/${meta.branch} from a dockpack package (commit ${meta.commit ?? "none"})`,
    { allowEmpty: true },
  );
  return dir;
}
