/**
 * Atomic file writes: the file appears under its final name only when complete and on disk;
 * a crash, a signal or an error leaves the old file (if any) intact and no temp file behind.
 *
 * On Linux the data goes to an unnamed temp file in the target's directory (`open(dir,
 * O_TMPFILE)`, see open(2)), which the kernel discards if the process dies, even by SIGKILL. At
 * commit it is fsynced, given a name with `linkat(…, AT_SYMLINK_FOLLOW)` (via coreutils
 * `ln -L /proc/self/fd/3`, as Node has no linkat) and renamed over the target. Where O_TMPFILE is
 * not supported (or `DOCKPACK_NO_TMPFILE=1`), a named temp file `.<name>.dockpack-tmp-<pid>-<rand>`
 * in the same directory is used, removed on errors, exit and signals, and swept by a later write
 * to the same file when its process is dead.
 *
 * Outputs that are not regular files are never unlinked or renamed over: a character device or
 * a fifo (`/dev/null`, a named pipe) is written as a stream in place, `-` means standard output
 * (when the caller allows it, as `docker save -o -` does), and a directory, socket or block
 * device is refused with `FS_NOT_REGULAR_FILE`.
 */
import {
  close,
  closeSync,
  constants,
  existsSync,
  fchmod,
  write as fsWrite,
  fsync,
  openSync,
  readdirSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { link, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { onAbort } from "../abort.js";
import { DockpackError, toDockpackError } from "../errors.js";
import { findProgram, pidAlive } from "../exec.js";
import { onCleanup } from "./cleanup.js";

/** open(2) O_TMPFILE on Linux (`__O_TMPFILE | O_DIRECTORY`); not exported by node:fs. */
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;

/** Options of {@link createAtomicWriteStream}. */
export interface AtomicWriteOptions {
  /** Replace an existing file (default false: `FS_EXISTS`). */
  overwrite?: boolean;
  /** Permission bits of the new file; default: the replaced file's mode, else 0666 minus umask. */
  mode?: number;
  /** Accept `-` as standard output (default false: `-` is a file name). */
  allowStdout?: boolean;
}

/**
 * What an output path is: `stdout` (`-`, when allowed), `stream` (an existing character device
 * or fifo, written in place), or `file` (a regular file, existing or not, written atomically).
 * @throws DockpackError `FS_NOT_REGULAR_FILE` for a directory, socket or block device (named in
 *   the message); `FS_EACCES` and other file-system errors of stat(2).
 */
export function outputKind(
  path: string,
  options: { allowStdout?: boolean } = {},
): "stdout" | "stream" | "file" {
  if (path === "-" && options.allowStdout) return "stdout";
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "file";
    throw toDockpackError(err);
  }
  if (st.isFile()) return "file";
  if (st.isCharacterDevice() || st.isFIFO()) return "stream";
  const what = st.isDirectory() ? "a directory" : st.isSocket() ? "a socket" : "a block device";
  throw new DockpackError("FS_NOT_REGULAR_FILE", `The output '${path}' is ${what}, not a file.`, {
    hint: "Give the path of a file to write (a character device such as /dev/null or a fifo is written in place).",
    details: { path, kind: what },
  });
}

/** A pending atomic write: write to `stream`, then `commit()` or `abort()`. */
export interface AtomicWrite {
  /** Where the data goes. Ends (`finish`) when everything written is in the temp file. */
  stream: Writable;
  /** Ends the stream if needed, fsyncs, and moves the file into place. Rejects with the stream's error. */
  commit(): Promise<void>;
  /** Discards the temp file; the target is untouched. Safe to call more than once. */
  abort(): Promise<void>;
  /** Bytes written so far through {@link stream}. */
  bytesWritten(): number;
  /**
   * For a regular file: the descriptor of the temp file (O_TMPFILE or named), open read-write,
   * for a caller that writes with positional writes instead of {@link stream} (through
   * `/proc/self/fd/<fd>`); it stays open until commit or abort. Undefined for standard output
   * and devices.
   */
  fd?: number;
}

/**
 * A write into standard output or an existing character device / fifo: nothing to rename, and
 * an abort cannot take back what was written (as with `docker save -o /dev/stdout`).
 */
function streamWrite(path: string, kind: "stdout" | "stream"): AtomicWrite {
  let fd: number;
  try {
    fd = kind === "stdout" ? 1 : openSync(path, constants.O_WRONLY | constants.O_NOCTTY);
  } catch (err) {
    throw toDockpackError(err);
  }
  let written = 0;
  let done = false;
  const stream = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      const step = (off: number) => {
        if (off >= chunk.length) return cb();
        fsWrite(fd, chunk, off, chunk.length - off, null, (err, n) => {
          if (err) {
            // a pipe reader that went away: EAGAIN on a non-blocking stdout is retried
            if ((err as NodeJS.ErrnoException).code === "EAGAIN") return setTimeout(() => step(off), 5);
            return cb(err);
          }
          written += n;
          step(off + n);
        });
      };
      step(0);
    },
  });
  const close = () => {
    if (kind === "stream") {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  };
  return {
    stream,
    bytesWritten: () => written,
    async commit() {
      if (done)
        throw new DockpackError("FS_COMMITTED", `The write of '${path}' was already committed or aborted.`);
      try {
        if (stream.errored) throw stream.errored;
        if (!stream.writableFinished)
          await new Promise<void>((resolve, reject) => {
            stream.once("finish", resolve);
            stream.once("error", reject);
            if (!stream.writableEnded) stream.end();
          });
      } catch (err) {
        done = true;
        close();
        throw toDockpackError(err);
      }
      done = true;
      close();
    },
    async abort() {
      if (done) return;
      done = true;
      if (!stream.destroyed) stream.destroy();
      close();
    },
  };
}

