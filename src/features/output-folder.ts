/**
 * The output folder of `features package`: safety checks for `--force-clean-output-folder`,
 * staging next to it and moving the finished artifacts into place.
 *
 * A run writes only into a staging folder (`.dockpack-features-*` next to the output folder),
 * which is removed on failure, exit or signal; the output folder changes only once every artifact
 * is complete.
 */
import { existsSync, realpathSync } from "node:fs";
import { chmod, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, sep } from "node:path";
import { DockpackError } from "../core/errors.js";
import { commitIntoFolder, stagingParent } from "../core/fs/folder.js";
import { makeTempDir, removeTempDir } from "../core/fs.js";

function real(path: string): string {
  // Resolve symlinks of the longest existing prefix, so a not-yet-existing output folder compares right.
  let head = path;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail.reverse());
    } catch {
      const parent = dirname(head);
      if (parent === head) return path;
      tail.push(head.slice(parent.length).replace(/^\/+/, ""));
      head = parent;
    }
  }
}

/** True when `outer` is `inner` or one of its ancestors (both absolute, resolved). */
function containsOrIs(outer: string, inner: string): boolean {
  return outer === inner || outer === sep || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

/**
 * Refuses to clean an output folder whose deletion would destroy something precious: `/`, the home
 * folder, the current folder, the target, or any folder containing one of them (symlinks resolved).
 * @param outputDir absolute output folder
 * @param target absolute target folder
 * @throws DockpackError `FEATURES_CLEAN_REFUSED` (usage error) naming the folder and why.
 */
export function checkForceClean(outputDir: string, target: string): void {
  const out = real(outputDir);
  const guarded: [string, string][] = [
    [sep, "the root folder"],
    [real(homedir()), "the home folder"],
    [real(process.cwd()), "the current folder"],
    [real(target), "the target"],
  ];
  for (const [path, what] of guarded) {
    if (containsOrIs(out, path)) {
      throw new DockpackError(
        "FEATURES_CLEAN_REFUSED",
        out === path
          ? `Refusing to empty ${outputDir}: it is ${what}.`
          : `Refusing to empty ${outputDir}: it contains ${what} (${path}).`,
        {
          hint: "Choose a dedicated output folder with -o, such as ./output, or drop -f.",
          usage: true,
          details: { outputDir, guarded: path },
        },
      );
    }
  }
}

/**
 * Refuses an output folder inside a feature folder (issue 12 A12): `features package src -o
 * src/other -f`, where `other` is a feature, would delete that feature's files and leave it out
 * of the collection. Every folder from `outputDir` up to `target` (exclusive: a single feature may
 * hold its own output folder, which is never packaged; symlinks resolved) is checked for a
 * `devcontainer-feature.json`.
 * @throws DockpackError `FEATURES_OUTPUT_IN_FEATURE` (usage error) naming the feature folder.
 */
export function checkOutputNotInFeature(outputDir: string, target: string): void {
  const out = real(outputDir);
  const top = real(target);
  if (!containsOrIs(top, out)) return;
  for (let d = out; d !== top && dirname(d) !== d; d = dirname(d)) {
    if (existsSync(join(d, "devcontainer-feature.json"))) {
      throw new DockpackError(
        "FEATURES_OUTPUT_IN_FEATURE",
        `Refusing to write into ${outputDir}: it is inside the feature folder ${d}.`,
        {
          hint: "Choose an output folder outside every feature folder, such as ./output.",
          usage: true,
          details: { outputDir, feature: d },
        },
      );
    }
  }
}

/**
 * Checks the output folder is a folder when it exists.
 * @throws DockpackError `FEATURES_OUTPUT_NOT_FOLDER` when it is a file or another non-folder.
 */
export async function checkOutputFolder(outputDir: string): Promise<void> {
  try {
    const s = await stat(outputDir);
    if (!s.isDirectory())
      throw new DockpackError(
        "FEATURES_OUTPUT_NOT_FOLDER",
        `The output path ${outputDir} exists and is not a folder.`,
        {
          hint: "Remove it or choose another output folder with -o.",
        },
      );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/**
 * Creates the staging folder next to `outputDir`, or, when its parent does not exist yet, in the
 * nearest existing ancestor (missing parents are created only by {@link commitOutput}); inside
 * `outputDir` when it is a mount point (a bind mount cannot be renamed into from outside: EXDEV,
 * issue 12 A4). It is removed by {@link commitOutput}, by {@link discardStaging}, or at exit/signal.
 * @returns the staging folder (absolute)
 */
export async function createStaging(outputDir: string): Promise<string> {
  return makeTempDir(".dockpack-features-", { parent: await stagingParent(outputDir) });
}

/** Removes the staging folder (after a failure). */
export async function discardStaging(staging: string): Promise<void> {
  await removeTempDir(staging);
}

/**
 * Moves every file of `staging` into `outputDir` (overwriting previous artifacts of the same
 * name). When `outputDir` does not exist the staging folder itself is renamed to it. With
 * `clean`, the output folder's entries are removed first — only now that all artifacts are ready.
 * @throws DockpackError `FEATURES_OUTPUT_CONFLICT` (nothing moved) when an artifact's name is taken by a folder.
 */
export async function commitOutput(staging: string, outputDir: string, clean: boolean): Promise<void> {
  const names = (await readdir(staging)).filter((n) => !n.startsWith("."));
  let exists = true;
  try {
    await stat(outputDir);
  } catch {
    exists = false;
  }
  if (!exists) {
    for (const n of await readdir(staging))
      if (n.startsWith(".")) await rm(join(staging, n), { recursive: true });
    await chmod(staging, 0o777 & ~process.umask());
    await mkdir(dirname(outputDir), { recursive: true });
    await rename(staging, outputDir);
    await removeTempDir(staging);
    return;
  }
  const inside = dirname(staging) === outputDir;
  if (!clean) {
    // Check every destination first, so that a conflict stops the run before anything moves.
    for (const n of names) {
      const existing = await stat(join(outputDir, n)).catch(() => undefined);
      if (existing?.isDirectory())
        throw new DockpackError(
          "FEATURES_OUTPUT_CONFLICT",
          `${join(outputDir, n)} is a folder; the artifact of the same name cannot replace it.`,
          { hint: "Remove it, choose another output folder, or pass -f to empty the output folder." },
        );
    }
  } else if (!inside) {
    for (const n of await readdir(outputDir)) await rm(join(outputDir, n), { recursive: true, force: true });
  }
  if (inside) {
    // The output folder is a mount point: the staging folder is inside it (see createStaging).
    await commitIntoFolder(staging, outputDir, { clean, skip: (n) => n.startsWith(".") });
    return;
  }
  for (const n of names) await rename(join(staging, n), join(outputDir, n));
  await removeTempDir(staging);
}
