/**
 * An undo journal for multi-step operations (import): each step records how to undo what it
 * did and, optionally, what to do once the whole operation has succeeded (e.g. drop the copy of
 * something it replaced). `rollback()` runs the undo actions newest first and keeps going when
 * one fails, collecting the failures.
 *
 * Interruption (the ambient abort signal of core/abort.ts: Ctrl-C in the CLI, a cancelled MCP
 * request, an embedder's `options.signal`) marks the journal cancelled and aborts in-flight streams
 * registered with {@link Journal.onCancel}; the operation notices ({@link Journal.checkpoint}
 * throws `INTERRUPTED` at the next step boundary) and rolls itself back, so nothing is created
 * after the rollback ran. As a safety net when the process ends first, a core/fs cleanup hook does
 * the same and waits up to 120 s for the operation to settle, else rolls back itself.
 */
import { interrupted, onAbort, withoutSignal } from "../core/abort.js";
import { onCleanup } from "../core/fs.js";
import type { Reporter } from "../core/output.js";

/** See the module docs. */
export class Journal {
  private undo: { what: string; fn: () => Promise<void> }[] = [];
  private onSuccess: { what: string; fn: () => Promise<void> }[] = [];
  private cancelHooks = new Set<() => void>();
  private readonly unregister: () => void;
  private settled = false;
  private settle!: () => void;
  private readonly finished = new Promise<void>((resolve) => {
    this.settle = resolve;
  });
  /** True once an interruption was received. */
  cancelled = false;
  /** The step running now (named in errors). */
  step = "start";

  constructor(private readonly reporter: Reporter) {
    const cancel = () => {
      this.cancelled = true;
      for (const hook of this.cancelHooks) hook();
    };
    const offAbort = onAbort(cancel);
    const offCleanup = onCleanup(async () => {
      cancel();
      const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 120_000).unref());
      if ((await Promise.race([this.finished, timeout])) === "timeout") await this.rollback();
    });
    this.unregister = () => {
      offAbort();
      offCleanup();
    };
  }

  /** Throws `INTERRUPTED` when an interruption was received; call at step boundaries. */
  checkpoint(): void {
    if (this.cancelled) throw interrupted();
  }

  /** Registers an abort action for in-flight work (e.g. destroy a stream); returns its unregister. */
  onCancel(fn: () => void): () => void {
    this.cancelHooks.add(fn);
    return () => this.cancelHooks.delete(fn);
  }

  /** Records how to undo something just done. */
  added(what: string, fn: () => Promise<void>): void {
    this.undo.push({ what, fn });
  }

  /** Records something to do after success (never run on rollback). */
  afterSuccess(what: string, fn: () => Promise<void>): void {
    this.onSuccess.push({ what, fn });
  }

  /** Runs the after-success actions (failures only warned about) and forgets the undo actions. */
  async commit(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    try {
      for (const a of this.onSuccess) {
        try {
          await a.fn();
        } catch (err) {
          this.reporter.warn(`after import: ${a.what} failed: ${(err as Error).message}`);
        }
      }
    } finally {
      this.unregister();
      this.settle();
    }
  }

  /** Undoes everything recorded, newest first. Returns the undo actions that failed. */
  async rollback(): Promise<string[]> {
    if (this.settled) return [];
    this.settled = true;
    const failed: string[] = [];
    try {
      for (const a of this.undo.reverse()) {
        try {
          this.reporter.info(`rollback: ${a.what}`);
          // outside the (aborted) ambient signal: the undo's own git/docker calls must run
          await withoutSignal(a.fn);
        } catch (err) {
          failed.push(`${a.what}: ${(err as Error).message}`);
        }
      }
    } finally {
      this.unregister();
      this.settle();
    }
    return failed;
  }
}
