/**
 * Reading a cache file that only this user can have written (the code cache and the parse cache
 * of the installed command hold code and data that run as this user).
 */
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";

/**
 * The bytes of the regular file `path` when this user owns it and neither its group nor others
 * may write it; `undefined` otherwise (missing, a link to another user's file, a folder …).
 * @throws only on read errors after the checks passed (e.g. EIO)
 */
export function readOwnFile(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || (process.getuid && st.uid !== process.getuid()) || st.mode & 0o022) return undefined;
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
