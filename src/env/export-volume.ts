/**
 * One volume member of an export: the engine's archive of the volume (`GET
 * /containers/{id}/archive` of a never-started helper container, entry names made relative),
 * compressed into the package as it streams, with the sha256 of the tar and of the member.
 *
 * The common case — zstd, no `--encrypt-all` — is laid out for speed (issue 17): the main thread
 * only reads the engine's socket, rewrites tar headers and writes the tar into `zstd -T0`'s stdin;
 * zstd writes the compressed member straight into the package file (a second descriptor opened
 * with O_APPEND at the member's offset: the compressed bytes never pass through Node); the tar
 * is hashed on one worker thread (in place, in the shared buffers the socket reads into; from a
 * TCP engine's stream, copies handed over in 1 MiB batches) and the member on another, which
 * reads the package file behind zstd as it grows. Every other codec, and encryption, take
 * the stream path (compressor output piped through Node into the package writer).
 */
import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { PackageTarWriter } from "../core/archive/file-writer.js";
import { CODEC_EXTENSION, type Codec, compressStream } from "../core/codec.js";
import { DigestStream } from "../core/digest.js";
import { readVolumeTar } from "../core/docker/volumes.js";
// records each helper container before its create request (crash recovery)
import "./helper-ledger.js";
import { DockpackError } from "../core/errors.js";
import { requireProgram } from "../core/exec.js";
import type { Reporter } from "../core/output.js";
import {
  ARCHIVE_READ_BYTES,
  type ArchiveSink,
  rawEngineSocket,
  type VolumeArchiveDownload,
  VolumeDownloads,
} from "./export-archive.js";
import type { Journal } from "./journal.js";
import type { PackageVolume } from "./package-format.js";
import { HashingBatcher, type HashResult, hashGrowingFile, SharedHasher } from "./package-volume-hash.js";

/** One volume to export: its name in the config, its Docker volume and its size (bytes). */
export interface ExportVolume {
  name: string;
  source: string;
  size: number;
}

/** zstd level of volume members. */
const ZSTD_LEVEL = 3;

/**
 * The helper containers of an export's volumes, prefetched one ahead (export-archive.ts), when
 * the fast read applies to `codec`/`recipient` (else undefined). Pass it to every
 * {@link exportVolume} call, in the same order, and `close()` it in a `finally`.
 */
export function volumeDownloads(
  sources: string[],
  codec: Exclude<Codec, "xz" | "bzip2">,
  recipient?: string,
): VolumeDownloads | undefined {
  const socket = codec === "zstd" && !recipient ? rawEngineSocket() : null;
  return socket && sources.length > 0 ? new VolumeDownloads(sources, socket) : undefined;
}

/**
 * Streams the volume `v` into a new member of `w` (see the module docs) and returns its entry for
 * metadata.json plus the member's checksum line.
 * @param recipient `--encrypt-all`: the package recipient; the member is age-encrypted
 * @param downloads the export's {@link volumeDownloads} (helper containers prefetched); without
 *   it, this volume's container is created and removed here
 * @throws DockpackError `INTERRUPTED` (the journal was cancelled), `VOLUME_*`, `CODEC_*`,
 *   `HASH_FAILED`, `PROGRAM_MISSING`
 */
