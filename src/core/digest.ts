/**
 * Content digests in the OCI form `sha256:<64 lowercase hex>` (OCI image-spec, descriptor.md
 * "Digests"), computed while streaming: no file, layer or volume is ever held in memory.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { DockpackError } from "./errors.js";

/** A sha256 digest string: `sha256:` followed by 64 lowercase hex digits. */
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Hex sha256 (64 lowercase hex digits, no `sha256:` prefix) of a buffer or utf-8 string. */
export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Returns the hex part of a `sha256:<hex>` digest.
 * @throws DockpackError `DIGEST_INVALID` when `d` is not of that form (other algorithms included).
 */
export function parseDigest(d: string): string {
  if (typeof d !== "string" || !DIGEST_RE.test(d)) {
    throw new DockpackError("DIGEST_INVALID", `'${String(d)}' is not a sha256 digest.`, {
      hint: "A digest looks like sha256:<64 lowercase hex digits>.",
    });
  }
  return d.slice("sha256:".length);
}

/**
 * A pass-through stream that hashes what flows through it. After `finish` (all input written),
 * `.digest` is `sha256:<hex>` and `.size` the number of bytes seen.
 */
export class DigestStream extends Transform {
  /** `sha256:<hex>` of all bytes, set once the stream has flushed; "" before. */
  digest = "";
  /** Bytes seen so far. */
  size = 0;
  readonly #hash: Hash = createHash("sha256");

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digest = `sha256:${this.#hash.digest("hex")}`;
    cb();
  }
}

/**
 * Consumes `readable` and returns its sha256 digest (`sha256:<hex>`) and size in bytes.
 * Rejects with the stream's error when it fails.
 */
export async function digestStream(readable: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of readable) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    hash.update(buf);
    size += buf.length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/**
 * sha256 digest (`sha256:<hex>`) and size in bytes of the file at `path`, read as a stream.
 * @throws DockpackError `FS_ENOENT` etc. (via the caller's toDockpackError) when it cannot be read.
 */
export async function digestFile(path: string): Promise<{ digest: string; size: number }> {
  return digestStream(createReadStream(path, { highWaterMark: 1024 * 1024 }));
}

/**
 * A pass-through stream that checks the bytes against `expected` (`sha256:<hex>`). At the end
 * of input it fails with `DIGEST_MISMATCH` — message "<label>: expected sha256:…, got sha256:…",
 * details `{ label, expected, actual, size }` — instead of ending cleanly when they differ. A
 * consumer therefore sees an error before it may treat the data as complete.
 * @param label names the object being read (a file, blob or layer), e.g. `blobs/sha256/ab12…`
 * @throws DockpackError `DIGEST_INVALID` synchronously when `expected` is not a sha256 digest.
 */
export function verifyingStream(expected: string, label: string): Transform {
  parseDigest(expected);
  const hash = createHash("sha256");
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== expected) {
        cb(
          new DockpackError("DIGEST_MISMATCH", `${label}: expected ${expected}, got ${actual}`, {
            hint: "The data is corrupt or was changed; fetch or export it again.",
            details: { label, expected, actual, size },
          }),
        );
        return;
      }
      cb();
    },
  });
}
