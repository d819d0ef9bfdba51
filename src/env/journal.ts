/**
 * An undo journal for multi-step operations (import): each step records how to undo what it
 * did and, optionally, what to do once the whole operation has succeeded (e.g. drop the copy of
 * something it replaced). `rollback()` runs the undo actions newest first and keeps going when
 * one fails, collecting the failures; it also runs when the process is interrupted (SIGINT,
 * SIGTERM) through a core/fs cleanup hook.
 */
import { onCleanup } from "../core/fs.js";
import type { Reporter } from "../core/output.js";

/** See the module docs. */
export class Journal {
  private undo: { what: string; fn: () => Promise<void> }[] = [];
  private onSuccess: { what: string; fn: () => Promise<void> }[] = [];
  private readonly unregister: () => void;
  private settled = false;
  /** The step running now (named in errors). */
  step = "start";

  constructor(private readonly reporter: Reporter) {
    this.unregister = onCleanup(async () => {
      await this.rollback();
    });
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
    this.unregister();
    for (const a of this.onSuccess) {
      try {
        await a.fn();
      } catch (err) {
        this.reporter.warn(`after import: ${a.what} failed: ${(err as Error).message}`);
      }
    }
  }

  /** Undoes everything recorded, newest first. Returns the undo actions that failed. */
  async rollback(): Promise<string[]> {
    if (this.settled) return [];
    this.settled = true;
    this.unregister();
    const failed: string[] = [];
    for (const a of this.undo.reverse()) {
      try {
        this.reporter.info(`rollback: ${a.what}`);
        await a.fn();
      } catch (err) {
        failed.push(`${a.what}: ${(err as Error).message}`);
      }
    }
    return failed;
  }
}
