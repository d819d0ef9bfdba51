/**
 * Staging of generated output: files are written into a temp folder next to the output path
 * and moved into place in one rename when complete, so an interrupted or failed run leaves
 * nothing half-written and never touches an existing output unless `force` is given.
 */
import { rmSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { DockpackError } from "../core/errors.js";

const live = new Set<string>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const sweep = () => {
    for (const dir of live) {
      try {
        // Synchronous on purpose: runs inside 'exit'.
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  };
  process.once("exit", sweep);
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.once(sig, () => {
      sweep();
      process.exit(sig === "SIGINT" ? 130 : 143);
    });
}

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
  if (st.isDirectory() && (await readdir(output)).length === 0) return;
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

/** Creates a staging folder beside `output` (same file system, so the final move is a rename). */
export async function createStage(output: string): Promise<Stage> {
  const out = resolve(output);
  await mkdir(dirname(out), { recursive: true });
  const dir = await mkdtemp(join(dirname(out), `.${basename(out)}.dockpack-`));
  hookExit();
  live.add(dir);
  return {
    dir,
    async commit() {
      let old: string | undefined;
      try {
        await lstat(out);
        old = `${dir}.old`;
        live.add(old);
        await rename(out, old);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
      await chmod(dir, 0o755); // mkdtemp made it 0700
      try {
        await rename(dir, out);
      } catch (e) {
        if (old) await rename(old, out); // put the previous output back
        throw e;
      }
      live.delete(dir);
      if (old) {
        await rm(old, { recursive: true, force: true });
        live.delete(old);
      }
    },
    async abort() {
      await rm(dir, { recursive: true, force: true });
      live.delete(dir);
    },
  };
}
