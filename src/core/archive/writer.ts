/**
 * Streaming tar writers: {@link createTarWriter} (entry by entry) and {@link packDirectory} (a
 * directory tree). Output is POSIX ustar, with PAX extended headers (POSIX.1-2001 pax format)
 * for names and link targets that are long or not ASCII, written by tar-stream.
 *
 * Deterministic mode (reproducible artifacts, as `tar --sort=name --mtime=@0 --owner=0 --group=0
 * --numeric-owner` with normalised modes): fixed mtime, uid/gid 0, no user or group names, modes
 * 0755 for directories and files with any x bit, 0644 for other files, 0777 for symlinks.
 */
import { createReadStream, type Stats } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import tarStream from "tar-stream";
import { onAbort } from "../abort.js";
import { DockpackError, toDockpackError } from "../errors.js";

/** Options of {@link createTarWriter}. */
export interface TarWriterOptions {
  /** Fixed mtime, uid/gid 0, no user/group names, normalised modes. Default false. */
  deterministic?: boolean;
  /** mtime in seconds since the epoch for every entry in deterministic mode (default 0). */
  mtime?: number;
}

/** Per-entry options of {@link TarWriter}. Ignored fields in deterministic mode: see there. */
export interface TarEntryOptions {
  /** Permission bits (e.g. 0o755); normalised in deterministic mode. */
  mode?: number;
  /** mtime in seconds since the epoch (non-deterministic mode; default now). */
  mtime?: number;
  /** Numeric owner (non-deterministic mode; default 0). */
  uid?: number;
  /** Numeric group (non-deterministic mode; default 0). */
  gid?: number;
}

/** A streaming tar writer. Entries are written in call order; calls are queued, one at a time. */
export interface TarWriter {
  /** The tar bytes. Destroying it makes pending and later add calls reject. */
  readonly stream: Readable;
  /**
   * Adds a regular file. `body` is a buffer, or a stream of exactly `size` bytes (a different
   * length fails the writer). Resolves once the entry has been handed to the tar stream, which
   * waits for the reader (backpressure).
   */
  addFile(
    name: string,
    body: Buffer | { stream: Readable; size: number },
    options?: TarEntryOptions,
  ): Promise<void>;
  /** Adds a directory entry (a trailing `/` is added to the name). */
  addDirectory(name: string, options?: TarEntryOptions): Promise<void>;
  /** Adds a symbolic link `name` → `target` (target kept verbatim). */
  addSymlink(name: string, target: string, options?: TarEntryOptions): Promise<void>;
  /** Writes the end-of-archive marker after the queued entries; resolves when queued. */
  finish(): Promise<void>;
}

type Kind = "file" | "directory" | "symlink";

function normaliseMode(kind: Kind, mode: number | undefined): number {
  if (kind === "symlink") return 0o777;
  if (kind === "directory") return 0o755;
  return (mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
}

/**
 * Creates a streaming tar writer (see {@link TarWriter}).
 * Errors: a body stream error or a size mismatch destroys `.stream` with that error and rejects
 * the pending call.
 */
export function createTarWriter(options: TarWriterOptions = {}): TarWriter {
  const pack = tarStream.pack();
  const deterministic = options.deterministic ?? false;
  const fixedMtime = new Date((options.mtime ?? 0) * 1000);
  const stream = Readable.from(pack as unknown as AsyncIterable<Buffer>, { objectMode: false });
  let failure: Error | undefined;
  stream.once("close", () => {
    if (!failure && !stream.readableEnded) failure = new Error("the tar stream was closed by its reader");
    if (!pack.destroyed) pack.destroy(failure);
  });
  let queue: Promise<void> = Promise.resolve();

  function header(name: string, kind: Kind, opts: TarEntryOptions, extra: Partial<tarStream.Header>) {
    const mode = deterministic
      ? normaliseMode(kind, opts.mode)
      : (opts.mode ?? (kind === "directory" ? 0o755 : kind === "symlink" ? 0o777 : 0o644));
    return {
      name,
      type: kind,
      mode,
      mtime: deterministic ? fixedMtime : new Date((opts.mtime ?? Date.now() / 1000) * 1000),
      uid: deterministic ? 0 : (opts.uid ?? 0),
      gid: deterministic ? 0 : (opts.gid ?? 0),
      ...extra,
    } satisfies Partial<tarStream.Header>;
  }

  function enqueue(job: () => Promise<void>): Promise<void> {
    const next = queue.then(() => {
      if (failure) throw failure;
      return job();
    });
    queue = next.catch(() => undefined);
    return next.catch((err: unknown) => {
      const e = err instanceof Error ? err : toDockpackError(err);
      if (!failure) {
        failure = e;
        stream.destroy(e);
      }
      throw e;
    });
  }

  function write(
    h: Partial<tarStream.Header> & { name: string },
    body?: Buffer | { stream: Readable; size: number },
  ) {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => {
        if (!err) resolve();
        else if (/size mismatch/i.test(err.message))
          reject(
            new DockpackError(
              "ARCHIVE_SIZE_MISMATCH",
              `${h.name}: the data is not the declared size of ${h.size} bytes.`,
              {
                hint: "Make sure nothing writes to the file while it is archived, then try again.",
                cause: err,
              },
            ),
          );
        else reject(err);
      };
      if (body === undefined || Buffer.isBuffer(body)) {
        pack.entry(h, body ?? Buffer.alloc(0), done);
        return;
      }
      h.size = body.size;
      const sink = pack.entry(h, done);
      const src = body.stream;
      src.on("data", (chunk: Buffer) => {
        if (!sink.write(chunk)) src.pause();
      });
      sink.on("drain", () => src.resume());
      sink.on("error", () => src.destroy());
      src.once("end", () => sink.end(undefined));
      src.once("error", (err) => {
        reject(err);
        pack.destroy(err);
      });
    });
  }

  return {
    stream,
    addFile(name, body, opts = {}) {
      return enqueue(() => write(header(name, "file", opts, {}), body));
    },
    addDirectory(name, opts = {}) {
      const dirName = name.endsWith("/") ? name : `${name}/`;
      return enqueue(() => write(header(dirName, "directory", opts, {})));
    },
    addSymlink(name, target, opts = {}) {
      return enqueue(() => write(header(name, "symlink", opts, { linkname: target })));
    },
    finish() {
      return enqueue(async () => {
        pack.finalize();
      });
    },
  };
}

