/**
 * {@link ExtractedContainer}: a tar stream (`docker save` output) unpacked into a temporary
 * directory as it arrives, one file per regular member, hashing each member on the way.
 *
 * Compared with writing the stream to one tar file, the same bytes are written once, but every
 * layer then sits in its own file: tools that need a file (xdelta3, zstd --patch-from, bsdiff)
 * read it in place instead of from a copy, and the sha256 of every member is known without
 * reading it again. Members are stored under generated names (never the archive's paths), so
 * no entry can escape the directory; symlinks and hard links inside the archive are resolved
 * like {@link TarContainer} does. Follows POSIX ustar/pax and GNU long names (via tar-stream).
 */
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { lstat, open, readdir, readFile, readlink } from "node:fs/promises";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type { AppendedMember } from "../core/archive/file-writer.js";
import { DigestStream } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import { type BlobContainer, type MemberInfo, normalizeMemberPath } from "./container.js";

interface Entry {
  type: "file" | "link";
  /** For files: the extracted file; absent for a member the unpacker dropped (see {@link ExtractedContainer.adopt}). */
  file?: string;
  /** For files: where the bytes start in `file` (a member written into another file; default 0). */
  start?: number;
  size: number;
  /** For files: `sha256:<hex>` of the bytes. */
  digest?: string;
  /** For links: the target, normalised (relative to the archive root). */
  target?: string;
}

/**
 * Called for each regular member as soon as it is unpacked: its path in the archive, the file
 * holding its bytes, its size in bytes and `sha256:<hex>` (undefined when unpacked with
 * `hash: false`). Must not throw; it may start asynchronous work of its own (the caller
 * handles that work's errors).
 */
export type MemberHook = (member: { path: string; file: string; size: number; digest?: string }) => void;

/**
 * A member dockpack compressed on the way in (see save-unpack's `pack`): its bytes in the
 * container are zstd at `level` (`--long=27` when `long`), `size` the uncompressed size in bytes.
 */
export interface PackedMember {
  codec: "zstd";
  level: number;
  long: boolean;
  size: number;
  /** `sha256:<hex>` and size in bytes of the compressed bytes as stored, when the unpacker hashed them. */
  stored?: { digest: string; size: number };
  /**
   * Set when the unpacker wrote the compressed bytes into a package under construction instead
   * of a file in the directory (see save-unpack's `into`): `size` bytes at `start` of `file`,
   * the member `member` of that package's writer.
   */
  inPackage?: { file: string; start: number; size: number; member: AppendedMember };
}

/** Options of {@link ExtractedContainer.extract}. */
export interface ExtractOptions {
  /** See {@link MemberHook}. */
  onMember?: MemberHook;
  /**
   * Hash every member on the way (default true). False only for a stream whose producer already
   * checked each layer against its digest (the engine's `docker save`): sha256 costs about a
   * CPU second per 400 MiB here; {@link ExtractedContainer.digest} is then undefined.
   */
  hash?: boolean;
}

/** A {@link BlobContainer} over a tar stream unpacked into a directory (see the module doc). */
export class ExtractedContainer implements BlobContainer {
  private constructor(
    readonly location: string,
    private readonly entries: Map<string, Entry>,
    private readonly order: MemberInfo[],
    /** False when unpacked with `hash: false` (no member digests known). */
    readonly hashed: boolean,
    private readonly packedMembers: ReadonlyMap<string, PackedMember> = new Map(),
  ) {}

