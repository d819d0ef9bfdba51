/**
 * The invoke queue of a tool service: at most `size` tool runs at once, at most `maxQueued`
 * requests waiting in arrival order; a waiting request whose client goes away leaves the queue.
 */
import { DockpackError } from "../core/errors.js";

/** Reports the running and queued counts after every change. */
export type QueueObserver = (running: number, queued: number) => void;

/** A bounded counting semaphore with abortable waits. */
export class InvokeQueue {
  private busy = 0;
  private readonly waiting: { go: () => void; fail: (e: unknown) => void }[] = [];
  /**
   * @param size tool runs at once (≥ 1)
   * @param maxQueued requests allowed to wait (0 = none: a request that finds every slot busy is refused)
   */
  constructor(
    private readonly size: number,
    private readonly maxQueued: number,
    private readonly observe: QueueObserver = () => {},
  ) {}

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Waits for a slot. Call {@link release} once when done.
   * @throws DockpackError `SERVICE_BUSY` when the queue is full; `REQUEST_ABORTED` when `signal`
   *   aborts while waiting (the request leaves the queue and holds no slot)
   */
  async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new DockpackError("REQUEST_ABORTED", "The client closed the request.");
    if (this.busy < this.size) {
      this.busy++;
      this.observe(this.busy, this.waiting.length);
      return;
    }
    if (this.waiting.length >= this.maxQueued)
      throw new DockpackError(
        "SERVICE_BUSY",
        `All ${this.size} tool slots are busy and ${this.maxQueued} requests are already waiting.`,
        { hint: "Retry later, or raise MAX_CONCURRENT_INVOKES / MAX_QUEUED_INVOKES." },
      );
    await new Promise<void>((go, fail) => {
      const entry = {
        go: () => {
          signal?.removeEventListener("abort", onAbort);
          go();
        },
        fail,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        this.observe(this.busy, this.waiting.length);
        fail(new DockpackError("REQUEST_ABORTED", "The client closed the request while it was queued."));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
      this.observe(this.busy, this.waiting.length);
    });
    // release() handed its slot over: busy stays the same
    this.observe(this.busy, this.waiting.length);
  }

  /** Frees a slot (handing it to the first waiting request, if any). */
  release(): void {
    const next = this.waiting.shift();
    if (next) next.go();
    else this.busy--;
    this.observe(this.busy, this.waiting.length);
  }
}
