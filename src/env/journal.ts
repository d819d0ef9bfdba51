/**
 * An undo journal for multi-step operations (import): each step records how to undo what it
 * did and, optionally, what to do once the whole operation has succeeded (e.g. drop the copy of
 * something it replaced). `rollback()` runs the undo actions newest first and keeps going when
 * one fails, collecting the failures.
 *
 * Interruption (SIGINT, SIGTERM, SIGHUP): a core/fs cleanup hook marks the journal cancelled,
 * aborts in-flight streams registered with {@link Journal.onCancel}, and waits for the operation
 * to notice ({@link Journal.checkpoint} throws `INTERRUPTED` at the next step boundary) and roll
 * itself back, so nothing is created after the rollback ran. When the operation does not settle
 * within 120 s, the hook rolls back itself.
 */
import { DockpackError } from "../core/errors.js";
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
    this.unregister = onCleanup(async () => {
      this.cancelled = true;
      for (const hook of this.cancelHooks) hook();
      const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 120_000).unref());
      if ((await Promise.race([this.finished, timeout])) === "timeout") await this.rollback();
    });
  }

  /** Throws `INTERRUPTED` when an interruption was received; call at step boundaries. */
  checkpoint(): void {
    if (this.cancelled)
      throw new DockpackError("INTERRUPTED", "Interrupted by a signal.", { hint: "Run the import again." });
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
          await a.fn();
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
