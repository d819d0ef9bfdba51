/**
 * SHA-256 of volume streams computed on worker threads, so that the main thread — which reads the
 * engine's socket, rewrites tar headers and feeds the compressor — never spends its time hashing
 * (hashing 1 GiB costs about as much CPU as everything else the main thread does with it).
 *
 * Three ways in:
 * - {@link HashingBatcher}: the stream's chunks (the engine's HTTP chunks are often tiny) are
 *   copied into 1 MiB slots of a shared ring; each full slot is handed to the worker (an atomic
 *   counter, no message, no transfer, no allocation) and to a sink (one large write, e.g. into the
 *   compressor's stdin) from the same memory. A slot is reused once both are done with it, so
 *   memory stays at {@link SLOTS} MiB and both sides exert backpressure.
 * - {@link SharedHasher}: the caller reads straight into buffers of a shared arena (a socket's
 *   `onread`) and names the byte ranges to hash, in order; the worker hashes them where they are
 *   (no copy, no message); bytes from elsewhere (rewritten tar headers) are copied into a small
 *   side ring of the arena first.
 * - {@link hashGrowingFile}: the worker reads a region of a file that another process (the
 *   compressor, writing straight into the package) is still appending to, following it until the
 *   caller names the final length: the bytes are hashed as they are on disk, none of them passes
 *   through the main thread.
 *
 * The digests are `sha256:<64 hex>` (OCI form, as digest.ts). The worker is inline JavaScript
 * (node:crypto, node:fs only), so it runs the same from dist/, from tsx and from a bundle.
 */
import { Worker } from "node:worker_threads";
import { DockpackError } from "../core/errors.js";

/** Bytes per slot (and per read of a followed file). */
const SLOT = 1024 * 1024;
/** Slots in a {@link HashingBatcher}'s ring. */
const SLOTS = 8;

