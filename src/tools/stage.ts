/**
 * Staging of generated output: files are written into a temp folder next to the output path
 * and moved into place in one rename when complete, so an interrupted or failed run leaves
 * nothing half-written and never touches an existing output unless `force` is given.
 * Interrupted runs are cleaned up through core/fs `onCleanup` (exit, SIGINT, SIGTERM).
 */
import { rmSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { DockpackError } from "../core/errors.js";
import { commitIntoFolder, isMountPoint } from "../core/fs/folder.js";
import { makeTempDir, onCleanup, removeTempDir } from "../core/fs.js";

/**
 * Checks that `output` may be written: absent, an empty folder, or (with `force`) anything.
 * @throws DockpackError `OUTPUT_EXISTS` naming the path (hint: --force)
 */
export async function checkOutputPath(output: string, force: boolean): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(output);
  } catch {
    return;
  }
  if (force) return;
  if (!st.isDirectory())
    throw new DockpackError("OUTPUT_EXISTS", `${output} exists and is not a folder.`, {
      hint: "Choose another output path, or pass --force to replace it.",
    });
  if ((await readdir(output)).length === 0) return;
  throw new DockpackError("OUTPUT_EXISTS", `${output} already exists and is not empty.`, {
    hint: "Choose another output path, or pass --force to replace it.",
  });
}

/** A staging folder for `output`. */
export interface Stage {
  /** Where to write the files. */
  dir: string;
  /** Moves the stage into place (replacing `output` when it exists). */
  commit(): Promise<void>;
  /** Removes the stage; `output` is untouched. */
  abort(): Promise<void>;
}

/** Registers removal of `path` at exit/signal; returns the unregister function. */
function removeOnExit(path: string): () => void {
  return onCleanup(
    () => rm(path, { recursive: true, force: true }),
    () => rmSync(path, { recursive: true, force: true }),
  );
}

/** Creates a staging folder beside `output` (same file system, so the final move is a rename). */
export async function createStage(output: string): Promise<Stage> {
  const out = resolve(output);
  if (await isMountPoint(out)) {
    // A mount point cannot be renamed over (EBUSY) nor renamed into from outside (EXDEV): stage
    // inside it and move the entries (core/fs/folder.ts, issue 12 A4).
    const inner = await makeTempDir(".dockpack-stage-", { parent: out });
    return {
      dir: inner,
      commit: () => commitIntoFolder(inner, out, { clean: true }),
      abort: () => removeTempDir(inner),
    };
  }
  await mkdir(dirname(out), { recursive: true });
  const dir = await mkdtemp(join(dirname(out), `.${basename(out)}.dockpack-`));
  const forget = removeOnExit(dir);
  return {
    dir,
    async commit() {
      await chmod(dir, 0o755); // mkdtemp made it 0700
      let old: string | undefined;
      let forgetOld = () => {};
      try {
        await lstat(out);
        old = `${dir}.old`;
        await rename(out, old);
        forgetOld = removeOnExit(old);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
      try {
        await rename(dir, out);
      } catch (e) {
        if (old) {
          forgetOld();
          await rename(old, out); // put the previous output back
        }
        throw e;
      }
      forget();
      if (old) {
        await rm(old, { recursive: true, force: true });
        forgetOld();
      }
    },
    async abort() {
      await rm(dir, { recursive: true, force: true });
      forget();
    },
  };
}
