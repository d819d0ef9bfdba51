/**
 * Stream codecs: zstd, gzip, xz, bzip2 and none, compressing and decompressing as streams, and
 * detection of a stream's codec from its magic bytes.
 *
 * gzip runs in-process (node:zlib, RFC 1952). zstd (RFC 8878), xz (.xz file format 1.1) and
 * bzip2 run through the system programs — `zstd -T0`, `xz -T0`, `pbzip2` when present else
 * `bzip2` — with their stdin/stdout piped, so backpressure reaches the child process and no stream
 * is ever held in memory. A missing program throws `PROGRAM_MISSING` naming the Debian package.
 */
import type { ChildProcessByStdio } from "node:child_process";
import { open } from "node:fs/promises";
import { Duplex, PassThrough, pipeline, Readable, Transform, type Writable } from "node:stream";
import { interrupted, onAbort } from "./abort.js";
import { lazyBuiltin } from "./builtin.js";
import { DockpackError, isDockpackError } from "./errors.js";
import { findProgram, requireProgram } from "./exec.js";

/**
 * node:zlib and node:child_process, loaded when the first stream is made: commands that only
 * read through this module's other exports (delta list and info) do not load them (issue 14 C18).
 */
const zlib = lazyBuiltin<typeof import("node:zlib")>("node:zlib");
const childProcess = lazyBuiltin<typeof import("node:child_process")>("node:child_process");

/** A stream codec. `none` passes bytes through unchanged. */
export type Codec = "zstd" | "gzip" | "xz" | "bzip2" | "none";

/** Every codec, in order of preference for new artifacts. */
export const CODECS: readonly Codec[] = ["zstd", "gzip", "xz", "bzip2", "none"];

/** Conventional file-name extension of each codec (`""` for none). */
export const CODEC_EXTENSION: Readonly<Record<Codec, string>> = {
  zstd: ".zst",
  gzip: ".gz",
  xz: ".xz",
  bzip2: ".bz2",
  none: "",
};

/** Level used when none is given. */
const DEFAULT_LEVEL: Readonly<Record<Codec, number>> = { zstd: 3, gzip: 6, xz: 6, bzip2: 9, none: 0 };

/** Options of {@link compressStream}. */
export interface CompressOptions {
  /**
   * Compression level. zstd: 1–19, 20–22 (ultra), −1…−100 (fast levels, `--fast=N`); gzip, xz,
   * bzip2: 1–9. Default: zstd 3, gzip 6, xz 6, bzip2 9. Ignored for `none`.
   */
  level?: number;
  /**
   * Worker threads for zstd, xz and pbzip2; 0 (default) = one per core. zstd with 1 runs
   * `--single-thread` (reading and compressing in one thread, output block by block; `-T1`
   * would emit nothing before a whole job of tens of MiB).
   */
  threads?: number;
  /**
   * zstd long-distance matching with a 128 MiB window (`--long=27`). The reader must then
   * decompress with `long: true`. Ignored for other codecs.
   */
  long?: boolean;
}

/** Options of {@link decompressStream}. */
export interface DecompressOptions {
  /** zstd: accept windows up to 2 GiB (`--long=31`), needed for streams written with `long`. */
  long?: boolean;
  /**
   * Most bytes the decompressed output may have (the size the input declared). The stream fails
   * with `CODEC_OUTPUT_TOO_LARGE` at the first byte over, and the decoder is stopped: a
   * decompression bomb never reaches memory or disk beyond this.
   */
  maxBytes?: number;
  /** What is decompressed, for the error message (e.g. `member layers/1-….zst of x.dpd`). */
  label?: string;
}

/** The error of a stream that produced more than `limit` bytes. */
export function tooLargeError(label: string, limit: number): DockpackError {
  return new DockpackError(
    "CODEC_OUTPUT_TOO_LARGE",
    `${label} expands past the ${limit} bytes it declares; stopped at the first byte over.`,
    {
      hint: "The input is corrupted or forged (a decompression bomb); nothing past the limit was written.",
      details: { label, limit },
    },
  );
}

