/**
 * The process-wide cleanup registry: work to undo when the process ends before the operation
 * that registered it could undo it itself — remove temp files and directories, release locks,
 * start stopped containers again.
 *
 * - Normal end (`beforeExit`, the event loop drained): remaining cleanups run, awaited.
 * - `process.exit()` (the `exit` event): only synchronous work is possible; each cleanup's `sync`
 *   variant runs, or its function is called without being awaited.
 * - {@link runCleanups} / {@link runCleanupsSync}: the CLI calls these after an interrupted
 *   command settled (or did not settle in time), before it exits with 130/143/129.
 *
 * This module installs NO signal handlers: a library must not decide how its host process shuts
 * down. Interruption is an abort of the operation's `options.signal` (see core/abort.ts); only
 * the CLI turns SIGINT/SIGTERM/SIGHUP into one. The `beforeExit`/`exit` listeners are installed
 * only while something is registered.
 */

/** A registered cleanup. */
interface Entry {
  run: () => Promise<void> | void;
  sync?: () => void;
}

const entries = new Set<Entry>();
let installed = false;

function report(err: unknown): void {
  process.stderr.write(`warning: cleanup failed: ${err instanceof Error ? err.message : String(err)}\n`);
}

/**
 * Runs and removes every registered cleanup, newest first, awaiting each (a failure is printed on
 * stderr as a warning and does not stop the others). For the CLI's interrupt path.
 */
export async function runCleanups(): Promise<void> {
  const list = [...entries].reverse();
  for (const e of list) {
    entries.delete(e);
    try {
      await e.run();
    } catch (err) {
      report(err);
    }
  }
}

/**
 * Runs every registered cleanup's synchronous variant at once (or starts its function without
 * awaiting it): for an exit that cannot wait (a second Ctrl-C).
 */
export function runCleanupsSync(): void {
  const list = [...entries].reverse();
  for (const e of list) {
    entries.delete(e);
    try {
      if (e.sync) e.sync();
      else {
        const p = e.run();
        if (p && typeof p.catch === "function") p.catch(report);
      }
    } catch (err) {
      report(err);
    }
  }
}

function onBeforeExit(): void {
  if (entries.size === 0) return;
  void runCleanups().then(uninstallIfIdle);
}

function onExit(): void {
  runCleanupsSync();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("beforeExit", onBeforeExit);
  process.on("exit", onExit);
}

function uninstallIfIdle(): void {
  if (!installed || entries.size > 0) return;
  installed = false;
  process.off("beforeExit", onBeforeExit);
  process.off("exit", onExit);
}

/**
 * Registers `fn` to run when the process ends with it still registered: on a normal end
 * (awaited), on `process.exit()` (called, not awaited, unless `sync` is given, which then runs
 * instead), and when the CLI exits after an interrupt ({@link runCleanups}). Cleanups run newest
 * first. It is a safety net: an operation undoes its own work on errors and aborts, then
 * unregisters.
 * Returns a function that unregisters it (call it once the work is done or undone).
 * Example: `const undo = onCleanup(() => startContainers(ids)); …; undo();`
 */
export function onCleanup(fn: () => Promise<void> | void, sync?: () => void): () => void {
  const entry: Entry = { run: fn, sync };
  entries.add(entry);
  install();
  return () => {
    entries.delete(entry);
    uninstallIfIdle();
  };
}

/** Number of registered cleanups (for tests and diagnostics). */
export function pendingCleanups(): number {
  return entries.size;
}
