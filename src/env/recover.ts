/**
 * Crash recovery and per-environment locks.
 *
 * {@link recoverDeadRuns} runs at the start of every `env` and `packages` command: it reads the
 * run journals (journal.ts) whose process no longer runs (killed, power loss) and finishes or
 * undoes their work — a dead export's stopped containers are started again and its stage folder
 * removed; a dead import is rolled back completely (worktree, branch, volumes, the standalone
 * folder; what it moved aside is put back); a run that died after its commit point only gets its
 * finish actions (aside copies dropped). Helper containers the dead process left are removed.
 * Each journal is handled under its own lock, so two commands never recover one run twice; a
 * journal whose undo fails is kept and retried by the next command (with a warning).
 *
 * {@link withEnvLock} serialises the operations on one environment (its compose project, which
 * is engine-wide): two exports of it, or an export and an import into it, wait for each other.
 */
import { mkdir, readdir, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { getDocker } from "../core/docker/client.js";
import { HELPER_LABEL } from "../core/docker/helper-image.js";
import { toDockpackError } from "../core/errors.js";
import { removeStaleLock } from "../core/fs/lock.js";
import { withLock } from "../core/fs.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { recoverHelperLedgers } from "./helper-recover.js";
import {
  finishEntries,
  type JournalFile,
  listJournalFiles,
  ownerAlive,
  readJournalFile,
  runsDir,
  stateDir,
  undoEntries,
} from "./journal.js";
import { sanitizeName } from "./naming.js";
import { recoverRegistryImages } from "./registry-images-pending.js";

/** What {@link recoverDeadRuns} did with one dead run. */
export interface RecoveredRun {
  id: string;
  kind: "export" | "import" | "create" | "remove";
  /** `rolled-back` (undone), `finished` (committed run completed), `failed` (kept for a retry). */
  outcome: "rolled-back" | "finished" | "failed";
  repo: string | null;
  branch: string;
  compose_project: string;
  /** The worktree the run created (imports), and the volumes it created. */
  path: string | null;
  volumes: string[];
  /** Undo/finish actions that failed. */
  failures: string[];
}

/** Removes the helper containers labelled with the dead process `pid` of this host. */
async function removeHelpersOf(pid: number, host: string): Promise<void> {
  const docker = getDocker();
  const list = await docker
    .listContainers({
      all: true,
      filters: { label: [HELPER_LABEL, `io.dockpack.pid=${pid}`, `io.dockpack.host=${host}`] },
    })
    .catch(() => []);
  for (const c of list)
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => {});
}

async function recoverOne(j: JournalFile, reporter: Reporter): Promise<RecoveredRun> {
  const { header } = j;
  const what = `${header.kind} of ${header.branch} (${header.compose_project}) by process ${header.pid}`;
  reporter.warn(`recovering the ${what}, which ended without finishing`);
  // first the helper containers: they hold volumes the undo may remove
  await removeHelpersOf(header.pid, header.host);
  const failures = j.committed
    ? await finishEntries(j.entries, reporter)
    : await undoEntries(j.entries, header.id, reporter);
  // again: a create request in flight when the process was killed can land after the first sweep
  await removeHelpersOf(header.pid, header.host);
  // an env remove is completed, never undone
  const forward = j.committed || header.kind === "remove";
  const outcome = failures.length ? "failed" : forward ? "finished" : "rolled-back";
  if (failures.length)
    reporter.warn(`recovery of the ${what} is incomplete (kept for the next run): ${failures.join("; ")}`);
  else {
    await unlink(j.path).catch(() => {});
    reporter.info(forward ? `finished the ${what}` : `rolled back the ${what}`);
  }
  return {
    id: header.id,
    kind: header.kind,
    outcome,
    repo: header.repo,
    branch: header.branch,
    compose_project: header.compose_project,
    path: j.entries.flatMap((e) => (e.op === "worktree" || e.op === "removal" ? [e.path] : []))[0] ?? null,
    volumes: j.entries.flatMap((e) => (e.op === "volume" ? [e.name] : e.op === "removal" ? e.volumes : [])),
    failures,
  };
}

/**
 * Finishes or undoes every run whose process died (see the module docs). Never throws: problems
 * are reported as warnings and as `failed` outcomes. Returns what it did (empty when nothing).
 */
export async function recoverDeadRuns(reporter: Reporter = silentReporter()): Promise<RecoveredRun[]> {
  const done: RecoveredRun[] = [];
  // first the helper containers of dead processes, landed or still in flight: they hold volumes
  await recoverHelperLedgers(reporter);
  for (const path of await listJournalFiles()) {
    const first = await readJournalFile(path);
    if (first && ownerAlive(first.header)) continue;
    try {
      const res = await withLock(
        `${path}.lock`,
        async () => {
          const j = await readJournalFile(path); // another process may have recovered it meanwhile
          if (!j) {
            if (!first) {
              // not even a header: the writer died while creating it; nothing was changed yet
              await unlink(path).catch(() => {});
            }
            return null;
          }
          if (ownerAlive(j.header)) return null;
          return recoverOne(j, reporter);
        },
        { wait: true, timeoutSeconds: 300 },
      );
      if (res) done.push(res);
    } catch (err) {
      reporter.warn(`could not recover the run in ${path}: ${toDockpackError(err).message}`);
    }
  }
  // after the dead imports are rolled back: the images their registry step loaded and never handed over
  await recoverRegistryImages(reporter);
  // the locks dead processes held (environment locks, journal locks) would only be taken over by
  // the next process needing the same one: do not leave them behind
  for (const dir of [join(stateDir(), "locks"), runsDir()]) await removeStaleLocks(dir);
  return done;
}

/** Removes the lock files (`*.lock`) of `dir` whose holder no longer runs; never throws. */
async function removeStaleLocks(dir: string): Promise<void> {
  for (const n of await readdir(dir).catch(() => [] as string[]))
    if (n.endsWith(".lock")) await removeStaleLock(join(dir, n)).catch(() => false);
}

/** The lock file of the environment whose compose project is `composeProject`. */
function envLockPath(composeProject: string): string {
  return join(stateDir(), "locks", `env-${sanitizeName(composeProject) || "default"}.lock`);
}

/**
 * Runs `fn` holding the lock of the environment whose compose project is `composeProject`
 * (`<state dir>/locks/env-<project>.lock`), waiting up to `timeoutSeconds` (default 1 h) for
 * another dockpack process that holds it. A lock of a dead process is taken over.
 * @throws DockpackError `LOCKED` when still held after the timeout
 */
export async function withEnvLock<T>(
  composeProject: string,
  reporter: Reporter,
  fn: () => Promise<T>,
  timeoutSeconds = 3600,
): Promise<T> {
  const lockPath = envLockPath(composeProject);
  await mkdir(dirname(lockPath), { recursive: true });
  try {
    return await withLock(lockPath, fn);
  } catch (err) {
    const e = toDockpackError(err);
    if (e.code !== "LOCKED" || e.details?.lockPath !== lockPath) throw err;
    reporter.info(`waiting for process ${e.details?.pid ?? "?"}, which works on ${composeProject}`);
    return withLock(lockPath, fn, { wait: true, timeoutSeconds });
  }
}
