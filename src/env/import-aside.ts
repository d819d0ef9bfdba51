/**
 * Import conflicts: what already exists under the target name (branch, worktree, folder,
 * volumes, containers), and moving it aside under `--force` so that a failed or killed import
 * puts it back (each move recorded in the run journal first) and a successful one drops it.
 */
import { lstat, rename } from "node:fs/promises";
import { listContainers } from "../core/docker/containers.js";
import {
  createVolume,
  readVolumeTar,
  removeVolume,
  volumeExists,
  writeVolumeTar,
} from "../core/docker/volumes.js";
// records each helper container before its create request (crash recovery)
import "./helper-ledger.js";
import { branchExists, git, worktreeList } from "../core/git.js";
import type { Reporter } from "../core/output.js";
import { composeDown, runningContainers } from "./compose-run.js";
import type { Journal } from "./journal.js";
import { readEnvSettings } from "./settings.js";

/** A conflict found before an import. */
export interface ImportConflict {
  kind: "branch" | "worktree" | "folder" | "volume" | "containers";
  name: string;
}

const stamp = () => new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15);

export async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** Lists what already exists under the target name. */
export async function findConflicts(
  root: string,
  branch: string,
  path: string,
  composeProject: string,
  volumes: string[],
): Promise<ImportConflict[]> {
  const out: ImportConflict[] = [];
  if (await branchExists(branch, root)) out.push({ kind: "branch", name: branch });
  const wt = (await worktreeList(root)).find((w) => w.branch === branch);
  if (wt) out.push({ kind: "worktree", name: wt.path });
  else if (await exists(path)) out.push({ kind: "folder", name: path });
  for (const v of volumes) if (await volumeExists(v)) out.push({ kind: "volume", name: v });
  const containers = await listContainers({ labels: { "com.docker.compose.project": composeProject } });
  if (containers.length) out.push({ kind: "containers", name: `${composeProject} (${containers.length})` });
  return out;
}

/**
 * Moves conflicting things aside, each recorded in the run journal before it is done (put back
 * on rollback, also by the next dockpack command after a kill; dropped by the commit's finish
 * actions). Returns their names.
 */
export async function moveAside(
  root: string,
  branch: string,
  path: string,
  composeProject: string,
  volumes: string[],
  conflicts: ImportConflict[],
  journal: Journal,
  reporter: Reporter,
): Promise<string[]> {
  const tag = `${stamp()}-${journal.id.slice(-8)}`;
  const replaced: string[] = [];
  const wt = (await worktreeList(root)).find((w) => w.branch === branch);
  if (wt || conflicts.some((c) => c.kind === "containers")) {
    const wtPath = wt?.path ?? path;
    const running = (await runningContainers(composeProject)).length > 0;
    const settings = wt ? await readEnvSettings(wt.path).catch(() => null) : null;
    if (settings) {
      reporter.info(`stopping ${composeProject} (replaced)`);
      await journal.will({ op: "replaced-down", path: wtPath, project: composeProject, running });
      await composeDown(wtPath, composeProject);
    }
  }
  journal.checkpoint();
  if (wt) {
    const aside = `${wt.path}.aside-${tag}`;
    await journal.will({ op: "aside-worktree", root, from: wt.path, to: aside });
    await git(["worktree", "move", wt.path, aside], root);
    replaced.push(`worktree ${wt.path}`);
  } else if (await exists(path)) {
    const aside = `${path}.aside-${tag}`;
    await journal.will({ op: "aside-folder", from: path, to: aside });
    await rename(path, aside);
    replaced.push(`folder ${path}`);
  }
  journal.checkpoint();
  if (await branchExists(branch, root)) {
    const asideBranch = `dockpack-aside/${tag}/${branch}`;
    await journal.will({ op: "aside-branch", root, branch, aside: asideBranch });
    await git(["branch", "-m", branch, asideBranch], root);
    replaced.push(`branch ${branch}`);
  }
  for (const v of volumes) {
    journal.checkpoint();
    if (!(await volumeExists(v))) continue;
    const aside = `${v}-aside-${tag}`;
    reporter.info(`keeping volume ${v} aside as ${aside}`);
    const seq = await journal.will({ op: "aside-volume", volume: v, aside, project: composeProject });
    await createVolume(aside, { "io.dockpack.aside-of": v });
    await writeVolumeTar(aside, await readVolumeTar(v));
    await journal.mark(seq, "copied");
    await removeVolume(v);
    replaced.push(`volume ${v}`);
  }
  return replaced;
}
