/**
 * The undo and finish action of every run-journal entry (journal.ts). Both run in the live
 * process (rollback, commit) and in a later process recovering a dead run (recover.ts), so each
 * one checks the current state first and is idempotent: right whether the change it undoes had
 * happened, half happened or not happened when the process died.
 */

import { readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { getDocker } from "../core/docker/client.js";
import { restartContainers, startContainers } from "../core/docker/containers.js";
import { createVolume, readVolumeTar, volumeExists, writeVolumeTar } from "../core/docker/volumes.js";
// records each helper container before its create request (crash recovery)
import "./helper-ledger.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { removeStaleLock } from "../core/fs/lock.js";
import { branchExists, deleteBranch, git, worktreeList } from "../core/git.js";
import type { Reporter } from "../core/output.js";
import { composeUp, removeVolumeSoon } from "./compose-run.js";
import { exists } from "./import-aside.js";
import type { RecordedEntry } from "./journal.js";
import { undoImageEntry } from "./package-images-undo.js";
import { PORTS_LOCK, readEnvSettings } from "./settings.js";

/** Label put on every volume an import creates: the id of the run that created it. */
export const RUN_LABEL = "io.dockpack.run";

/** Prefix of an export's stage folder inside the output folder. */
export const STAGE_PREFIX = ".dockpack-export-";

/** Labels of a Docker volume, or null when it does not exist. */
export async function volumeLabels(name: string): Promise<Record<string, string> | null> {
  try {
    const info = (await getDocker().getVolume(name).inspect()) as { Labels?: Record<string, string> | null };
    return info.Labels ?? {};
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/**
 * Removes the worktree at `path` of repository `root` and the branch `branch` when no worktree
 * has it checked out — also when the worktree's `.git` file was replaced or the folder half
 * exists: the folder is removed and `git worktree prune` drops the stale entry. Verifies the
 * result and throws `ROLLBACK_INCOMPLETE` naming what is left. `branch` null: keep the branch.
 */
export async function removeWorktreeAndBranch(
  root: string,
  path: string,
  branch: string | null,
): Promise<void> {
  if (!(await exists(root))) return;
  const listed = (await worktreeList(root).catch(() => [])).some((w) => w.path === path);
  if (listed) await git(["worktree", "remove", "--force", "--", path], root).catch(() => {});
  await rm(path, { recursive: true, force: true });
  await git(["worktree", "prune"], root);
  const left = await worktreeList(root);
  if (left.some((w) => w.path === path))
    throw new DockpackError("ROLLBACK_INCOMPLETE", `git still lists the worktree ${path}.`, {
      hint: `Run 'git worktree prune' in ${root}.`,
    });
  if (branch && (await branchExists(branch, root))) {
    const elsewhere = left.find((w) => w.branch === branch);
    if (elsewhere)
      throw new DockpackError(
        "ROLLBACK_INCOMPLETE",
        `Branch ${branch} is checked out at ${elsewhere.path}; it was not deleted.`,
        { hint: "Remove that worktree, then delete the branch with 'git branch -D'." },
      );
    await deleteBranch(branch, root, true);
  }
}

/** Removes the volume when it carries this run's label (never another's volume). */
async function removeRunVolume(name: string, runId: string): Promise<void> {
  const labels = await volumeLabels(name);
  if (labels === null || labels[RUN_LABEL] !== runId) return;
  await removeVolumeSoon(name);
}

/**
 * Starts the containers again; those in `stopping` (a stop was asked of the engine, maybe still
 * in flight when the run died) are restarted, which waits that stop out instead of racing it.
 */
async function startQuietly(ids: string[], stopping: Set<string>, reporter: Reporter): Promise<void> {
  for (const id of ids) {
    try {
      await (stopping.has(id) ? restartContainers([id]) : startContainers([id]));
    } catch (err) {
      // a container removed meanwhile (env down) has nothing to start
      if (toDockpackError(err).code !== "CONTAINER_NOT_FOUND") throw err;
      reporter.debug(`container ${id.slice(0, 12)} is gone; not started`);
    }
  }
}

/** Ids of the containers a `containers-stopped` entry's marks say a stop was asked for. */
function stoppingOf(e: RecordedEntry): Set<string> {
  return new Set(e.marks.filter((m) => m.startsWith("stopping:")).map((m) => m.slice("stopping:".length)));
}

async function removeStage(path: string): Promise<void> {
  if (!basename(path).startsWith(STAGE_PREFIX)) return;
  await rm(path, { recursive: true, force: true });
}

/** Undoes one recorded change; see the module docs. `runId` is the journal's run id. */
export async function undoEntry(e: RecordedEntry, runId: string, reporter: Reporter): Promise<void> {
  switch (e.op) {
    case "stage":
      return removeStage(e.path);
    case "containers-stopped":
      reporter.info(`starting ${e.ids.length} container(s) of ${e.project} again`);
      return startQuietly(e.ids, stoppingOf(e), reporter);
    case "worktree":
      await removeWorktreeAndBranch(e.root, e.path, e.keepBranch ? null : e.branch);
      // the ports lock a killed run held (it is taken over anyway; do not leave it behind)
      await removeStaleLock(join(dirname(e.path), PORTS_LOCK)).catch(() => {});
      return;
    case "volume":
      return removeRunVolume(e.name, runId);
    case "standalone":
      if (!(await exists(e.dir))) return;
      if (!e.existed) return rm(e.dir, { recursive: true, force: true });
      for (const n of await readdir(e.dir)) await rm(`${e.dir}/${n}`, { recursive: true, force: true });
      return;
    case "replaced-down":
      if (e.running && (await readEnvSettings(e.path).catch(() => null))) {
        reporter.info(`starting ${e.project} again`);
        await composeUp(e.path, e.project);
      }
      return;
    case "aside-worktree": {
      if (!(await exists(e.to))) return;
      if (await exists(e.from))
        throw new DockpackError("ROLLBACK_INCOMPLETE", `${e.from} exists; ${e.to} was not moved back.`, {
          hint: `Move ${e.to} back by hand ('git worktree move').`,
        });
      const root = (await exists(e.root)) ? e.root : dirname(e.to);
      try {
        await git(["worktree", "move", e.to, e.from], root);
      } catch {
        await rename(e.to, e.from);
        await git(["worktree", "repair", e.from], root).catch(() => {});
      }
      return;
    }
    case "aside-folder":
      if ((await exists(e.to)) && !(await exists(e.from))) await rename(e.to, e.from);
      return;
    case "aside-branch":
      if (!(await exists(e.root)) || !(await branchExists(e.aside, e.root))) return;
      if (await branchExists(e.branch, e.root)) await deleteBranch(e.branch, e.root, true);
      await git(["branch", "-m", e.aside, e.branch], e.root);
      return;
    case "removal":
      reporter.info(`finishing the removal of ${e.path}`);
      await removeWorktreeAndBranch(e.root, e.path, e.branch);
      for (const v of e.volumes) if (await volumeExists(v)) await removeVolumeSoon(v);
      return;
    case "image":
      return undoImageEntry(e, reporter);
    case "aside-volume": {
      const now = await volumeLabels(e.volume);
      if (now !== null) {
        if (now[RUN_LABEL] === runId)
          throw new DockpackError("ROLLBACK_INCOMPLETE", `Volume ${e.volume} is still the imported one.`, {
            hint: `Its old data is kept in ${e.aside}.`,
          });
        // the original is intact (the run died before removing it): drop the copy
        if (await volumeExists(e.aside)) await removeVolumeSoon(e.aside);
        return;
      }
      if (!(await volumeExists(e.aside))) return;
      if (!e.marks.includes("copied"))
        throw new DockpackError(
          "ROLLBACK_INCOMPLETE",
          `Volume ${e.volume} is gone and ${e.aside} is incomplete.`,
          {
            hint: `Inspect ${e.aside} before removing it.`,
          },
        );
      reporter.info(`restoring volume ${e.volume} from ${e.aside}`);
      await createVolume(e.volume, {
        "com.docker.compose.project": e.project,
        "com.docker.compose.volume": e.volume.slice(e.project.length + 1),
      });
      await writeVolumeTar(e.volume, await readVolumeTar(e.aside));
      await removeVolumeSoon(e.aside);
      return;
    }
  }
}

/** The finish action of one entry of a committed run (drop aside copies and stage folders). */
export async function finishEntry(e: RecordedEntry, _reporter: Reporter): Promise<void> {
  switch (e.op) {
    case "stage":
      return removeStage(e.path);
    case "aside-worktree":
      if (!(await exists(e.to))) return;
      await git(["worktree", "remove", "--force", "--", e.to], e.root).catch(() => {});
      await rm(e.to, { recursive: true, force: true });
      await git(["worktree", "prune"], e.root).catch(() => {});
      return;
    case "aside-folder":
      return rm(e.to, { recursive: true, force: true });
    case "aside-branch":
      if ((await exists(e.root)) && (await branchExists(e.aside, e.root)))
        await deleteBranch(e.aside, e.root, true);
      return;
    case "aside-volume":
      if (await volumeExists(e.aside)) await removeVolumeSoon(e.aside);
      return;
    default:
      return;
  }
}