export async function exportVolume(
  w: PackageTarWriter,
  v: ExportVolume,
  codec: Exclude<Codec, "xz" | "bzip2">,
  journal: Journal,
  reporter: Reporter,
  recipient?: string,
  downloads?: VolumeDownloads,
): Promise<{ volume: PackageVolume; member: { name: string; sha256: string } }> {
  const member = `volumes/${v.name}.tar${CODEC_EXTENSION[codec]}`;
  reporter.info(`exporting volume ${v.source}`);
  const bar = reporter.progress(`volume ${v.name}`, v.size);
  let done = 0;
  const progress = (n: number) => {
    done += n;
    bar.update(Math.min(done, v.size));
  };
  const cancelled = () => new DockpackError("INTERRUPTED", "Interrupted.", { hint: "Run the export again." });
  const socket = codec === "zstd" && !recipient ? rawEngineSocket() : null;
  let unhook = () => {};
  try {
    let r: Written;
    if (socket) {
      const own = downloads ?? new VolumeDownloads([v.source], socket);
      const download = await own.next();
      unhook = journal.onCancel(() => download.cut(cancelled()));
      // the helper container is removed as soon as its archive was read whole (while zstd drains
      // and the member is hashed), else once the member failed
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        own.done(download);
      };
      try {
        r = await fastZstd(w, member, downloadInput(download, progress, release));
      } finally {
        release();
        if (!downloads) await own.close();
      }
    } else {
      const source = await readVolumeTar(v.source);
      unhook = journal.onCancel(() => source.destroy(cancelled()));
      r =
        codec === "zstd" && !recipient
          ? await fastZstd(w, member, streamInput(source, progress))
          : await streamed(w, member, source, codec, progress, recipient);
    }
    return {
      volume: {
        name: v.name,
        source_volume: v.source,
        member,
        codec,
        size: r.tarSize,
        compressed_size: r.size,
        sha256: r.sha256,
        tar_sha256: r.tarSha256,
      },
      member: { name: member, sha256: r.sha256 },
    };
  } finally {
    unhook();
    bar.stop();
  }
}

interface Written {
  size: number;
  sha256: string;
  tarSize: number;
  tarSha256: string;
}

/** Any codec, encryption: compressor output through Node into the writer (hashed on the way). */
async function streamed(
  w: PackageTarWriter,
  member: string,
  source: Readable,
  codec: Codec,
  progress: (n: number) => void,
  recipient?: string,
): Promise<Written> {
  const tarDigest = new DigestStream();
  const compressed = compressStream(codec);
  // age is imported only when the export encrypts
  const sealed = recipient
    ? (await import("./package-crypto-stream.js")).encryptingStream(recipient)
    : compressed;
  const piping = recipient
    ? pipeline(source, tarDigest, compressed, sealed)
    : pipeline(source, tarDigest, compressed);
  tarDigest.on("data", (c: Buffer) => progress(c.length));
  const [info] = await Promise.all([w.addStream(member, sealed), piping]);
  return { size: info.size, sha256: info.sha256, tarSize: tarDigest.size, tarSha256: tarDigest.digest };
}

function compressFailed(message: string, cause?: unknown): DockpackError {
  return new DockpackError("CODEC_COMPRESS_FAILED", `zstd compression failed: ${message}`, {
    cause,
    hint: "Check free disk space and memory, then try again.",
    details: { codec: "zstd" },
  });
}

/**
 * What feeds the tar into zstd's stdin: `run` writes it all (not ending stdin) and resolves with
 * the tar's digest; `stop` ends it early.
 */
interface TarInput {
  run(stdin: Writable, exited: Promise<void>): Promise<HashResult>;
  stop(err: unknown): void;
}

/** zstd, not encrypted: see the module docs. */
async function fastZstd(w: PackageTarWriter, member: string, input: TarInput): Promise<Written> {
  const zstd = requireProgram("zstd", "zstd compression");
  let tar: HashResult | undefined;
  const info = await w.addAppended(member, async (fd, offset) => {
    const memberHash = hashGrowingFile(w.path, offset);
    const child = spawn(zstd, ["-c", "-q", "-T0", `-${ZSTD_LEVEL}`], { stdio: ["pipe", fd, "pipe"] });
    const { stdin, stderr: errors } = child as unknown as { stdin: Writable; stderr: Readable };
    let stderr = "";
    errors.setEncoding("utf8");
    errors.on("data", (s: string) => {
      stderr = (stderr + s).slice(-4096);
    });
    const exited = new Promise<void>((resolve, reject) => {
      child.on("error", (e) => reject(compressFailed(`could not run zstd: ${e.message}`, e)));
      child.on("close", (code, signal) => {
        if (code === 0) resolve();
        else reject(compressFailed(stderr.trim() || (signal ? `killed by ${signal}` : `exit code ${code}`)));
      });
    });
    exited.catch(() => undefined);
    // EPIPE when zstd stops reading: its exit status says why (the write callback fails too)
    stdin.on("error", () => undefined);
    try {
      tar = await input.run(stdin, exited);
      stdin.end();
      await exited;
      const { size } = await stat(w.path);
      return (await memberHash.end(size - offset)).digest;
    } catch (err) {
      input.stop(err);
      child.kill("SIGKILL");
      memberHash.close();
      await exited.catch(() => undefined);
      // zstd's own failure explains a failed write better than EPIPE
      throw await exited.then(
        () => err,
        (e) => e,
      );
    }
  });
  if (!tar) throw new RangeError(`${member}: no tar digest`);
  return { size: info.size, sha256: info.sha256, tarSize: tar.size, tarSha256: tar.digest };
}

