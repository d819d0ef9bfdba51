/**
 * Cancellation: how a long operation learns that it must stop, and how it says it stopped.
 *
 * The one mechanism: an `AbortSignal`. A public operation takes `options.signal`; when it aborts,
 * the operation stops its in-flight work (streams are destroyed, child processes killed), rolls
 * back what it did (its own `finally`/`catch` blocks: temp folders removed, stopped containers
 * started again, half imports undone) and rejects with `DockpackError("INTERRUPTED")`.
 *
 * The signal is also *ambient*: {@link withSignal} runs a function with the signal attached to its
 * async context (AsyncLocalStorage), so core building blocks reached from it — `run()` child
 * processes, volume and image streams, compose runs — honour it without every domain threading
 * it through each call. {@link currentSignal} returns it; {@link onAbort} listens to it.
 * Rollback code runs in {@link withoutSignal}, so the abort does not cut the undoing itself.
 *
 * Nothing here touches process signals. Only the CLI (src/cli/main.ts) turns SIGINT/SIGTERM/SIGHUP
 * into an abort; the MCP server turns a cancelled request into one (the SDK's `extra.signal`).
 * An application embedding dockpack passes its own `AbortController.signal`.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { DockpackError } from "./errors.js";

const scope = new AsyncLocalStorage<AbortSignal>();

/** The abort signal of the operation running in this async context, if any. */
export function currentSignal(): AbortSignal | undefined {
  return scope.getStore();
}

/**
 * Runs `fn` with `signal` as the ambient signal (combined with an outer one, if any: either
 * aborts it). Throws `INTERRUPTED` at once when the signal is already aborted, and instead of
 * whatever `fn` rejects with once it has aborted. With no signal and no outer one, simply runs `fn`.
 */
export async function withSignal<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const outer = scope.getStore();
  const combined = !signal || signal === outer ? outer : outer ? AbortSignal.any([outer, signal]) : signal;
  if (!combined) return fn();
  return scope.run(combined, async () => {
    throwIfAborted(combined);
    try {
      return await fn();
    } catch (err) {
      // whatever the aborted work ended with (a destroyed stream's "Premature close", a killed
      // program's exit code …), the operation was interrupted
      if (combined.aborted) throw interrupted(combined);
      throw err;
    }
  });
}

/**
 * Runs `fn` outside any ambient signal: for rollback after an abort (removing what was created,
 * starting stopped containers, deleting a branch), whose own `run()` calls and streams must not be
 * cut by the abort that triggered them. Works for async `fn` too (its awaits stay outside).
 */
export function withoutSignal<T>(fn: () => T): T {
  return scope.exit(fn);
}

/** The `INTERRUPTED` error of an aborted operation; names the signal when the reason is one (`SIGINT`). */
export function interrupted(signal: AbortSignal | undefined = currentSignal()): DockpackError {
  const reason = signal?.reason;
  if (reason instanceof DockpackError && reason.code === "INTERRUPTED") return reason;
  const why = typeof reason === "string" && /^SIG[A-Z]+$/.test(reason) ? ` by ${reason}` : "";
  return new DockpackError("INTERRUPTED", `Interrupted${why}; the operation was rolled back.`, {
    hint: "Run it again.",
  });
}

/** Throws `INTERRUPTED` when `signal` (default: the ambient one) is aborted; call between steps. */
export function throwIfAborted(signal: AbortSignal | undefined = currentSignal()): void {
  if (signal?.aborted) throw interrupted(signal);
}

/**
 * Calls `fn` once when `signal` (default: the ambient one) aborts — at once (next microtask) when
 * it already has. Returns a function that stops listening; call it when the work is done.
 * Typical use: `const off = onAbort(() => stream.destroy(interrupted())); try { … } finally { off(); }`
 */
export function onAbort(fn: () => void, signal: AbortSignal | undefined = currentSignal()): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    let cancelled = false;
    queueMicrotask(() => {
      if (!cancelled) fn();
    });
    return () => {
      cancelled = true;
    };
  }
  signal.addEventListener("abort", fn, { once: true });
  return () => signal.removeEventListener("abort", fn);
}

/**
 * True when `err` is how an aborted operation ended: an `INTERRUPTED` DockpackError, a DOM
 * `AbortError`, or — once `signal` has aborted — any error at all (a stream destroyed by the abort
 * surfaces as `ERR_STREAM_PREMATURE_CLOSE`, "Premature close", EPIPE …).
 */
export function isInterrupted(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  if (err instanceof DockpackError) return err.code === "INTERRUPTED";
  return err instanceof Error && err.name === "AbortError";
}
