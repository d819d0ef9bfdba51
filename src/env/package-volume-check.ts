/**
 * `validate`'s reading of one volume member (import's is restoreVolume in import-restore.ts; both
 * use the rules of package-volume.ts): the member's sha256 and size, then, while it streams, its
 * decompression with the recorded codec capped at the recorded tar size, the tar's sha256 and
 * size, and every entry through the strict tar reader and one TarEntryChecker.
 */
import { pipeline as pipelineCb, type Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { TarEntryChecker } from "../core/archive/checks.js";
import { readTarStrict } from "../core/archive/strict.js";
import { decompressStream } from "../core/codec.js";
import { DigestStream } from "../core/digest.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { drained } from "../core/stream.js";
import { decryptingStream } from "./package-crypto-stream.js";
import type { PackageVolume } from "./package-format.js";
import { feedSide } from "./package-sealed.js";
import { capBytes, volumeProblemCode, volumeReadProblem } from "./package-volume.js";

/** What {@link checkVolumeMember} found. */
export interface VolumeCheck {
  /** sha256 and size of the member as stored (compressed). */
  sha256: string;
  size: number;
  /** sha256 and size of the decompressed tar (as far as it was read). */
  tarSha256: string;
  tarSize: number;
  /** The first problem inside the volume tar, if any. */
  problem?: { code: string; message: string };
}

/**
 * Reads a volume member's body to its end (never fails for bad content: problems are returned;
 * an error of `body` itself is thrown).
 * @param options `allowSpecialFiles` accepts devices and fifos; `sink` (import's one pass) also
 *   receives the decompressed tar bytes as they are checked, with backpressure: it is ended after
 *   the last byte, or destroyed with the problem when one is found (its own failure only stops
 *   what it is given; the check goes on)
 * @param identity `--encrypt-all`: the package key; the member is decrypted before decompression
 *   (a failure is the problem `PACKAGE_DECRYPT_FAILED`)
 */
export async function checkVolumeMember(
  body: Readable,
  v: PackageVolume,
  options: { allowSpecialFiles?: boolean; sink?: Writable },
  identity?: string,
): Promise<VolumeCheck> {
  const outer = new DigestStream();
  const decrypt = identity ? decryptingStream(identity, v.member) : null;
  let decryptError: DockpackError | undefined;
  decrypt?.on("error", (e) => {
    // an error after the tar was read (the side branch torn down) is not a decryption failure
    if (!innerDone) decryptError ??= toDockpackError(e);
  });
  const decoded = decompressStream(v.codec);
  const head = decrypt ?? decoded;
  const tarDigest = new DigestStream();
  let problem: { code: string; message: string } | undefined;
  const note = (code: string, message: string) => {
    problem ??= { code, message };
  };
  let innerDone = false;
  decoded.on("error", () => undefined);
  // Feeds the decoder but never fails the outer read: once the inner side failed, bytes are
  // only hashed.
  const feed = feedSide(head, () => innerDone);
  const checker = new TarEntryChecker({ allowSpecialFiles: options.allowSpecialFiles === true });
  const plain = options.sink ? teeInto(tarDigest, options.sink) : tarDigest;
  if (decrypt) pipelineCb(decrypt, decoded, capBytes(v.size, v.member), tarDigest, () => undefined);
  else pipelineCb(decoded, capBytes(v.size, v.member), tarDigest, () => undefined);
  const inner = readTarStrict(plain, async (entry, b) => {
    const p = checker.check(entry);
    if (p) note(volumeProblemCode(p), p.reason);
    b.resume();
  })
    .catch((e) => {
      const p = volumeReadProblem(e, v);
      note(p.code, p.message);
    })
    .finally(() => {
      innerDone = true;
      if (problem) options.sink?.destroy(new DockpackError(problem.code, problem.message));
      head.destroy();
      plain.resume();
    });
  decoded.on("error", (e) =>
    note("PACKAGE_VOLUME_INVALID", `it cannot be decompressed as ${v.codec}: ${toDockpackError(e).message}`),
  );
  try {
    await pipeline(body, outer, feed);
  } catch (e) {
    // the body itself failed (Ctrl-C, a registry chunk refused mid-stream): stop the decoder
    // (a zstd child would wait for more input forever) and let the inner read end
    head.destroy();
    await inner.catch(() => undefined);
    throw e;
  }
  await inner;
  if (decryptError) problem = { code: decryptError.code, message: decryptError.message };
  return {
    sha256: outer.digest,
    size: outer.size,
    tarSha256: tarDigest.digest,
    tarSize: tarDigest.size,
    ...(problem ? { problem } : {}),
  };
}

/**
 * `source` piped on through a transform that first writes each chunk into `sink` (waiting for
 * its `drain`), ends `sink` after the last chunk, and stops feeding it once it is destroyed.
 */
function teeInto(source: Readable, sink: Writable): Readable {
  const alive = () => !sink.destroyed && !sink.writableEnded;
  const tee = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (!alive() || sink.write(chunk)) cb(null, chunk);
      else drained(sink).then(() => cb(null, chunk));
    },
    flush(cb) {
      if (alive()) sink.end();
      cb();
    },
  });
  source.on("error", (e) => tee.destroy(e));
  source.pipe(tee);
  return tee;
}