/** A promise that rejects when zstd exits (even with 0: before the end of its input, that is a failure). */
function exitedEarly(exited: Promise<void>): Promise<never> {
  const early = exited.then(
    () => {
      throw compressFailed("zstd exited before the end of its input");
    },
    (e) => {
      throw e;
    },
  );
  early.catch(() => undefined);
  return early;
}

/** Socket reads in flight or queued for zstd at most (each {@link ARCHIVE_READ_BYTES}). */
export const READ_BUFFERS = 32;
/**
 * Rewritten bytes gathered from several socket reads before one vectored write to zstd (and one
 * hand-over to the hash worker): the engine's reads are 30-100 KiB, and each write and each
 * wake-up of zstd's reader and of the hash worker costs CPU.
 */
export const WRITE_BATCH_BYTES = 2 * 1024 * 1024;
/**
 * A batch also goes out when the socket was quiet this long (ms). Under load the engine writes in
 * bursts and a 2 ms timer sent ~95 % of the batches (~2 400 per GiB, each a writev, a hash-worker
 * wake-up and a zstd wake-up); zstd -T0 -3 compresses in jobs of several MiB, so a few ms of delay
 * on a batch costs it nothing, and the last batch goes out at once when the archive ends.
 */
const WRITE_BATCH_IDLE_MS = 20;

/**
 * The fast read (export-archive.ts) into zstd's stdin, with no copy in between: each socket read
 * lands in one of {@link READ_BUFFERS} buffers of a {@link SharedHasher}'s arena; its rewritten
 * bytes (slices of it, and header blocks) are gathered over several reads
 * ({@link WRITE_BATCH_BYTES}, or half the buffers in use, or {@link WRITE_BATCH_IDLE_MS} of quiet)
 * and then handed to the hash worker, which hashes them where they are, and written to zstd with
 * one vectored write. This thread only reads, rewrites headers and writes: under load the
 * pipeline runs at the pace of its busiest thread. A buffer is read into again once its write
 * completed and its bytes are hashed; when none is free, the socket waits. `downloaded` is called
 * once the whole archive was read (its helper container may go while zstd drains).
 */