/**
 * A pass-through that fails with `CODEC_OUTPUT_TOO_LARGE` (see {@link tooLargeError}) as soon as
 * more than `limit` bytes went through it. Use it wherever a stream's declared size bounds it.
 */
export function capBytes(limit: number, label: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(tooLargeError(label, limit));
      else cb(null, chunk);
    },
  });
}

/**
 * Checks a compression level for `codec` (see {@link CompressOptions.level}).
 * @throws DockpackError `CODEC_LEVEL_INVALID` (a usage error) naming the codec and the valid range.
 */
export function checkLevel(codec: Codec, level: number): void {
  if (codec === "none") return;
  const ok =
    Number.isInteger(level) &&
    (codec === "zstd"
      ? (level >= 1 && level <= 22) || (level <= -1 && level >= -100)
      : level >= 1 && level <= 9);
  if (!ok) {
    const range = codec === "zstd" ? "1–22 (20–22 are ultra levels) or −1…−100 (fast levels)" : "1–9";
    throw new DockpackError("CODEC_LEVEL_INVALID", `Level ${level} is not a valid ${codec} level.`, {
      usage: true,
      hint: `Use a ${codec} level in ${range}.`,
      details: { codec, level },
    });
  }
}

/** Magic bytes at the start of each compressed format. */
const MAGIC: [Codec, (h: Buffer) => boolean][] = [
  ["zstd", (h) => h.length >= 4 && h.readUInt32LE(0) === 0xfd2fb528],
  // zstd skippable frame (0x184D2A50–0x184D2A5F), as written by pzstd and seekable zstd.
  ["zstd", (h) => h.length >= 4 && (h.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50],
  ["gzip", (h) => h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b],
  ["xz", (h) => h.length >= 6 && h.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))],
  [
    "bzip2",
    (h) => h.length >= 4 && h[0] === 0x42 && h[1] === 0x5a && h[2] === 0x68 && h[3] >= 0x31 && h[3] <= 0x39,
  ],
];

/** Number of leading bytes {@link detectCodec} needs to tell every codec apart. */
export const MAGIC_LENGTH = 6;

/**
 * The codec of a stream from its first bytes (at least {@link MAGIC_LENGTH} when available):
 * zstd `28 B5 2F FD` (or a skippable frame), gzip `1F 8B`, xz `FD 37 7A 58 5A 00`, bzip2 `BZh1`–`BZh9`.
 * Returns `none` when nothing matches (an uncompressed tar, say).
 */
export function detectCodec(head: Buffer): Codec {
  for (const [codec, test] of MAGIC) if (test(head)) return codec;
  return "none";
}

/**
 * The codec of the file at `path`, from its first bytes (see {@link detectCodec}).
 * @throws Node system errors (ENOENT, EACCES) when it cannot be read.
 */
