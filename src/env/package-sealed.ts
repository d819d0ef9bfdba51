/**
 * Reading `--encrypt-all` members during the verification read (package-reader.ts): the stored
 * (encrypted) bytes are hashed to their end whatever happens, while a side branch decrypts them
 * with the package key and hashes the plaintext; a decryption failure is reported, never thrown,
 * so the one read of the package goes on and collects every problem.
 */
import { createHash } from "node:crypto";
import { type Duplex, type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DigestStream } from "../core/digest.js";
import { toDockpackError } from "../core/errors.js";
import { drained } from "../core/stream.js";
import { decryptingStream } from "./package-crypto-stream.js";

/**
 * A writable that feeds `side` but never fails or stalls the outer read: once `side` ended,
 * failed or `isDone()` says so, further bytes are dropped (the caller only hashes them).
 */
export function feedSide(side: Duplex, isDone: () => boolean): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (isDone() || side.destroyed || side.writableEnded) {
        cb();
        return;
      }
      if (side.write(chunk)) cb();
      else drained(side).then(() => cb());
    },
    final(cb) {
      if (!side.destroyed && !side.writableEnded) side.end();
      cb();
    },
  });
}

/** What {@link readSealed} found. */
export interface SealedRead {
  /** sha256 and size of the stored (encrypted) bytes. */
  sha256: string;
  size: number;
  /** sha256 and size of the plaintext; "" when decryption failed. */
  plainSha256: string;
  plainSize: number;
  /** The plaintext when it is at most `keep` bytes. */
  plain: Buffer | null;
  /** Why decryption failed (`PACKAGE_DECRYPT_FAILED`). */
  problem?: { code: string; message: string };
}

/** Reads one encrypted member body to its end, decrypting it on the side with `identity`. */
export async function readSealed(
  body: Readable,
  identity: string,
  member: string,
  keep: number,
): Promise<SealedRead> {
  const outer = new DigestStream();
  const decrypt = decryptingStream(identity, member);
  let failed: { code: string; message: string } | undefined;
  const hash = createHash("sha256");
  const chunks: Buffer[] = [];
  let plainSize = 0;
  const side = (async () => {
    for await (const c of decrypt as AsyncIterable<Buffer>) {
      hash.update(c);
      plainSize += c.length;
      if (plainSize <= keep) chunks.push(c);
    }
  })().catch((e) => {
    const err = toDockpackError(e);
    failed ??= { code: err.code, message: err.message };
  });
  await pipeline(
    body,
    outer,
    feedSide(decrypt, () => failed !== undefined),
  );
  await side;
  return {
    sha256: outer.digest,
    size: outer.size,
    plainSha256: failed ? "" : `sha256:${hash.digest("hex")}`,
    plainSize,
    plain: failed || plainSize > keep ? null : Buffer.concat(chunks),
    ...(failed ? { problem: failed } : {}),
  };
}