function downloadInput(
  download: VolumeArchiveDownload,
  progress: (n: number) => void,
  downloaded: () => void,
): TarInput {
  let hasher: SharedHasher | undefined;
  let idle: NodeJS.Timeout | undefined;
  return {
    run: async (stdin, exited) => {
      const h = new SharedHasher(READ_BUFFERS, ARCHIVE_READ_BYTES);
      hasher = h;
      const free: Buffer[] = [];
      for (let i = 0; i < READ_BUFFERS; i++) free.push(h.buffer(i));
      type Lent = { buffer: Buffer; ticket: number; written: boolean };
      /** Buffers lent to reads, in order: free again once written to zstd and hashed. */
      const lent: Lent[] = [];
      /** The batch not yet written: its reads' buffers and rewritten bytes. */
      let batch: Lent[] = [];
      let parts: Buffer[] = [];
      let bytes = 0;
      let failure: unknown;
      let wake: (() => void) | undefined;
      const reclaim = () => {
        const hashed = h.hashed();
        while (lent.length > 0 && lent[0].written && lent[0].ticket <= hashed)
          free.push((lent.shift() as Lent).buffer);
      };
      /** Hands the batch to the hash worker and writes it to zstd (one vectored write). */
      const flush = () => {
        if (batch.length === 0) return;
        const entries = batch;
        const out = parts;
        batch = [];
        parts = [];
        bytes = 0;
        h.publish();
        const done = (err?: Error | null) => {
          if (err) failure ??= compressFailed("zstd stopped reading its input", err);
          for (const e of entries) e.written = true;
          wake?.();
          wake = undefined;
        };
        if (out.length === 0) done();
        else if (out.length === 1) stdin.write(out[0], done);
        else {
          stdin.cork();
          for (let i = 0; i < out.length - 1; i++) stdin.write(out[i]);
          stdin.write(out[out.length - 1], done);
          stdin.uncork();
        }
      };
      /** Resolves once `enough()` (checked after each write completion or hash progress). */
      const until = async (enough: () => boolean): Promise<void> => {
        // what waits for buffers must not wait for a batch that is not written yet
        flush();
        for (;;) {
          reclaim();
          if (failure) throw failure;
          if (enough()) return;
          const head = lent[0];
          if (head?.written) await h.whenHashed(head.ticket);
          else
            await Promise.race([
              new Promise<void>((resolve) => {
                wake = resolve;
              }),
              exitedEarly(exited),
            ]);
        }
      };
      let armed = false;
      const sink: ArchiveSink = {
        // called by the socket right after each take (paused or not): never empty while the
        // stream runs (take pauses it while at most one is free), a spare after a failure
        next: () => free.pop() ?? Buffer.allocUnsafeSlow(ARCHIVE_READ_BYTES),
        take(out, buffer) {
          if (failure) throw failure;
          for (const p of out) {
            h.add(p);
            parts.push(p);
            bytes += p.length;
          }
          const entry = { buffer, ticket: h.ticket, written: false };
          lent.push(entry);
          batch.push(entry);
          if (bytes >= WRITE_BATCH_BYTES || batch.length >= READ_BUFFERS / 2) flush();
          else if (!armed) {
            armed = true;
            idle?.refresh();
          }
          reclaim();
          // next() takes one now: go on only when another is left for the read after
          if (free.length > 1) return null;
          return until(() => free.length > 1);
        },
      };
      // the idle timer writes a batch the socket left waiting
      const onIdle = () => {
        armed = false;
        flush();
      };
      idle = setTimeout(onIdle, WRITE_BATCH_IDLE_MS);
      idle.unref();
      try {
        await Promise.race([download.run(sink, progress), exitedEarly(exited)]);
        downloaded();
        // every write completed and every byte hashed before the digest counts
        await until(() => lent.length === 0);
      } finally {
        clearTimeout(idle);
      }
      return h.finish();
    },
    stop: (err) => {
      clearTimeout(idle);
      hasher?.close();
      download.cut(err);
    },
  };
}

/** readVolumeTar's stream into zstd's stdin, through a {@link HashingBatcher} (hashed on a worker). */
function streamInput(source: Readable, progress: (n: number) => void): TarInput {
  let batcher: HashingBatcher | undefined;
  return {
    run: (stdin, exited) => {
      batcher = new HashingBatcher((view, done) => {
        stdin.write(view, (err) =>
          done(err ? compressFailed("zstd stopped reading its input", err) : undefined),
        );
      });
      return feed(source, batcher, progress, exited);
    },
    stop: () => {
      batcher?.close();
      source.destroy();
    },
  };
}

/**
 * Pushes every chunk of `source` into `batcher` (pausing the source while the batcher is full)
 * and resolves with the tar's digest and size once the batcher finished. Rejects with the first
 * error of the source, the batcher (its sink or hash) or the child (`exited`).
 */
function feed(
  source: Readable,
  batcher: HashingBatcher,
  progress: (n: number) => void,
  exited: Promise<void>,
): Promise<HashResult> {
  return new Promise<HashResult>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    // zstd exiting before its input ended is a failure even when it exits 0
    exited.then(() => fail(compressFailed("zstd exited before the end of its input")), fail);
    source.on("data", (chunk: Buffer) => {
      progress(chunk.length);
      try {
        if (batcher.canTake(chunk.length)) {
          batcher.push(chunk);
          return;
        }
      } catch (err) {
        fail(err);
        return;
      }
      source.pause();
      batcher.ready(chunk.length).then(() => {
        if (settled) return;
        batcher.push(chunk);
        source.resume();
      }, fail);
    });
    source.once("error", fail);
    source.once("close", () => {
      if (!source.readableEnded) fail(compressFailed("the volume's archive stream closed early"));
    });
    source.once("end", () => {
      batcher.finish().then((r) => {
        if (settled) return;
        settled = true;
        resolve(r);
      }, fail);
    });
  });
}
