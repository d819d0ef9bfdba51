/**
 * Import conflicts: what already exists under the target name (branch, worktree, folder,
 * volumes, containers), and moving it aside under `--force` so that a failed import can put it
 * back (undo recorded in the {@link Journal}) and a successful one drops it.
 */
import { lstat, rename, rm } from "node:fs/promises";
import { listContainers } from "../core/docker/containers.js";
import {
  createVolume,
  readVolumeTar,
  removeVolume,
  volumeExists,
  writeVolumeTar,
} from "../core/docker/volumes.js";
import { branchExists, deleteBranch, git, worktreeList, worktreeRemove } from "../core/git.js";
import type { Reporter } from "../core/output.js";
import { composeDown, composeUp, removeVolumeSoon, runningContainers } from "./compose-run.js";
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

/** Moves conflicting things aside (undone on rollback, dropped after success). Returns their names. */
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
  const tag = stamp();
  const replaced: string[] = [];
  const wt = (await worktreeList(root)).find((w) => w.branch === branch);
  if (wt || conflicts.some((c) => c.kind === "containers")) {
    const wtPath = wt?.path ?? path;
    const running = (await runningContainers(composeProject)).length > 0;
    const settings = wt ? await readEnvSettings(wt.path).catch(() => null) : null;
    if (settings) {
      reporter.info(`stopping ${composeProject} (replaced)`);
      await composeDown(wtPath, composeProject);
      journal.added(`start ${composeProject} again`, async () => {
        if (running) await composeUp(wtPath, composeProject);
      });
    }
  }
  if (wt) {
    const aside = `${wt.path}.aside-${tag}`;
    await git(["worktree", "move", wt.path, aside], root);
    journal.added(`move worktree back to ${wt.path}`, () =>
      git(["worktree", "move", aside, wt.path], root).then(() => {}),
    );
    journal.afterSuccess(`remove old worktree ${aside}`, () => worktreeRemove(root, aside, { force: true }));
    replaced.push(`worktree ${wt.path}`);
  } else if (await exists(path)) {
    const aside = `${path}.aside-${tag}`;
    await rename(path, aside);
    journal.added(`move folder back to ${path}`, () => rename(aside, path));
    journal.afterSuccess(`remove old folder ${aside}`, () => rm(aside, { recursive: true, force: true }));
    replaced.push(`folder ${path}`);
  }
  if (await branchExists(branch, root)) {
    const asideBranch = `dockpack-aside/${tag}/${branch}`;
    await git(["branch", "-m", branch, asideBranch], root);
    journal.added(`rename branch ${asideBranch} back to ${branch}`, async () => {
      await deleteBranch(branch, root, true).catch(() => {});
      await git(["branch", "-m", asideBranch, branch], root);
    });
    journal.afterSuccess(`delete old branch ${asideBranch}`, () => deleteBranch(asideBranch, root, true));
    replaced.push(`branch ${branch}`);
  }
  for (const v of volumes) {
    if (!(await volumeExists(v))) continue;
    const aside = `${v}-aside-${tag}`;
    reporter.info(`keeping volume ${v} aside as ${aside}`);
    await createVolume(aside, { "io.dockpack.aside-of": v });
    journal.added(`remove aside volume ${aside}`, () => removeVolumeSoon(aside));
    await writeVolumeTar(aside, await readVolumeTar(v));
    await removeVolume(v);
    journal.added(`restore volume ${v} from ${aside}`, async () => {
      if (await volumeExists(v)) await removeVolumeSoon(v);
      await createVolume(v, {
        "com.docker.compose.project": composeProject,
        "com.docker.compose.volume": v.slice(composeProject.length + 1),
      });
      await writeVolumeTar(v, await readVolumeTar(aside));
    });
    journal.afterSuccess(`remove aside volume ${aside}`, () => removeVolume(aside));
    replaced.push(`volume ${v}`);
  }
  return replaced;
}