  /**
   * Unpacks `input` (an uncompressed tar stream) into `dir` (an existing, empty directory the
   * caller owns and removes). Sizes in bytes. `location` names the source in messages.
   * Throws `ARCHIVE_TRUNCATED` when the stream ends inside a member or is not a tar.
   * @param options see {@link ExtractOptions}
   */
  static async extract(
    input: Readable,
    dir: string,
    location: string,
    options: ExtractOptions = {},
  ): Promise<ExtractedContainer> {
    const { onMember } = options;
    const hashed = options.hash ?? true;
    const entries = new Map<string, Entry>();
    const order: MemberInfo[] = [];
    let n = 0;
    // The member being written: closed before a failure is reported, so no write into `dir` is
    // still in flight (or its file still open) when the caller removes it.
    let writing: WriteStream | undefined;
    const extract = tar.extract();
    extract.on("entry", (header, stream, next) => {
      const path = normalizeMemberPath(header.name);
      if (header.type === "file" || header.type === "contiguous-file") {
        const file = join(dir, `m${n++}`);
        const hash = hashed ? new DigestStream() : undefined;
        writing = createWriteStream(file, { highWaterMark: 1024 * 1024 });
        (hash ? pipeline(stream, hash, writing) : pipeline(stream, writing)).then(
          () => {
            const digest = hash?.digest;
            // tar-stream delivers exactly header.size bytes or fails the entry.
            const size = hash ? hash.size : (header.size ?? 0);
            entries.set(path, { type: "file", file, size, digest });
            order.push({ path, size });
            onMember?.({ path, file, size, digest });
            next();
          },
          (e) => next(e),
        );
        return;
      }
      if ((header.type === "symlink" || header.type === "link") && header.linkname) {
        const l = header.linkname;
        const target =
          header.type === "symlink" && !l.startsWith("/") ? posix.join(posix.dirname(path), l) : l;
        entries.set(path, { type: "link", size: 0, target: normalizeMemberPath(target) });
      }
      stream.on("end", () => next());
      stream.resume();
    });
    try {
      await pipeline(input, extract);
    } catch (e) {
      const w = writing;
      if (w && !w.closed) await new Promise<void>((done) => w.once("close", () => done()));
      if (e instanceof DockpackError) throw e;
      throw new DockpackError(
        "ARCHIVE_TRUNCATED",
        `${location}: the tar stream is cut short or malformed (${(e as Error).message}).`,
        { cause: e, hint: "Run the export again; check free disk space." },
      );
    }
    return new ExtractedContainer(location, entries, order, hashed);
  }

  /**
   * Adopts `dir`, a directory a trusted unpacker (GNU tar fed by the engine's `docker save`, see
   * save-unpack.ts) has finished writing, as a container without hashing: regular files become
   * members, symlinks become links resolved by name like {@link ExtractedContainer.extract} does
   * (never followed on disk), anything else is left out. The walk uses lstat only, so a symlink
   * in the tree never leads outside `dir`. `order` lists member paths in stream order (others
   * follow, sorted). `packed` lists the members the unpacker compressed, by path; `dropped` the
   * members it read but did not keep (path → size in bytes; the caller will not read them): they
   * are listed with their size, and reading one throws `IMAGE_MEMBER_DROPPED`. `links` adds
   * symlink members the unpacker did not create on disk (path → target as stored, relative to
   * the link's folder), resolved by name like the others.
   */
  static async adopt(
    dir: string,
    location: string,
    order: string[] = [],
    packed: ReadonlyMap<string, PackedMember> = new Map(),
    dropped: ReadonlyMap<string, number> = new Map(),
    links: ReadonlyMap<string, string> = new Map(),
  ): Promise<ExtractedContainer> {
    const entries = new Map<string, Entry>();
    const link = (path: string, l: string) =>
      entries.set(path, {
        type: "link",
        size: 0,
        target: normalizeMemberPath(l.startsWith("/") ? l : posix.join(posix.dirname(path), l)),
      });
    for (const [path, target] of links) link(normalizeMemberPath(path), target);
    for (const [path, size] of dropped) entries.set(normalizeMemberPath(path), { type: "file", size });
    for (const [path, p] of packed) {
      if (p.inPackage) {
        const { file, start, size } = p.inPackage;
        entries.set(normalizeMemberPath(path), { type: "file", file, start, size });
      }
    }
    const walk = async (rel: string): Promise<void> => {
      for (const name of (await readdir(join(dir, rel))).sort()) {
        const path = rel ? `${rel}/${name}` : name;
        const file = join(dir, path);
        const st = await lstat(file);
        if (st.isDirectory()) await walk(path);
        else if (st.isFile()) entries.set(path, { type: "file", file, size: st.size });
        else if (st.isSymbolicLink()) link(path, await readlink(file));
      }
    };
    await walk("");
    const rank = new Map(order.map((p, i) => [normalizeMemberPath(p), i]));
    const paths = [...entries.keys()].filter((p) => entries.get(p)?.type === "file");
    const at = (p: string) => rank.get(p) ?? order.length;
    paths.sort((a, b) => at(a) - at(b) || (a < b ? -1 : a > b ? 1 : 0));
    const members = paths.map((path) => ({ path, size: (entries.get(path) as Entry).size }));
    return new ExtractedContainer(location, entries, members, false, packed);
  }

