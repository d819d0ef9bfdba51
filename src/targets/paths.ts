/**
 * Project-relative paths used in the registry: always `/`-separated, relative to the project
 * root, never escaping it.
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import { DockpackError } from "../core/errors.js";

/**
 * Normalises a user-given path (absolute, or relative to `root`) to the registry form
 * (`services/api`, `.` for the root). Throws `PATH_OUTSIDE_ROOT` (usage) naming `what` when it
 * points outside the project root.
 */
export function projectPath(root: string, path: string, what: string): string {
  const abs = isAbsolute(path) ? path : resolve(root, path);
  const rel = relative(resolve(root), abs);
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new DockpackError(
      "PATH_OUTSIDE_ROOT",
      `The ${what} '${path}' is outside the project root ${root}.`,
      {
        hint: "Give a path inside the project (relative to --root).",
        usage: true,
      },
    );
  }
  return rel === "" ? "." : rel.split(sep).join("/");
}

/** The absolute form of a registry path. */
export function absPath(root: string, rel: string): string {
  return resolve(root, rel);
}

/**
 * `rel` (a registry path) relative to the registry path `base`, `/`-separated; `.` when equal;
 * null when `rel` is not inside `base`.
 */
export function relativeInside(base: string, rel: string): string | null {
  const r = relative(resolve("/", base), resolve("/", rel));
  if (r === "") return ".";
  if (r === ".." || r.startsWith(`..${sep}`) || isAbsolute(r)) return null;
  return r.split(sep).join("/");
}
