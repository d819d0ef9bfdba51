/**
 * Import's one-pass volume restore on a local engine (issue 17): the member's bytes are read from
 * the package, hashed and written to `zstd -d`; zstd's output — the volume tar — is counted
 * (capped at its declared size), scanned strictly entry by entry (core/archive StrictTarScanner
 * + one TarEntryChecker, the rules `validate` applies) and, only once a chunk was scanned,
 * renamed under `data/` (TarRenamer) and sent to the engine's `PUT /containers/{id}/archive` on
 * its Unix socket (import-volume-put.ts). Everything but the member's hashing runs in one
 * synchronous step per read on the main thread, into reused buffers: zstd's stdin and stdout are
 * Unix socket pairs (larger reads than a pipe's 64 KiB, read into buffers lent with `onread`, no
 * allocation per read), the tar bytes reach the engine as slices of the buffer they were read
 * into, in one vectored write per read. The member's SHA-256 is computed on a worker thread
 * **in place** in the buffers it is read into (package-volume-hash.ts SharedHasher,
 * import-volume-buffers.ts): a buffer is read into again only once its write to zstd completed
 * and its bytes were hashed, so the digest is of exactly the bytes that went to zstd.
 *
 * The tar's own SHA-256 (metadata.json `tar_sha256`) is not computed here: zstd's decoding is
 * deterministic, so the member's digest, checked against metadata.json, already binds every tar
 * byte restored; its size is checked, every entry is checked. `packages validate` still
 * recomputes `tar_sha256` (its separate full read).
 *
 * What it finds is returned, not thrown ({@link OnePass}); import-restore.ts decides the error
 * exactly as for the stream path (validate's order: the member's checksum, then the tar's first
 * problem, then the tar's size). After a problem nothing more reaches the engine (the upload is
 * cut: the caller removes the volume), but the member is still read to its end for its checksum.
 * Returns once zstd, the upload and the helper container are all gone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { open } from "node:fs/promises";
import { connect, createServer, type OnReadOpts, type Socket } from "node:net";
import { join } from "node:path";
import { interrupted } from "../core/abort.js";
import { normaliseEntryName, StrictTarScanner, TarEntryChecker } from "../core/archive.js";
import { TarRenamer } from "../core/docker/tar-rename.js";
import { openVolumeUpload } from "../core/docker/volumes.js";
// records each helper container before its create request (crash recovery)
import "./helper-ledger.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { requireProgram } from "../core/exec.js";
import { makeTempDir, onCleanup, removeTempDir } from "../core/fs.js";
import { drained } from "../core/stream.js";
import { HashedBuffers } from "./import-volume-buffers.js";
import { VolumeUpload } from "./import-volume-put.js";
import type { PackageVolume } from "./package-format.js";
import { volumeProblemCode, volumeReadProblem, volumeTooLarge } from "./package-volume.js";
import { type HashResult, SharedHasher } from "./package-volume-hash.js";

/** Bytes per read of the package, and per read of zstd's output. */
const FEED_BYTES = 1024 * 1024;
const READ_BYTES = 256 * 1024;
/** Package reads in flight (not yet both written to zstd and hashed). */
const FEED_BUFFERS = 4;
/** Reads of zstd's output in flight (not yet both sent to the engine and hashed). */
const READ_BUFFERS = 8;

/** What one pass found; see import-restore.ts restoreVolume for how it is judged. */
export interface OnePass {
  /** sha256 (`sha256:…`) and size of the member as read. */
  sha256: string;
  size: number;
  /** Size of the tar zstd produced (as far as it was read; its sha256 is not computed). */
  tarSize: number;
  /** The first problem of the tar (validate's code and message). */
  problem?: { code: string; message: string };
  /** The engine's failure (the upload was refused or broke). */
  engineFailure?: unknown;
  /** The read's own failure (the package file, zstd's start, an interruption). */
  readFailure?: unknown;
}

/** The problem for a checker's refusal (a package code already) or a reading failure. */
function problemOf(e: unknown, v: PackageVolume): { code: string; message: string } {
  const err = toDockpackError(e);
  if (err.code.startsWith("PACKAGE_") && err.code !== "PACKAGE_VOLUME_TOO_LARGE")
    return { code: err.code, message: err.message };
  return volumeReadProblem(err, v);
}