export async function detectFileCodec(path: string): Promise<Codec> {
  const fh = await open(path, "r");
  try {
    const head = Buffer.alloc(MAGIC_LENGTH);
    const { bytesRead } = await fh.read(head, 0, MAGIC_LENGTH, 0);
    return detectCodec(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * A duplex stream that compresses what is written to it with `codec`.
 * Errors: `PROGRAM_MISSING` (thrown at once) when the program is absent; `CODEC_LEVEL_INVALID`
 * for a bad level; the stream fails with `CODEC_COMPRESS_FAILED` when the program fails.
 * Honours the ambient abort signal (core/abort): an abort destroys the stream (a compressor
 * program is killed) with `INTERRUPTED`.
 */
export function compressStream(codec: Codec, options: CompressOptions = {}): Duplex {
  return abortable(makeCompressor(codec, options));
}

function makeCompressor(codec: Codec, options: CompressOptions): Duplex {
  const level = options.level ?? DEFAULT_LEVEL[codec];
  checkLevel(codec, level);
  const threads = options.threads ?? 0;
  switch (codec) {
    case "none":
      return new PassThrough();
    case "gzip":
      return mapErrors(zlib().createGzip({ level }), "gzip", "compress");
    case "zstd":
      return childStream(
        "zstd",
        [
          "-c",
          "-q",
          threads === 1 ? "--single-thread" : `-T${threads}`,
          ...zstdLevelArgs(level, options.long),
        ],
        "zstd",
        "compress",
      );
    case "xz":
      return childStream("xz", ["-c", "-q", `-T${threads}`, `-${level}`], "xz", "compress");
    case "bzip2":
      if (findProgram("pbzip2")) {
        const p = threads > 0 ? [`-p${threads}`] : [];
        return childStream("pbzip2", ["-c", "-q", ...p, `-${level}`], "bzip2", "compress");
      }
      return childStream("bzip2", ["-c", "-q", `-${level}`], "bzip2", "compress");
  }
}

/**
 * The zstd command-line arguments for compression `level` (1–19, 20–22 with `--ultra`, negative
 * as `--fast=N`) and, with `long`, `--long=27` — what {@link compressStream} passes, for callers
 * that run zstd themselves. Does not check the level ({@link checkLevel} does).
 */
export function zstdLevelArgs(level: number, long = false): string[] {
  const args = level < 0 ? [`--fast=${-level}`] : level > 19 ? ["--ultra", `-${level}`] : [`-${level}`];
  if (long) args.push("--long=27");
  return args;
}

/**
 * A duplex stream that decompresses what is written to it, which must be in `codec`.
 * Corrupt or foreign input makes the stream fail with `CODEC_DECOMPRESS_FAILED` naming the codec
 * and carrying the program's (or zlib's) message. `PROGRAM_MISSING` is thrown at once.
 * Honours the ambient abort signal like {@link compressStream}.
 */
export function decompressStream(codec: Codec, options: DecompressOptions = {}): Duplex {
  return abortable(makeDecompressor(codec, options));
}

function makeDecompressor(codec: Codec, options: DecompressOptions): Duplex {
  const cap =
    options.maxBytes === undefined
      ? undefined
      : { limit: options.maxBytes, label: options.label ?? `${codec} stream` };
  switch (codec) {
    case "none":
      return cap ? capBytes(cap.limit, cap.label) : new PassThrough();
    case "gzip": {
      const gunzip = mapErrors(zlib().createGunzip(), "gzip", "decompress", options.label);
      if (!cap) return gunzip;
      const limiter = capBytes(cap.limit, cap.label);
      gunzip.on("error", (e) => limiter.destroy(e));
      limiter.on("error", () => gunzip.destroy());
      gunzip.pipe(limiter);
      return Duplex.from({ writable: gunzip, readable: limiter });
    }
    case "zstd":
      return childStream(
        "zstd",
        ["-d", "-c", "-q", ...(options.long ? ["--long=31"] : [])],
        "zstd",
        "decompress",
        cap,
        options.label,
      );
    case "xz":
      return childStream("xz", ["-d", "-c", "-q", "-T0"], "xz", "decompress", cap, options.label);
    case "bzip2":
      return childStream("bzip2", ["-d", "-c", "-q"], "bzip2", "decompress", cap, options.label);
  }
}

/**
 * Peeks at the first bytes of `readable`, detects its codec and returns a stream of the
 * decompressed bytes (the same bytes when `none`). Errors of the source and of the decoder
 * surface on the returned stream; destroying it destroys the source.
 */
export async function autoDecompress(readable: Readable, options: DecompressOptions = {}): Promise<Readable> {
  const it = readable[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < MAGIC_LENGTH) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const chunk = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
    head.push(chunk);
    length += chunk.length;
  }
  const codec = detectCodec(Buffer.concat(head));
  async function* replay(): AsyncGenerator<Buffer> {
    let finished = done;
    try {
      yield* head;
      while (!finished) {
        const r = await it.next();
        if (r.done) finished = true;
        else yield r.value;
      }
    } finally {
      if (!finished) await it.return?.();
    }
  }
  const plain = Readable.from(replay(), { objectMode: false });
  if (codec === "none") return plain;
  const decoder = decompressStream(codec, options);
  return pipeline(plain, decoder, () => {
    // errors reach the decoder, which the caller reads
  });
}

type Direction = "compress" | "decompress";

/**
 * Destroys `stream` with `INTERRUPTED` when the ambient abort signal (core/abort) fires while it is
 * open, so a codec program (xz -9 of a large layer can take minutes) stops with the operation.
 */
function abortable<T extends Duplex>(stream: T): T {
  const off = onAbort(() => stream.destroy(interrupted()));
  stream.once("close", off);
  return stream;
}

function codecError(
  codec: Codec,
  direction: Direction,
  message: string,
  cause?: unknown,
  label?: string,
): DockpackError {
  const code = direction === "compress" ? "CODEC_COMPRESS_FAILED" : "CODEC_DECOMPRESS_FAILED";
  return new DockpackError(code, `${label ? `${label}: ` : ""}${codec} ${direction}ion failed: ${message}`, {
    cause,
    hint:
      direction === "decompress"
        ? `The data is not valid ${codec} or is truncated; check the file or export it again.`
        : "Check free disk space and memory, then try again.",
    details: { codec },
  });
}

/** Makes a zlib stream fail with a DockpackError (message prefixed with `label`) instead of a bare zlib error. */
function mapErrors<T extends Duplex>(stream: T, codec: Codec, direction: Direction, label?: string): T {
  const original = stream._destroy.bind(stream);
  stream._destroy = (err, cb) =>
    original(err && !isDockpackError(err) ? codecError(codec, direction, err.message, err, label) : err, cb);
  return stream;
}

/** Last bytes of a child's stderr kept for the error message. */
const STDERR_TAIL = 4096;

/**
 * A duplex over a child process: writes go to its stdin (waiting for `drain`), its stdout is
 * pushed with backpressure (stdout is paused while the reader is full), and the readable side
 * ends only after the child exited 0. A non-zero exit or a signal fails the stream with the
 * codec error (prefixed with `label`, the data's name) and the child's stderr; destroying the
 * stream kills the child.
 */
function childStream(
  program: string,
  args: string[],
  codec: Codec,
  direction: Direction,
  cap?: { limit: number; label: string },
  label?: string,
): Duplex {
  let produced = 0;
  const path = requireProgram(program, `${codec} ${direction}ion`);
  let child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  let exited = false;
  let stderr = "";
  let pendingDrain: (() => void) | undefined;

  const duplex = new Duplex({
    // the child's 64 KiB pipe reads queue up to 1 MiB before its output is paused (the default
    // 16 KiB paused and resumed it at every read)
    readableHighWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      const c = child!;
      if (c.stdin.destroyed || exited) {
        // The child stopped reading (it failed); its exit reports the reason.
        cb();
        return;
      }
      if (c.stdin.write(chunk)) cb();
      else {
        pendingDrain = () => {
          pendingDrain = undefined;
          cb();
        };
        c.stdin.once("drain", () => pendingDrain?.());
      }
    },
    final(cb) {
      child!.stdin.end();
      cb();
    },
    read() {
      child?.stdout.resume();
    },
    destroy(err, cb) {
      if (child && !exited) child.kill("SIGKILL");
      pendingDrain?.();
      cb(err);
    },
  });

  child = childProcess().spawn(path, args, { stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.on("error", () => {
    // EPIPE when the child exits early: release a writer waiting for drain; exit tells why.
    pendingDrain?.();
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (s: string) => {
    stderr = (stderr + s).slice(-STDERR_TAIL);
  });
  child.stdout.on("data", (chunk: Buffer) => {
    if (duplex.destroyed) return;
    produced += chunk.length;
    if (cap && produced > cap.limit) {
      duplex.destroy(tooLargeError(cap.label, cap.limit));
      return;
    }
    if (!duplex.push(chunk)) child?.stdout.pause();
  });
  child.on("error", (err) => {
    exited = true;
    duplex.destroy(codecError(codec, direction, `could not run ${program}: ${err.message}`, err, label));
  });
  child.on("close", (code, signal) => {
    exited = true;
    if (duplex.destroyed) return;
    if (code === 0) duplex.push(null);
    else {
      const why = stderr.trim() || (signal ? `killed by ${signal}` : `exit code ${code}`);
      duplex.destroy(codecError(codec, direction, `${program} ${args.join(" ")}: ${why}`, undefined, label));
    }
  });
  return duplex;
}
