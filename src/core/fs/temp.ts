/**
 * Temp directories that do not outlive the process, and free-space checks.
 */
import { rmSync } from "node:fs";
import { mkdtemp, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { DockpackError } from "../errors.js";
import { formatBytes } from "../output.js";
import { onCleanup } from "./cleanup.js";

const tempDirs = new Map<string, () => void>();

/**
 * Creates a new directory `<parent>/<prefix>XXXXXX` (parent: the OS temp dir, `$TMPDIR`) and
 * returns its absolute path. It is removed with its content by {@link removeTempDir}, on a normal
 * exit, and on SIGINT/SIGTERM/SIGHUP (see onCleanup). Pass `parent` to stage next to the final
 * output (same file system, so a rename moves it into place).
 * @param prefix e.g. `dockpack-export-`
 */
export async function makeTempDir(prefix: string, options: { parent?: string } = {}): Promise<string> {
  const dir = resolve(await mkdtemp(join(options.parent ?? tmpdir(), prefix)));
  const unregister = onCleanup(
    () => rm(dir, { recursive: true, force: true }),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  tempDirs.set(dir, unregister);
  return dir;
}

/** Removes a directory made by {@link makeTempDir} (and its content) now. Safe to call twice. */
export async function removeTempDir(dir: string): Promise<void> {
  const key = resolve(dir);
  await rm(key, { recursive: true, force: true });
  tempDirs.get(key)?.();
  tempDirs.delete(key);
}

/**
 * Bytes available to this (unprivileged) user on the file system holding `dir` (statfs
 * `f_bavail × f_bsize`). A path that does not exist yet is measured at its nearest existing parent.
 */
export async function freeSpace(dir: string): Promise<number> {
  let path = resolve(dir);
  for (;;) {
    try {
      const st = await statfs(path);
      return st.bavail * st.bsize;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === "ENOENT" || code === "ENOTDIR") && dirname(path) !== path) path = dirname(path);
      else throw err;
    }
  }
}

/**
 * Throws `NO_SPACE` when the file system holding `dir` has less than `neededBytes` available.
 * The message names `what` and `dir` and both numbers; details `{ dir, needed, available }` (bytes).
 * @param what what needs the space, e.g. `the environment package`
 */
export async function ensureFreeSpace(dir: string, neededBytes: number, what: string): Promise<void> {
  const available = await freeSpace(dir);
  if (available >= neededBytes) return;
  throw new DockpackError(
    "NO_SPACE",
    `Not enough free space in ${dir} for ${what}: ${formatBytes(neededBytes)} needed, ${formatBytes(available)} available.`,
    {
      hint: "Free some disk space, or choose a directory on another file system (e.g. set TMPDIR).",
      details: { dir, needed: neededBytes, available },
    },
  );
}