/** Options of {@link packDirectory}. */
export interface PackDirectoryOptions {
  /** Prepended to every entry name: `"./"` (as `tar -C dir .`) or `""` (default). */
  prefix?: "./" | "";
  /** Sorted entries, fixed mtime, uid/gid 0, no names, normalised modes. Default false. */
  deterministic?: boolean;
  /** mtime in seconds for every entry in deterministic mode (default 0). */
  mtime?: number;
  /**
   * Relative paths (with or without `./`) written before all others, in this order, e.g.
   * `["devcontainer-feature.json"]`. Names that do not exist are ignored.
   */
  first?: string[];
  /** Keeps a path (relative, `/`-separated, no prefix) when true; a skipped directory skips its subtree. */
  filter?: (rel: string) => boolean;
  /** With prefix `"./"`, also write the root directory entry `./` (first). Default false. */
  root?: boolean;
}

interface WalkEntry {
  rel: string;
  stat: Stats;
}

/** Compares paths by their UTF-8 bytes (as `LC_ALL=C sort`). */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function walk(dir: string, filter: ((rel: string) => boolean) | undefined): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  async function visit(rel: string): Promise<void> {
    const names = await readdir(rel ? join(dir, rel) : dir);
    for (const name of names) {
      const child = rel ? `${rel}/${name}` : name;
      if (filter && !filter(child)) continue;
      const stat = await lstat(join(dir, child));
      out.push({ rel: child, stat });
      if (stat.isDirectory()) await visit(child);
    }
  }
  await visit("");
  return out;
}

/**
 * Streams a tar of the tree under `dir` (entry names relative to it, `prefix` prepended).
 * Directories, regular files and symlinks (kept as links) are written; sockets are skipped.
 * With `deterministic`, entries are sorted by path (byte order) after the `first` ones, so the
 * same tree gives byte-identical output whatever the mtimes, owners or umask on disk.
 * Errors (on the stream): `ARCHIVE_UNSUPPORTED_ENTRY` for a device node or fifo in the tree,
 * `ARCHIVE_SIZE_MISMATCH` when a file changes while read, and file-system errors.
 */
export function packDirectory(dir: string, options: PackDirectoryOptions = {}): Readable {
  const prefix = options.prefix ?? "";
  const writer = createTarWriter({ deterministic: options.deterministic, mtime: options.mtime });
  const fill = async () => {
    const entries = await walk(dir, options.filter);
    if (options.deterministic) entries.sort((a, b) => byteOrder(a.rel, b.rel));
    const firstNames = (options.first ?? []).map((n) => n.replace(/^(\.\/)+/, "").replace(/\/+$/, ""));
    const rank = (rel: string) => {
      const i = firstNames.indexOf(rel);
      return i === -1 ? firstNames.length : i;
    };
    if (firstNames.length) entries.sort((a, b) => rank(a.rel) - rank(b.rel)); // stable
    if (prefix === "./" && options.root) await writer.addDirectory("./", { mode: 0o755 });
    for (const { rel, stat } of entries) {
      const abs = join(dir, rel);
      const name = prefix + rel;
      const opts: TarEntryOptions = {
        mode: stat.mode & 0o7777,
        mtime: Math.floor(stat.mtimeMs / 1000),
        uid: stat.uid,
        gid: stat.gid,
      };
      if (stat.isDirectory()) await writer.addDirectory(name, opts);
      else if (stat.isSymbolicLink()) await writer.addSymlink(name, await readlink(abs), opts);
      else if (stat.isFile())
        await writer.addFile(name, { stream: createReadStream(abs), size: stat.size }, opts);
      else if (stat.isSocket()) continue;
      else
        throw new DockpackError(
          "ARCHIVE_UNSUPPORTED_ENTRY",
          `${abs} is a device node or fifo; only files, directories and symlinks are archived.`,
          { hint: "Remove it from the directory or exclude it." },
        );
    }
    await writer.finish();
  };
  // the ambient abort signal (core/abort.ts) ends the stream early (its reader sees a premature close)
  const off = onAbort(() => writer.stream.destroy());
  writer.stream.once("close", off);
  fill().catch((err: unknown) => {
    if (!writer.stream.destroyed) writer.stream.destroy(toDockpackError(err));
  });
  return writer.stream;
}
