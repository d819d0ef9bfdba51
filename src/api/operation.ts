/**
 * The one shape of every public operation (issue 14 C15/C16): `(options, reporter?) → Promise<Result>`,
 * where `options.signal` (an AbortSignal) stops the work and rolls back what it did — temp folders
 * removed, stopped containers started again, half-written outputs deleted, half imports undone — and
 * the promise rejects with `DockpackError("INTERRUPTED")`. Nothing here touches process signals: an
 * application passes its own `AbortController.signal`; only the CLI turns SIGINT/SIGTERM into one.
 */
import { withSignal } from "../core/abort.js";
import { type Reporter, silentReporter } from "../core/output.js";

/** What every public operation's options accept besides their own fields. */
export interface Cancellable {
  /** Aborts the operation; it rolls back and rejects with `INTERRUPTED`. */
  signal?: AbortSignal;
}

/** A public operation: options (with `signal`) and an optional Reporter (default silent). */
export type Operation<O, R> = (options: O & Cancellable, reporter?: Reporter) => Promise<R>;

/**
 * Wraps a domain function into the public shape: runs it with `options.signal` as the ambient
 * signal of its async context (core/abort: child processes, streams, atomic writes and compose runs
 * reached from it honour it) and a silent Reporter when none is given.
 */
export function operation<O, R>(fn: (options: O, reporter: Reporter) => Promise<R>): Operation<O, R> {
  return (options, reporter = silentReporter()) => withSignal(options.signal, () => fn(options, reporter));
}