function tempName(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.dockpack-tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`,
  );
}

/** Removes named temp files of `path` left by processes that no longer run. Best effort. */
async function sweepStale(path: string): Promise<void> {
  const prefix = `.${basename(path)}.dockpack-tmp-`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("-")[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !pidAlive(pid))
      await unlink(join(dirname(path), name)).catch(() => undefined);
  }
}

/** Gives the unnamed O_TMPFILE behind `fd` the name `name` (linkat with AT_SYMLINK_FOLLOW). */
async function linkTmpfile(fd: number, name: string): Promise<void> {
  // node:child_process on first use: most commands that load this file never link (issue 14 C18)
  const { spawn } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    const child = spawn("ln", ["-L", "/proc/self/fd/3", name], { stdio: ["ignore", "ignore", "pipe", fd] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(Object.assign(new Error(`ln failed: ${stderr.trim()}`), { lnFailed: true })),
    );
  });
}

function existsError(path: string): DockpackError {
  return new DockpackError("FS_EXISTS", `The file '${path}' exists.`, {
    hint: "Pass --force to overwrite it, or choose another name.",
    details: { path },
  });
}

/**
 * Starts an atomic write of `path` (see the module doc). The file appears only at `commit()`;
 * an exit or an abort of the ambient signal (core/abort.ts: the stream is destroyed) before that
 * leaves no temp file.
 * @throws DockpackError `FS_NOT_REGULAR_FILE` (synchronously) for a directory, socket or block
 *   device; `FS_EXISTS` (synchronously) when `path` exists and `overwrite` is not set,
 *   or at commit when it appeared meanwhile; `FS_ENOENT`/`FS_EACCES` when the directory is missing
 *   or not writable.
 */
export function createAtomicWriteStream(path: string, options: AtomicWriteOptions = {}): AtomicWrite {
  const kind = outputKind(path, options);
  if (kind !== "file") return streamWrite(path, kind);
  const overwrite = options.overwrite ?? false;
  let existingMode: number | undefined;
  try {
    const st = statSync(path);
    if (!overwrite) throw existsError(path);
    existingMode = st.mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw toDockpackError(err);
  }
  const mode = options.mode ?? existingMode;

  let fd: number;
  let named: string | undefined; // the temp file's name when not an O_TMPFILE
  const useTmpfile =
    process.platform === "linux" &&
    process.env.DOCKPACK_NO_TMPFILE !== "1" &&
    findProgram("ln") !== null &&
    existsSync("/proc/self/fd");
  try {
    if (!useTmpfile) throw Object.assign(new Error("no O_TMPFILE"), { code: "EOPNOTSUPP" });
    fd = openSync(dirname(path), O_TMPFILE | constants.O_RDWR, 0o666);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EOPNOTSUPP" && code !== "EISDIR" && code !== "EINVAL") throw toDockpackError(err);
    named = tempName(path);
    try {
      fd = openSync(named, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o666);
    } catch (e) {
      throw toDockpackError(e);
    }
  }

  let done = false;
  const unregisterExit = onCleanup(
    () => abort(),
    () => {
      if (named) {
        try {
          unlinkSync(named);
        } catch {
          // already gone
        }
      }
    },
  );
  // The ambient abort signal (core/abort.ts) destroys the stream, so whatever writes into it
  // stops (a pipeline into it fails with ERR_STREAM_PREMATURE_CLOSE; `withSignal` reports that as
  // INTERRUPTED). No error is emitted: the stream may have no error listener at that moment.
  const unregisterAbort = onAbort(() => {
    if (!done && !stream.destroyed) stream.destroy();
  });
  const unregister = () => {
    unregisterExit();
    unregisterAbort();
  };

  const stream = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      const p = writeAll(chunk);
      inflight = p.catch(() => undefined);
      p.then(() => cb(), cb);
    },
  });
  let position = 0;
  // The write in progress: the fd is closed only after it settled (a closed fd number can be
  // reused by another open at once, and a late write would land in that file).
  let inflight: Promise<void> = Promise.resolve();
  function writeAll(chunk: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const step = (off: number) => {
        if (off >= chunk.length) return resolve();
        fsWrite(fd, chunk, off, chunk.length - off, position, (err, n) => {
          if (err) return reject(err);
          position += n;
          step(off + n);
        });
      };
      step(0);
    });
  }

  async function closeFd(): Promise<void> {
    await new Promise<void>((resolve) => close(fd, () => resolve()));
  }

  async function abort(): Promise<void> {
    if (done) return;
    done = true;
    unregister();
    if (!stream.destroyed) stream.destroy();
    await inflight;
    await closeFd();
    if (named) await unlink(named).catch(() => undefined);
  }

  async function finishStream(): Promise<void> {
    if (stream.errored) throw stream.errored;
    if (stream.writableFinished) return;
    await new Promise<void>((resolve, reject) => {
      stream.once("finish", resolve);
      stream.once("error", reject);
      if (!stream.writableEnded) stream.end();
    });
  }

  async function commit(): Promise<void> {
    if (done)
      throw new DockpackError("FS_COMMITTED", `The write of '${path}' was already committed or aborted.`);
    try {
      await finishStream();
      await promisify(fsync)(fd);
      if (mode !== undefined) await promisify(fchmod)(fd, mode);
      if (named === undefined && !overwrite) {
        // linkat fails with EEXIST instead of replacing: no-overwrite without a race.
        await linkTmpfile(fd, path).catch((err: unknown) => {
          throw existsSync(path) ? existsError(path) : err;
        });
      } else if (
        named === undefined &&
        !existsSync(path) &&
        (await linkTmpfile(fd, path).then(
          () => true,
          () => false,
        ))
      ) {
        // Nothing to replace: linked straight to the final name, so no named temp file ever
        // exists (a SIGKILL between the link and a rename would leave one behind).
      } else {
        // Never rename over something that is not a regular file (it may have appeared meanwhile).
        if (outputKind(path) !== "file") throw new Error("unreachable");
        if (named === undefined) {
          const name = tempName(path);
          await linkTmpfile(fd, name);
          named = name;
        }
        if (overwrite) await rename(named, path);
        else {
          await link(named, path).catch((err: NodeJS.ErrnoException) => {
            throw err.code === "EEXIST" ? existsError(path) : err;
          });
          await unlink(named);
        }
        named = undefined;
      }
      done = true;
      unregister();
      await closeFd();
      await syncDir(dirname(path));
      await sweepStale(path);
    } catch (err) {
      await abort();
      throw toDockpackError(err);
    }
  }

  return { stream, commit, abort, bytesWritten: () => position, fd };
}

/** fsyncs a directory so that a rename in it is durable. Best effort. */
async function syncDir(dir: string): Promise<void> {
  try {
    const h = await open(dir, "r");
    await h.sync().catch(() => undefined);
    await h.close();
  } catch {
    // not supported here
  }
}

/**
 * Writes `data` to `path` atomically: a temp file in the same directory, fsync, then rename over
 * the target (see the module doc). The mode defaults to the replaced file's, else 0666 minus umask.
 * @throws DockpackError `FS_ENOENT` when the directory does not exist, `FS_EACCES`, `FS_ENOSPC`.
 */
export async function atomicWriteFile(
  path: string,
  data: string | Buffer,
  options: { mode?: number } = {},
): Promise<void> {
  const w = createAtomicWriteStream(path, { overwrite: true, mode: options.mode });
  try {
    await new Promise<void>((resolve, reject) => {
      w.stream.once("error", reject);
      w.stream.end(typeof data === "string" ? Buffer.from(data) : data, resolve);
    });
    await w.commit();
  } catch (err) {
    await w.abort();
    throw toDockpackError(err);
  }
}

/** Lists named temp files left next to `path` (diagnostics and tests). */
export function listTempFiles(path: string): string[] {
  const prefix = `.${basename(path)}.dockpack-tmp-`;
  return readdirSync(dirname(path)).filter((n) => n.startsWith(prefix));
}
