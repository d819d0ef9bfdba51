/**
 * Output folders that are mount points (issue 12 A4): a bind mount such as `docker run -v
 * "$PWD/out:/out"` cannot be renamed over (`EBUSY`), and a rename into it from the parent folder
 * crosses mounts (`EXDEV`, even on the same file system). So the staging folder of such an
 * output goes *inside* it, and the commit moves entries within the mount.
 *
 * Crash safety is kept per entry: the staging folder is a {@link makeTempDir} folder (removed on
 * exit and signals, swept by the next run after a SIGKILL), each entry is moved into place by one
 * rename, and replaced entries are first moved aside into another such folder. The commit of a
 * whole folder on a mount point is not one atomic step (a folder rename is impossible there): a
 * kill during it leaves whole entries, old or new, never a half-written file.
 */
import { readFileSync } from "node:fs";
import { readdir, realpath, rename, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { makeTempDir, removeTempDir } from "./temp.js";

/** Undoes the octal escapes (`\040` for a space) of a /proc/self/mountinfo field. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/**
 * True when `path` is a mount point: listed in /proc/self/mountinfo (bind mounts of the same
 * file system included), or, where that file is missing, on another device than its parent.
 * False for a path that does not exist.
 */
export async function isMountPoint(path: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return false;
  }
  if (real === "/") return true;
  try {
    const info = readFileSync("/proc/self/mountinfo", "utf8");
    for (const line of info.split("\n")) {
      const field = line.split(" ")[4];
      if (field !== undefined && unescapeMountField(field) === real) return true;
    }
    return false;
  } catch {
    const [a, b] = await Promise.all([stat(real), stat(dirname(real))]);
    return a.dev !== b.dev;
  }
}

/**
 * Where the staging folder of the output folder `out` goes: `out` itself when it is a mount
 * point, else its parent (the nearest existing ancestor when the parent is missing), so that
 * the commit's renames stay on one mount.
 * @returns an existing folder (absolute)
 */
export async function stagingParent(out: string): Promise<string> {
  const abs = resolve(out);
  if (await isMountPoint(abs)) return abs;
  let parent = dirname(abs);
  while (
    !(await stat(parent).then(
      (s) => s.isDirectory(),
      () => false,
    )) &&
    dirname(parent) !== parent
  )
    parent = dirname(parent);
  return parent;
}

/**
 * Moves every entry of `stage` (a folder inside `out`, made by {@link makeTempDir}) into `out`,
 * replacing entries of the same name; with `clean`, first moves every other entry of `out`
 * aside (except `stage` and `keep`), so that `out` ends up holding exactly the staged entries.
 * Entries moved aside are removed at the end; `stage` is removed too.
 * @param skip names in `stage` not to move (they are removed with it)
 */
export async function commitIntoFolder(
  stage: string,
  out: string,
  options: { clean: boolean; skip?: (name: string) => boolean },
): Promise<void> {
  const names = (await readdir(stage)).filter((n) => !options.skip?.(n));
  const own = basename(stage);
  const aside = await makeTempDir(".dockpack-aside-", { parent: out });
  try {
    for (const n of await readdir(out)) {
      if (n === own || n === basename(aside)) continue;
      if (options.clean || names.includes(n)) await rename(join(out, n), join(aside, n));
    }
    for (const n of names) await rename(join(stage, n), join(out, n));
  } catch (err) {
    // put back what was moved aside and is not replaced yet
    for (const n of await readdir(aside).catch(() => [] as string[]))
      await rename(join(aside, n), join(out, n)).catch(() => undefined);
    throw err;
  } finally {
    await removeTempDir(aside);
    await removeTempDir(stage);
  }
}
