/**
 * Pausing an environment while an export reads its volumes: its running containers are recorded
 * in the run journal (so a killed export gets them started by the next dockpack command), stopped
 * one by one — checking for an interruption between two, so that a Ctrl-C never leaves one
 * stopped after the restart; an items bar counts them — and started again when the work ends, fails or is interrupted.
 */
import { startContainers, stopContainers } from "../core/docker/containers.js";
import type { Reporter } from "../core/output.js";
import { runningContainers } from "./compose-run.js";
import type { Journal } from "./journal.js";
import { undoEntry } from "./recover-undo.js";

/**
 * Runs `fn` with the running containers of `composeProject` stopped and starts them again
 * afterwards (also on failure or interruption; a failed restart is left to the journal's
 * rollback, which tries again, and to the next dockpack command).
 */
export async function withPausedEnvironment<T>(
  composeProject: string,
  journal: Journal,
  reporter: Reporter,
  fn: () => Promise<T>,
): Promise<T> {
  journal.checkpoint();
  const ids = await runningContainers(composeProject);
  if (ids.length === 0) return fn();
  const entry = { op: "containers-stopped" as const, project: composeProject, ids };
  const seq = await journal.will(entry);
  reporter.info(`stopping ${ids.length} running container(s) of ${composeProject}`);
  let failed = false;
  const bar = reporter.progress(`stopping ${composeProject}`, ids.length, "items");
  try {
    for (const id of ids) {
      journal.checkpoint();
      // a stop the engine carries on after a kill -9 of this process must be waited out by the
      // recovery (a plain start would be a no-op on the still running container): say so first
      await journal.mark(seq, `stopping:${id}`);
      await stopContainers([id]);
      bar.increment(1);
    }
    bar.stop();
    return await fn();
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    bar.stop();
    try {
      await undoEntry({ ...entry, seq, marks: [] }, journal.id, reporter);
      await journal.mark(seq, "done");
    } catch (err) {
      reporter.warn(`starting the containers of ${composeProject} again failed: ${(err as Error).message}`);
      // the journal keeps the entry: its rollback (or the next dockpack command) tries again
      if (!failed) await startContainers(ids);
    }
  }
}