/** A connected pair of Unix stream sockets: `ours` (with `onread` when given) and the child's end. */
async function socketPair(onread?: OnReadOpts): Promise<{ ours: Socket; theirs: Socket }> {
  // a socket file in a private folder: no other user can connect before we do; a temp dir that
  // names its owner, so the next run's sweep removes it after a SIGKILL
  const dir = await makeTempDir("dockpack-pair-");
  const path = join(dir, "s");
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, resolve);
    });
    const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
    const ours = connect({ path, ...(onread ? { onread } : {}) });
    await new Promise<void>((resolve, reject) => {
      ours.once("connect", resolve);
      ours.once("error", reject);
    });
    return { ours, theirs: await accepted };
  } finally {
    server.close();
    await removeTempDir(dir);
  }
}

/**
 * Restores the zstd volume member at `at` of `file` into the (new, empty) volume `dockerName`
 * through the engine socket `socketPath` (see the module docs).
 * @param progress called with the tar bytes of each read
 * @param stopper registers the function that stops the pass (an interruption); returns its unhook
 * @throws DockpackError `VOLUME_NOT_FOUND`/`VOLUME_FAILED` when the helper container cannot be made
 *   (nothing was read yet); everything later is returned in {@link OnePass}
 */
export async function restoreVolumeFast(
  file: string,
  at: { offset: number; size: number },
  packaged: PackageVolume,
  dockerName: string,
  socketPath: string,
  options: {
    allowSpecialFiles: boolean;
    progress: (n: number) => void;
    stopper: (stop: () => void) => () => void;
  },
): Promise<OnePass> {
  const helper = await openVolumeUpload(dockerName);
  try {
    return await onePass(file, at, packaged, socketPath, helper, options);
  } finally {
    await helper.release();
  }
}