// ring control (Int32): [0] slots published, [1] slots hashed, [2] final, [3] unused,
// [4 + i] bytes in slot i
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { openSync, readSync, closeSync } = require("node:fs");
// hashes the items published in ctrl[0] (bytes(k): item k's bytes), counting them in ctrl[1],
// until ctrl[2] says nothing more comes
function drain(ctrl, bytes) {
  const h = createHash("sha256");
  let hashed = 0;
  let size = 0;
  for (;;) {
    const published = Atomics.load(ctrl, 0);
    if (hashed !== published) {
      while (hashed !== published) {
        const b = bytes(hashed);
        h.update(b);
        size += b.length;
        hashed++;
        Atomics.store(ctrl, 1, hashed);
      }
      Atomics.notify(ctrl, 1);
      continue;
    }
    if (Atomics.load(ctrl, 2) !== 0 && Atomics.load(ctrl, 0) === hashed) break;
    Atomics.wait(ctrl, 0, published, 1000);
  }
  parentPort.postMessage({ type: "digest", hex: h.digest("hex"), size });
}
function ring(m) {
  const ctrl = new Int32Array(m.ctrl);
  const data = new Uint8Array(m.data);
  drain(ctrl, (k) => {
    const slot = k % ${SLOTS};
    return data.subarray(slot * ${SLOT}, slot * ${SLOT} + ctrl[4 + slot]);
  });
}
function follow(m) {
  // m.ctrl: Int32[0] = 1 when done, Float64[1] = the final length
  const flag = new Int32Array(m.ctrl, 0, 1);
  const len = new Float64Array(m.ctrl, 8, 1);
  const fd = openSync(m.path, "r");
  const buf = Buffer.allocUnsafe(${SLOT});
  const h = createHash("sha256");
  let pos = 0;
  try {
    for (;;) {
      const done = Atomics.load(flag, 0) !== 0;
      const limit = done ? len[0] : Number.MAX_SAFE_INTEGER;
      if (pos >= limit) break;
      const n = readSync(fd, buf, 0, Math.min(buf.length, limit - pos), m.offset + pos);
      if (n > 0) { h.update(buf.subarray(0, n)); pos += n; continue; }
      if (done) throw new Error("the file ended " + (limit - pos) + " bytes early");
      Atomics.wait(flag, 0, 0, 20);
    }
    parentPort.postMessage({ type: "digest", hex: h.digest("hex"), size: pos });
  } finally {
    closeSync(fd);
  }
}
function parts(m) {
  // m.ctrl: Int32 [0] ranges published, [1] ranges hashed, [2] final; m.desc: [offset, length] pairs
  const ctrl = new Int32Array(m.ctrl);
  const desc = new Int32Array(m.desc);
  const data = new Uint8Array(m.data);
  const cap = desc.length / 2;
  drain(ctrl, (k) => {
    const i = (k % cap) * 2;
    return data.subarray(desc[i], desc[i] + desc[i + 1]);
  });
}
parentPort.once("message", (m) => {
  try {
    if (m.type === "ring") ring(m);
    else if (m.type === "parts") parts(m);
    else follow(m);
  } catch (e) {
    parentPort.postMessage({ type: "error", message: String((e && e.message) || e) });
  }
});
`;

type Reply = { type: "digest"; hex: string; size: number } | { type: "error"; message: string };

function hashError(message: string): DockpackError {
  return new DockpackError("HASH_FAILED", `Hashing on a worker thread failed: ${message}`, {
    hint: "Run the command again; check free memory.",
  });
}

/** `Atomics.waitAsync` (V8 ≥ 8.7, Node ≥ 16; not yet in TypeScript's ES2022 lib). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<unknown> | string };
  }
).waitAsync;

/** Result of a hash: `sha256:<hex>` and the number of bytes hashed. */
export interface HashResult {
  digest: string;
  size: number;
}

/**
 * Starts the worker with its one job; resolves with its digest. Not unref'd: a caller awaiting a
 * digest must keep the process alive; every user ends the worker (terminate).
 */
function startWorker(job: Record<string, unknown>): { worker: Worker; result: Promise<HashResult> } {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  const result = new Promise<HashResult>((resolve, reject) => {
    worker.on("message", (r: Reply) => {
      if (r.type === "digest") resolve({ digest: `sha256:${r.hex}`, size: r.size });
      else reject(hashError(r.message));
    });
    worker.on("error", (e) => reject(hashError(e.message)));
    worker.on("exit", (code) => reject(hashError(`the worker exited with code ${code}`)));
  });
  result.catch(() => undefined);
  worker.postMessage(job);
  return { worker, result };
}

/** Tells a `ring` or `parts` worker that nothing more comes (ctrl[2]) and wakes it. */
function markFinal(ctrl: Int32Array): void {
  Atomics.store(ctrl, 2, 1);
  Atomics.notify(ctrl, 0);
}

/** Ends a `ring` or `parts` worker (no digest). */
function stopWorker(ctrl: Int32Array, worker: Worker): void {
  markFinal(ctrl);
  void worker.terminate();
}

/** The worker's digest, once it checked that it hashed the `size` bytes handed to it. */
async function checkedDigest(result: Promise<HashResult>, size: number): Promise<HashResult> {
  const r = await result;
  if (r.size !== size) throw hashError(`hashed ${r.size} of ${size} bytes`);
  return r;
}

/**
 * Copies a stream's chunks into a ring of 1 MiB slots that a worker hashes and `sink` writes out
 * (see the module docs). Use: `if (!b.canTake(n)) await b.ready(n); b.push(chunk)`, then
 * `await b.finish()`. `sink(view, done)` must call `done(err?)` once it no longer needs `view`
 * (a Buffer over shared memory, overwritten afterwards); sink calls complete in order.
 */
export class HashingBatcher {
  private readonly data = new SharedArrayBuffer(SLOT * SLOTS);
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(4 * (4 + SLOTS)));
  private readonly worker: Worker;
  private readonly result: Promise<HashResult>;
  /** Absolute number of the slot being filled, and bytes in it. */
  private slot = 0;
  private fill = 0;
  /** Slots whose sink write completed. */
  private written = 0;
  private failure?: unknown;
  private wakeWriter?: () => void;
  /** Bytes pushed so far. */
  size = 0;

  constructor(private readonly sink: (view: Buffer, done: (err?: unknown) => void) => void) {
    const w = startWorker({ type: "ring", ctrl: this.ctrl.buffer, data: this.data });
    this.worker = w.worker;
    this.result = w.result;
    this.result.catch((e) => this.fail(e));
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    this.wakeWriter?.();
  }

  /** Whether absolute slot `k` may be (re)filled: hashed and written out `SLOTS` slots ago. */
  private free(k: number): boolean {
    return k - Atomics.load(this.ctrl, 1) < SLOTS && k - this.written < SLOTS;
  }

  /** Whether {@link push} of `n` bytes may be called now. */
  canTake(n: number): boolean {
    if (!this.free(this.slot)) return false;
    return this.fill + n <= SLOT || this.free(this.slot + 1);
  }

  /**
   * Resolves when {@link push} of `n` bytes may be called (n ≤ 1 MiB).
   * @throws the sink's or the worker's failure
   */
  async ready(n: number): Promise<void> {
    while (!this.canTake(n)) {
      if (this.failure) throw this.failure;
      const hashed = Atomics.load(this.ctrl, 1);
      const wrote = new Promise<void>((r) => {
        this.wakeWriter = r;
      });
      const { async, value } = waitAsync(this.ctrl, 1, hashed);
      await (async ? Promise.race([value, wrote]) : Promise.resolve());
      this.wakeWriter = undefined;
    }
    if (this.failure) throw this.failure;
  }

  private publish(): void {
    const i = this.slot % SLOTS;
    const len = this.fill;
    this.ctrl[4 + i] = len;
    Atomics.store(this.ctrl, 0, this.slot + 1);
    Atomics.notify(this.ctrl, 0);
    this.sink(Buffer.from(this.data, i * SLOT, len), (err) => {
      if (err) this.fail(err);
      this.written++;
      this.wakeWriter?.();
    });
    this.slot++;
    this.fill = 0;
  }

  /**
   * Copies `chunk` in (the caller may reuse it at once). Only when {@link canTake} said so.
   * @throws the sink's or the worker's failure
   */
  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    const view = new Uint8Array(this.data);
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, SLOT - this.fill);
      view.set(chunk.subarray(at, at + n), (this.slot % SLOTS) * SLOT + this.fill);
      this.fill += n;
      at += n;
      if (this.fill === SLOT) this.publish();
    }
    this.size += chunk.length;
  }

  /**
   * Publishes the last slot and resolves with the digest once the worker hashed everything and
   * every sink write completed.
   * @throws the sink's or the worker's failure (`HASH_FAILED`)
   */
  async finish(): Promise<HashResult> {
    try {
      if (this.fill > 0) {
        await this.ready(0);
        this.publish();
      }
      markFinal(this.ctrl);
      while (this.written < this.slot && !this.failure)
        await new Promise<void>((r) => {
          this.wakeWriter = r;
        });
      if (this.failure) throw this.failure;
      return await checkedDigest(this.result, this.size);
    } finally {
      this.close();
    }
  }

  /** Stops the worker (no digest). */
  close(): void {
    stopWorker(this.ctrl, this.worker);
  }
}

/** A hash of a file region that is still growing; see {@link hashGrowingFile}. */
export interface GrowingFileHash {
  /**
   * Says the region is complete at `length` bytes and resolves with its digest once the worker
   * has read them all.
   * @throws DockpackError `HASH_FAILED` (the file is shorter than `length`, or unreadable)
   */
  end(length: number): Promise<HashResult>;
  /** Stops following the file (no digest). */
  close(): void;
}

/**
 * Starts hashing the bytes of `path` from `offset` on a worker thread while another writer
 * appends them; see the module docs. Only bytes below the file's size are ever read (the kernel
 * updates the size after the data is in the page cache), so what is hashed is what the file holds.
 */
export function hashGrowingFile(path: string, offset: number): GrowingFileHash {
  const ctrl = new SharedArrayBuffer(16);
  const flag = new Int32Array(ctrl, 0, 1);
  const len = new Float64Array(ctrl, 8, 1);
  const { worker, result } = startWorker({ type: "follow", path, offset, ctrl });
  const stop = (length: number) => {
    len[0] = length;
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  };
  return {
    async end(length: number) {
      stop(length);
      try {
        return await result;
      } finally {
        void worker.terminate();
      }
    },
    close() {
      stop(0);
      void worker.terminate();
    },
  };
}

/** Byte ranges a {@link SharedHasher} holds queued at most. */
const RANGES = 4096;
/** Bytes of a {@link SharedHasher}'s side ring (bytes from outside the arena's buffers). */
const SIDE = 256 * 1024;

/**
 * SHA-256 of a stream whose bytes mostly lie in buffers of a shared arena, computed on a worker
 * thread (see the module docs). Use: read into {@link buffer}s; for each piece of the stream, in
 * order, {@link add} it (a slice of an arena buffer, or any other bytes, which are copied), then
 * {@link publish}; a buffer may be reused once {@link hashed} reached the ticket `add` returned
 * for its last range ({@link whenHashed}); finally {@link finish}. The main thread blocks (briefly)
 * only when the side ring or the range queue is full.
 */
export class SharedHasher {
  private readonly arena: SharedArrayBuffer;
  private readonly data: Uint8Array;
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(16));
  private readonly desc = new Int32Array(new SharedArrayBuffer(RANGES * 8));
  private readonly worker: Worker;
  private readonly result: Promise<HashResult>;
  /** Ranges added (absolute count): the ticket of the bytes added so far. */
  private added = 0;
  /** Absolute positions in the side ring: written up to, and (tickets) where each use ends. */
  private sideAt = 0;
  private sideUses: Array<{ ticket: number; end: number }> = [];
  private sideFreed = 0;
  private failure?: unknown;
  /** Bytes added so far. */
  size = 0;

  /**
   * @param count buffers of the arena
   * @param bytes bytes per buffer
   */
  constructor(
    private readonly count: number,
    private readonly bytes: number,
  ) {
    this.arena = new SharedArrayBuffer(count * bytes + SIDE);
    this.data = new Uint8Array(this.arena);
    const w = startWorker({
      type: "parts",
      ctrl: this.ctrl.buffer,
      desc: this.desc.buffer,
      data: this.arena,
    });
    this.worker = w.worker;
    this.result = w.result;
    this.result.catch((e) => {
      this.failure ??= e;
    });
  }

  /** Arena buffer `i` (0 ≤ i < count), to read into. */
  buffer(i: number): Buffer {
    return Buffer.from(this.arena, i * this.bytes, this.bytes);
  }

  /** The ticket of everything added so far ({@link hashed} reaches it once all is hashed). */
  get ticket(): number {
    return this.added;
  }

  /** Ranges hashed so far (compare with a ticket). */
  hashed(): number {
    return Atomics.load(this.ctrl, 1);
  }

  /** Blocks this thread until the worker hashed `ticket` ranges (it is behind). */
  private block(ticket: number): void {
    for (;;) {
      if (this.failure) throw this.failure;
      const h = Atomics.load(this.ctrl, 1);
      if (h >= ticket) return;
      this.publish();
      Atomics.wait(this.ctrl, 1, h, 50);
    }
  }

  private range(offset: number, length: number): void {
    if (this.added - this.hashed() >= RANGES) this.block(this.added - RANGES + 1);
    const i = (this.added % RANGES) * 2;
    this.desc[i] = offset;
    this.desc[i + 1] = length;
    this.added++;
  }

  /** Copies `bytes` (≤ SIDE) into the side ring, waiting for room; queues its range. */
  private side(bytes: Uint8Array): void {
    const base = this.count * this.bytes;
    let at = this.sideAt;
    // a range never wraps: skip the ring's tail when it does not fit there
    if ((at % SIDE) + bytes.length > SIDE) at += SIDE - (at % SIDE);
    for (;;) {
      while (this.sideUses.length > 0 && this.sideUses[0].ticket <= this.hashed())
        this.sideFreed = (this.sideUses.shift() as { end: number }).end;
      // nothing in use: everything before `at` (a skipped tail included) is free
      if (this.sideUses.length === 0) this.sideFreed = at;
      if (at + bytes.length - this.sideFreed <= SIDE) break;
      this.block((this.sideUses[0] as { ticket: number }).ticket);
    }
    this.data.set(bytes, base + (at % SIDE));
    this.range(base + (at % SIDE), bytes.length);
    this.sideAt = at + bytes.length;
    this.sideUses.push({ ticket: this.added, end: this.sideAt });
  }

  /**
   * Queues `part` (the next bytes of the stream) and returns its ticket: {@link hashed} reaches it
   * once `part` is hashed. A slice of an arena buffer is hashed in place (keep it unchanged until
   * then); other bytes are copied.
   * @throws DockpackError `HASH_FAILED` (the worker failed)
   */
  add(part: Uint8Array): number {
    if (this.failure) throw this.failure;
    this.size += part.length;
    if (part.buffer === this.arena && part.byteOffset + part.length <= this.count * this.bytes) {
      if (part.length > 0) this.range(part.byteOffset, part.length);
    } else for (let at = 0; at < part.length; at += SIDE) this.side(part.subarray(at, at + SIDE));
    return this.added;
  }

  /** Hands the ranges added so far to the worker. */
  publish(): void {
    Atomics.store(this.ctrl, 0, this.added);
    Atomics.notify(this.ctrl, 0);
  }

  /**
   * Resolves once {@link hashed} reached `ticket`.
   * @throws DockpackError `HASH_FAILED`
   */
  async whenHashed(ticket: number): Promise<void> {
    this.publish();
    for (;;) {
      if (this.failure) throw this.failure;
      const h = Atomics.load(this.ctrl, 1);
      if (h >= ticket) return;
      const { async, value } = waitAsync(this.ctrl, 1, h);
      if (async) await Promise.race([value, this.result]);
    }
  }

  /**
   * Resolves with the digest once every range added is hashed.
   * @throws DockpackError `HASH_FAILED`
   */
  finish(): Promise<HashResult> {
    this.publish();
    markFinal(this.ctrl);
    return checkedDigest(this.result, this.size).finally(() => this.close());
  }

  /** Stops the worker (no digest). */
  close(): void {
    stopWorker(this.ctrl, this.worker);
  }
}
