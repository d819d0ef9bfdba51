/**
 * The CLI's interrupt handling — the only place in dockpack that listens to process signals.
 *
 * SIGINT / SIGTERM / SIGHUP abort the command's AbortSignal (reason: the signal name). The command
 * (run inside `withSignal(interrupts.signal, …)`) stops, rolls back and rejects with `INTERRUPTED`;
 * `action()` prints one plain line and sets exit code 128 + signal number (130 / 143 / 129).
 * {@link Interrupts.finish} then runs any cleanup still registered and exits.
 *
 * When the command has not settled `graceSeconds` after the signal (default 60, env
 * `DOCKPACK_INTERRUPT_GRACE_SECONDS`), the registered cleanups run anyway and the process exits.
 * A second signal exits at once after the synchronous cleanups (e.g. `docker start` of stopped
 * containers).
 */
import { runCleanups, runCleanupsSync } from "../core/fs/cleanup.js";

const CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
const SIGNALS = Object.keys(CODES) as NodeJS.Signals[];

/** What {@link handleInterrupts} returns. */
export interface Interrupts {
  /** Aborted at the first SIGINT/SIGTERM/SIGHUP; its reason is the signal name. */
  readonly signal: AbortSignal;
  /** The signal received, or null. */
  received(): NodeJS.Signals | null;
  /**
   * Call once the command settled. Not interrupted: a later signal exits at once with the
   * command's own exit code (its result stands). Interrupted: the remaining cleanups run and the
   * process exits (with `process.exitCode`, or 128 + signal).
   */
  finish(): Promise<void>;
}

/** Exit code for an interrupt by `sig` (128 + signal number, as shells report it). */
export function interruptExitCode(sig: string | null | undefined): number {
  return (sig && CODES[sig]) || 130;
}

/** Installs the CLI's signal handlers; see the module docs. */
export function handleInterrupts(
  options: { graceSeconds?: number; write?: (line: string) => void } = {},
): Interrupts {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const grace = options.graceSeconds ?? (Number(process.env.DOCKPACK_INTERRUPT_GRACE_SECONDS) || 60);
  const controller = new AbortController();
  let received: NodeJS.Signals | null = null;
  let finishing = false;

  const exit = (code: number) => {
    process.exit(process.exitCode === undefined || process.exitCode === 0 ? code : process.exitCode);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) {
      write(`${sig} again: stopping now`);
      runCleanupsSync();
      process.exit(interruptExitCode(received));
    }
    received = sig;
    controller.abort(sig);
    setTimeout(() => {
      if (finishing) return;
      write(`interrupted by ${sig}; the command did not stop within ${grace} s, cleaning up and exiting`);
      void runCleanups().finally(() => exit(interruptExitCode(sig)));
    }, grace * 1000).unref();
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);

  return {
    signal: controller.signal,
    received: () => received,
    async finish() {
      finishing = true;
      if (!received) {
        // The command has settled and printed its result; the process is only exiting. A signal
        // now (Ctrl-C a moment too late) must not turn that result into a 130 by the default
        // action: exit at once with the command's own code.
        for (const sig of SIGNALS) {
          process.off(sig, onSignal);
          process.on(sig, () => process.exit(process.exitCode ?? 0));
        }
        return;
      }
      await runCleanups();
      process.exit(process.exitCode ?? 0);
    },
  };
}
