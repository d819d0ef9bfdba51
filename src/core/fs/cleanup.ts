/**
 * The process-wide cleanup registry: work to undo when the process ends early or normally —
 * remove temp files and directories, release locks, start stopped containers again.
 *
 * - SIGINT / SIGTERM / SIGHUP: every registered cleanup runs, newest first, each awaited (errors
 *   are printed on stderr and do not stop the others), then the process exits with 130 / 143 /
 *   129 (128 + signal number, as shells report it). A second signal while cleaning up exits at
 *   once after the synchronous cleanups.
 * - Normal end (`beforeExit`, the event loop drained): remaining cleanups run, awaited.
 * - `process.exit()` (the `exit` event): only synchronous work is possible; each cleanup's `sync`
 *   variant runs, or its function is called without being awaited.
 *
 * The signal handlers are installed only while something is registered, so a process with
 * nothing to clean up keeps Node's default signal behaviour.
 */

/** A registered cleanup. */
interface Entry {
  run: () => Promise<void> | void;
  sync?: () => void;
}

const entries = new Set<Entry>();
const SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
type Sig = keyof typeof SIGNALS;
let installed = false;
let cleaningForSignal = false;

function report(err: unknown): void {
  process.stderr.write(`warning: cleanup failed: ${err instanceof Error ? err.message : String(err)}\n`);
}

/** Runs and removes all entries, newest first, awaiting each. */
async function runAll(): Promise<void> {
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

function runAllSync(): void {
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

const handlers: Record<Sig, () => void> = {
  SIGINT: () => void onSignal("SIGINT"),
  SIGTERM: () => void onSignal("SIGTERM"),
  SIGHUP: () => void onSignal("SIGHUP"),
};

async function onSignal(sig: Sig): Promise<void> {
  const code = SIGNALS[sig];
  if (cleaningForSignal) {
    runAllSync();
    process.exit(code);
  }
  cleaningForSignal = true;
  await runAll();
  process.exit(code);
}

function onBeforeExit(): void {
  if (entries.size === 0 || cleaningForSignal) return;
  void runAll().then(uninstallIfIdle);
}

function onExit(): void {
  runAllSync();
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of Object.keys(SIGNALS) as Sig[]) process.on(sig, handlers[sig]);
  process.on("beforeExit", onBeforeExit);
  process.on("exit", onExit);
}

function uninstallIfIdle(): void {
  if (!installed || entries.size > 0 || cleaningForSignal) return;
  installed = false;
  for (const sig of Object.keys(SIGNALS) as Sig[]) process.off(sig, handlers[sig]);
  process.off("beforeExit", onBeforeExit);
  process.off("exit", onExit);
}

/**
 * Registers `fn` to run when the process ends: on SIGINT/SIGTERM/SIGHUP (awaited, then exit
 * 130/143/129), on a normal end (awaited), and on `process.exit()` (called, not awaited, unless
 * `sync` is given, which then runs instead). Cleanups run newest first.
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