async function onePass(
  file: string,
  at: { offset: number; size: number },
  v: PackageVolume,
  socketPath: string,
  helper: { path: string; dir: string },
  options: {
    allowSpecialFiles: boolean;
    progress: (n: number) => void;
    stopper: (stop: () => void) => () => void;
  },
): Promise<OnePass> {
  const zstd = requireProgram("zstd", "zstd decompression");
  // the member's digest is computed on a worker thread, in place in the buffers read into; the
  // tar's buffers are plain (see the module docs)
  const memberBuffers = new HashedBuffers(
    new SharedHasher(FEED_BUFFERS, FEED_BYTES),
    FEED_BUFFERS,
    FEED_BYTES,
  );
  const tarBuffers = new HashedBuffers(null, READ_BUFFERS, READ_BYTES);
  let tarSize = 0;
  let problem: { code: string; message: string } | undefined;
  let readFailure: unknown;
  let engineFailure: unknown;
  const put = new VolumeUpload(socketPath, helper.path, v.member);
  // the engine's refusal (or a broken connection) stops everything; its answer names the reason
  put.done.catch((err) => {
    if (halted) return;
    engineFailure ??= err;
    halt();
  });

  const checker = new TarEntryChecker({ allowSpecialFiles: options.allowSpecialFiles });
  const scanner = new StrictTarScanner((entry) => {
    const p = checker.check(entry);
    if (p) throw new DockpackError(volumeProblemCode(p), p.reason);
  });
  const move = (n: string) => {
    const rel = normaliseEntryName(n);
    return rel === "" ? `${helper.dir}/` : `${helper.dir}/${rel}${n.endsWith("/") ? "/" : ""}`;
  };
  let parts: Buffer[] = [];
  const renamer = new TarRenamer(move, (b) => parts.push(b));

  /** No more tar bytes go anywhere (a problem, a failure, an interruption). */
  let halted = false;
  let child: ChildProcess | undefined;
  let output: Socket | undefined;
  const halt = () => {
    if (halted) return;
    halted = true;
    child?.kill("SIGKILL");
    output?.destroy();
    tarBuffers.poke();
    memberBuffers.poke();
  };
  const noteProblem = (e: unknown) => {
    problem ??= problemOf(e, v);
    halt();
  };
  const unhookStop = options.stopper(() => {
    readFailure ??= interrupted();
    halt();
  });
  // an exit (SIGINT past the grace, process.exit) leaves no zstd behind
  const unhookExit = onCleanup(() => {
    child?.kill("SIGKILL");
  });

  // zstd's output: counted, scanned, renamed and sent in one step per read
  /** Resolves once the engine's socket may take more and a buffer is free for the read after next. */
  const room = async () => {
    while (!halted) {
      await put.drained();
      if (tarBuffers.available > 1) return;
      await tarBuffers.until(1, () => halted);
    }
  };
  const onread: OnReadOpts = {
    // called right after each callback (paused or not): `room` keeps one free for it
    buffer: () => tarBuffers.take(),
    callback: (n: number, buf: Uint8Array): boolean => {
      const lent = buf as Buffer;
      if (halted) return true;
      const data = lent.subarray(0, n);
      tarSize += n;
      options.progress(n);
      if (tarSize > v.size) {
        noteProblem(volumeTooLarge(v.size, v.member));
        return true;
      }
      let sent: () => void;
      try {
        sent = tarBuffers.lend(lent, data);
      } catch (e) {
        readFailure ??= e;
        halt();
        return true;
      }
      try {
        scanner.write(data);
      } catch (e) {
        sent();
        noteProblem(e);
        return true;
      }
      renamer.write(data);
      const out = parts;
      parts = [];
      if (put.send(out, sent) && tarBuffers.available > 1) return true;
      room().then(
        () => {
          if (!halted) output?.resume();
        },
        (e: unknown) => {
          readFailure ??= e;
          halt();
        },
      );
      return false;
    },
  };

  const feed = await open(file, "r").catch((e: unknown) => {
    readFailure ??= e;
    return undefined;
  });
  let input: Socket | undefined;
  try {
    if (!feed) throw readFailure;
    const pairIn = await socketPair();
    const pairOut = await socketPair(onread);
    input = pairIn.ours;
    output = pairOut.ours;
    child = spawn(zstd, ["-d", "-c", "-q"], { stdio: [pairIn.theirs, pairOut.theirs, "pipe"] });
    pairIn.theirs.destroy();
    pairOut.theirs.destroy();
    const proc = child;
    let stderr = "";
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (s: string) => {
      stderr = (stderr + s).slice(-4096);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      proc.once("error", (err) => {
        readFailure ??= err;
        resolve({ code: null, signal: null });
      });
      proc.once("close", (code, signal) => resolve({ code, signal }));
    });
    const outputEnded = new Promise<void>((resolve) => {
      output?.once("end", resolve);
      output?.once("close", () => resolve());
      output?.on("error", () => resolve());
    });
    input.on("error", () => undefined);

    await feedMember(
      feed,
      at,
      input,
      memberBuffers,
      () => halted,
      () => readFailure !== undefined,
    );
    input.end();

    const exit = await exited;
    await outputEnded;
    if (!halted && readFailure === undefined) {
      if (exit.code !== 0)
        noteProblem(
          new DockpackError(
            "CODEC_DECOMPRESS_FAILED",
            `zstd decompression failed: zstd -d -c -q: ${stderr.trim() || (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`)}`,
          ),
        );
      else {
        try {
          scanner.end();
          renamer.end();
          put.send(parts, () => undefined);
          parts = [];
        } catch (e) {
          noteProblem(e);
        }
      }
    }
    if (!halted && readFailure === undefined) await put.finish().catch(() => undefined);
    else await put.cut(problem ?? readFailure ?? engineFailure);
  } catch (err) {
    readFailure ??= err;
    halt();
    await put.cut(readFailure);
  } finally {
    unhookStop();
    unhookExit();
    halt();
    input?.destroy();
    await feed?.close();
  }
  // the digest of what was read (every byte added was hashed before finish resolves)
  const hasher = memberBuffers.hasher;
  const member = await hasher.finish().catch((e: unknown): HashResult => {
    readFailure ??= e;
    return { digest: "sha256:", size: hasher.size };
  });
  return {
    sha256: member.digest,
    size: member.size,
    tarSize,
    ...(problem ? { problem } : {}),
    ...(engineFailure !== undefined ? { engineFailure } : {}),
    ...(readFailure !== undefined ? { readFailure } : {}),
  };
}

/**
 * Reads `[at.offset, at.offset + at.size)` of the open package in 1 MiB reads into `buffers`
 * (hashed in place on their worker), and writes each to `input` (zstd's stdin) until
 * `stopped()`, then only hashes the rest. A buffer is read into again once its write completed
 * and its bytes were hashed. Stops early at the end of the file (the size then differs: a
 * checksum mismatch).
 * @throws DockpackError `HASH_FAILED` (the worker failed)
 */
async function feedMember(
  fh: Awaited<ReturnType<typeof open>>,
  at: { offset: number; size: number },
  input: Socket,
  buffers: HashedBuffers,
  stopped: () => boolean,
  aborted: () => boolean,
): Promise<void> {
  // once stopped, no write completes any more: the reads then go to spares
  const done = () => stopped() || input.destroyed;
  let pos = at.offset;
  const end = at.offset + at.size;
  while (pos < end && !aborted()) {
    await buffers.until(0, done);
    const buf = buffers.take();
    const { bytesRead } = await fh.read(buf, 0, Math.min(FEED_BYTES, end - pos), pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    const chunk = buf.subarray(0, bytesRead);
    const written = buffers.lend(buf, chunk);
    if (done()) {
      written();
      continue;
    }
    // the socket holds the buffer until it is written; a full socket waits here
    const ok = input.write(chunk, () => written());
    if (!ok) await drained(input);
  }
}
