/**
 * Small stream helpers shared by the byte pipelines (volume restore, package reading): waiting for
 * a writable's room, reading a readable chunk by chunk without the copies of its async iterator
 * (which hands out everything buffered, concatenated into a new buffer, each time), and reading a
 * file with ranges skipped.
 */
import { type FileHandle, open } from "node:fs/promises";
import { finished, Readable, type Writable } from "node:stream";

/**
 * Resolves at the stream's next `drain` or `close`, whichever comes first (no listener left), or
 * at once when it is already destroyed.
 */
export function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.closed) {
      resolve();
      return;
    }
    const go = () => {
      stream.off("drain", go);
      stream.off("close", go);
      resolve();
    };
    stream.on("drain", go);
    stream.on("close", go);
  });
}

/** Bytes {@link chunksOf} lets pile up before it pauses its input. */
const QUEUE_BYTES = 1024 * 1024;

/**
 * The chunks of `input` in order, each as the stream emitted it (never concatenated or copied).
 * Up to ~1 MiB is queued ahead of the consumer, then the input is paused until it is taken.
 * Ends with the stream's end (after the queued chunks); throws its error, or
 * `ERR_STREAM_PREMATURE_CLOSE` when it was destroyed before its end, at once (what was queued is
 * dropped, as the stream's own iterator does). When the consumer stops early (`break`, a
 * throw), `input` is destroyed, as with the stream's own iterator.
 */
export async function* chunksOf(input: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let queued = 0;
  let over = false;
  let failure: unknown;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued >= QUEUE_BYTES) input.pause();
    notify();
  };
  const stop = finished(input, { writable: false }, (err) => {
    over = true;
    failure = err;
    notify();
  });
  input.on("data", onData);
  try {
    for (;;) {
      if (failure) throw failure;
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queued -= chunk.length;
        yield chunk;
        continue;
      }
      if (over) return;
      if (input.isPaused()) input.resume();
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    input.off("data", onData);
    stop();
    if (!over) input.destroy();
  }
}

/** Zeros handed out for a skipped range (shared: nobody writes into a chunk it was given). */
const ZEROS = Buffer.alloc(1024 * 1024);

/** A file read from its start, with ranges its reader has no use for skipped (see {@link fileWithSkips}). */
export interface SkippingFileStream extends Readable {
  /**
   * Marks `[offset, offset + length)` as not needed: the part of it not read yet (and within the
   * file's size at open) is not read from the disk; zero bytes stand in for it.
   */
  skip(offset: number, length: number): void;
}

/**
 * Reads the regular file `path` (of `size` bytes when stat'ed) from its start in 1 MiB chunks,
 * like `createReadStream`, except for the ranges given to `skip`, whose bytes are not read: the
 * stream yields zeros there instead, so a reader that discards a member's content (e.g. the volume
 * data a verification read leaves to a later read) still sees every offset but costs no disk read
 * or copy. Past the skipped ranges the file is read as it is: a file cut short still ends early.
 * Errors: the file system's (open, read).
 */
export function fileWithSkips(path: string, size: number): SkippingFileStream {
  let fh: FileHandle | undefined;
  let pos = 0;
  const skips: Array<{ from: number; to: number }> = [];
  const stream = new Readable({
    highWaterMark: 1024 * 1024,
    construct(cb) {
      open(path, "r").then(
        (h) => {
          fh = h;
          cb();
        },
        (err) => cb(err),
      );
    },
    read(n) {
      const skipped = skips.find((s) => pos >= s.from && pos < s.to);
      if (skipped) {
        const len = Math.min(skipped.to - pos, ZEROS.length);
        pos += len;
        this.push(ZEROS.subarray(0, len));
        return;
      }
      const nextSkip = Math.min(...skips.filter((s) => s.from > pos).map((s) => s.from));
      const len = Math.max(1, Math.min(Math.max(n, 1024 * 1024), nextSkip - pos));
      const buf = Buffer.allocUnsafe(len);
      (fh as FileHandle).read(buf, 0, len, pos).then(
        ({ bytesRead }) => {
          pos += bytesRead;
          this.push(bytesRead > 0 ? buf.subarray(0, bytesRead) : null);
        },
        (err) => this.destroy(err),
      );
    },
    destroy(err, cb) {
      if (!fh) cb(err);
      else
        fh.close().then(
          () => cb(err),
          () => cb(err),
        );
    },
  }) as SkippingFileStream;
  stream.skip = (offset, length) => {
    const from = Math.max(offset, pos);
    const to = Math.min(offset + length, size);
    if (to > from) skips.push({ from, to });
  };
  return stream;
}
