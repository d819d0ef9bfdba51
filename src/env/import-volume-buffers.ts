/**
 * Read buffers whose bytes are hashed in place on a worker thread (package-volume-hash.ts
 * {@link SharedHasher}) while the main thread writes them on (issue 17, import's one pass): a
 * buffer is lent to a read, its bytes are handed to the hasher and to a socket write, and it is
 * free again only once the write completed **and** the worker hashed it. So the digest is of
 * exactly the bytes that were written, and no buffer is overwritten while either side still
 * needs it. Without a hasher (bytes that need no digest, e.g. zstd's output at import) the same
 * pool lends plain buffers, free again once their write completed.
 */
import type { SharedHasher } from "./package-volume-hash.js";

/**
 * Bytes handed to the hasher before it is told (and woken): the worker sleeps whenever it has
 * caught up, so telling it of every small read would wake it once per read.
 */
const PUBLISH_BYTES = 1024 * 1024;

/** One lent buffer: free again once `written` and the hasher reached `ticket`. */
interface Lent {
  buffer: Buffer;
  ticket: number;
  written: boolean;
}

/**
 * The arena buffers of one {@link SharedHasher} (or plain buffers, `H` null), lent to reads in
 * order (see the module docs).
 */
export class HashedBuffers<H extends SharedHasher | null = SharedHasher> {
  private readonly free: Buffer[] = [];
  private readonly lent: Lent[] = [];
  private wake?: () => void;
  private unpublished = 0;

  /**
   * @param hasher the hasher whose arena holds the buffers; null: plain buffers, nothing hashed
   * @param count its arena's buffers (the pool's buffers)
   * @param bytes bytes per buffer (also of a spare, see {@link take})
   */
  constructor(
    readonly hasher: H,
    count: number,
    private readonly bytes: number,
  ) {
    for (let i = 0; i < count; i++) this.free.push(hasher ? hasher.buffer(i) : Buffer.allocUnsafeSlow(bytes));
  }

  /** Moves the buffers that were written and hashed, in lending order, back to the free list. */
  private reclaim(): void {
    const hashed = this.hasher ? this.hasher.hashed() : Number.POSITIVE_INFINITY;
    while (this.lent.length > 0 && this.lent[0].written && this.lent[0].ticket <= hashed)
      this.free.push((this.lent.shift() as Lent).buffer);
  }

  /** Free buffers now. */
  get available(): number {
    this.reclaim();
    return this.free.length;
  }

  /**
   * A free buffer to read into; a spare outside the arena when none is free (its bytes are then
   * copied by the hasher: correct, only slower — for the paths that no longer wait, e.g. after a
   * failure).
   */
  take(): Buffer {
    this.reclaim();
    return this.free.pop() ?? Buffer.allocUnsafe(this.bytes);
  }

  /**
   * Hands `data` (the bytes read into `buffer`, the stream's next bytes) to the hasher and lends
   * `buffer` until the returned function is called (its write completed, or will never happen).
   * @throws DockpackError `HASH_FAILED` (the worker failed)
   */
  lend(buffer: Buffer, data: Buffer): () => void {
    let ticket = 0;
    if (this.hasher) {
      ticket = this.hasher.add(data);
      this.unpublished += data.length;
      if (this.unpublished >= PUBLISH_BYTES) this.publish();
    }
    const entry: Lent = { buffer, ticket, written: false };
    this.lent.push(entry);
    return () => {
      entry.written = true;
      this.poke();
    };
  }

  /** Hands what was lent so far to the hasher's worker. */
  publish(): void {
    this.unpublished = 0;
    this.hasher?.publish();
  }

  /** Wakes a {@link until} waiter (to look at its `stop` condition again). */
  poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /**
   * Resolves once more than `n` buffers are free, or `stop()`, or nothing is lent any more.
   * @throws DockpackError `HASH_FAILED` (the worker failed)
   */
  async until(n: number, stop: () => boolean): Promise<void> {
    for (;;) {
      this.reclaim();
      if (this.free.length > n || stop() || this.lent.length === 0) return;
      this.publish();
      const head = this.lent[0];
      // written but not reclaimed: only a hasher can be behind
      if (head.written && this.hasher) await this.hasher.whenHashed(head.ticket);
      else
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
    }
  }
}