  /** How the unpacker compressed member `path` (see {@link PackedMember}); undefined when stored as it came. */
  packed(path: string): PackedMember | undefined {
    let p = normalizeMemberPath(path);
    for (let depth = 0; depth <= 16; depth++) {
      const e = this.entries.get(p);
      if (e?.type !== "link") return this.packedMembers.get(p);
      p = e.target as string;
    }
    return undefined;
  }

  /** The members the unpacker wrote into a package under construction (see {@link PackedMember.inPackage}). */
  appended(): AppendedMember[] {
    return [...this.packedMembers.values()].flatMap((p) => (p.inPackage ? [p.inPackage.member] : []));
  }

  /** True for a member the unpacker dropped (see {@link ExtractedContainer.adopt}). */
  dropped(path: string): boolean {
    const e = this.resolve(path);
    return e?.type === "file" && e.file === undefined;
  }

  /** The compression of a member as stored, when the unpacker knows it (packed: zstd; dropped: none). */
  storedCodec(path: string): "zstd" | "none" | undefined {
    if (this.packed(path)) return "zstd";
    return this.dropped(path) ? "none" : undefined;
  }

  private resolve(path: string, depth = 0): Entry | undefined {
    const e = this.entries.get(normalizeMemberPath(path));
    if (!e || depth > 16) return undefined;
    if (e.type === "link") return this.resolve(e.target as string, depth + 1);
    return e;
  }

  private need(path: string): Entry {
    const e = this.resolve(path);
    if (!e) {
      throw new DockpackError("IMAGE_MEMBER_MISSING", `${this.location}: the member '${path}' is missing.`, {
        hint: "The archive is incomplete or not an image archive of the expected format.",
      });
    }
    if (e.type === "file" && e.file === undefined) {
      throw new DockpackError(
        "IMAGE_MEMBER_DROPPED",
        `${this.location}: '${path}' was not kept while unpacking (a layer the caller said it would not read).`,
        { hint: "This is a bug in dockpack; report it with the command you ran." },
      );
    }
    return e;
  }

  /** `sha256:<hex>` of a member's bytes, computed while unpacking; undefined when absent. */
  digest(path: string): string | undefined {
    return this.resolve(path)?.digest;
  }

  async has(path: string): Promise<boolean> {
    return this.resolve(path) !== undefined;
  }

  async size(path: string): Promise<number> {
    const e = this.resolve(path);
    return e?.type === "file" && e.file === undefined ? e.size : this.need(path).size;
  }

  async range(path: string): Promise<{ file: string; start: number; size: number }> {
    const e = this.need(path);
    return { file: e.file as string, start: e.start ?? 0, size: e.size };
  }

  async open(path: string): Promise<Readable> {
    const e = this.need(path);
    if (e.start === undefined) return createReadStream(e.file as string);
    if (e.size === 0) return Readable.from([]);
    return createReadStream(e.file as string, { start: e.start, end: e.start + e.size - 1 });
  }

  async read(path: string, limit = 64 * 1024 * 1024): Promise<Buffer> {
    const e = this.need(path);
    if (e.size > limit) {
      throw new DockpackError(
        "IMAGE_MEMBER_TOO_LARGE",
        `${this.location}: '${path}' is ${e.size} bytes, more than expected.`,
      );
    }
    if (e.start === undefined) return readFile(e.file as string);
    const fh = await open(e.file as string, "r");
    try {
      const buf = Buffer.alloc(e.size);
      let at = 0;
      while (at < e.size) {
        const { bytesRead } = await fh.read(buf, at, e.size - at, e.start + at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      return buf.subarray(0, at);
    } finally {
      await fh.close();
    }
  }

  async members(): Promise<MemberInfo[]> {
    return [...this.order];
  }
}
