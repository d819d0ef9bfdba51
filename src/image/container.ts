/**
 * Random access to the members of an image archive: a tar file indexed once by its headers
 * (`docker save` output, OCI archives, delta packages) or a plain directory (OCI image layout).
 *
 * The tar index reads only the 512-byte headers (seeking over member bodies), so opening a
 * multi-GiB `docker save` file costs a few reads. Member bodies are then streamed from their
 * byte range; nothing is held in memory. Follows POSIX ustar/pax (IEEE 1003.1-2001) and the GNU
 * long-name extension, which is what Go's archive/tar (Docker, skopeo) writes.
 */
import { constants, createReadStream } from "node:fs";
import { open, readFile, realpath, stat } from "node:fs/promises";
import { posix, sep } from "node:path";
import { Readable } from "node:stream";
import { DockpackError } from "../core/errors.js";

/** One regular file inside a {@link BlobContainer}. */
export interface MemberInfo {
  /** Normalised path ("blobs/sha256/…", no leading "./"). */
  path: string;
  /** Size in bytes. */
  size: number;
}

/** Random-access view of the files of an archive or directory. Paths are normalised (no "./"). */
export interface BlobContainer {
  /** The file or directory this reads, for messages. */
  readonly location: string;
  /** True when `path` names a regular file (after following symlinks inside the archive). */
  has(path: string): Promise<boolean>;
  /** Size of a member in bytes; throws `IMAGE_MEMBER_MISSING` when absent. */
  size(path: string): Promise<number>;
  /** Streams a member's bytes; throws `IMAGE_MEMBER_MISSING` when absent. */
  open(path: string): Promise<Readable>;
  /** Reads a small member (manifest, config) whole; refuses members above `limit` bytes (default 64 MiB). */
  read(path: string, limit?: number): Promise<Buffer>;
  /** Where the member's bytes sit contiguously in a local file, for tools that need a file. */
  range(path: string): Promise<{ file: string; start: number; size: number }>;
  /** Every regular member, in archive order. */
  members(): Promise<MemberInfo[]>;
  /**
   * The compression of a member as stored when the container knows it without reading (e.g. a
   * layer compressed or dropped while unpacking, see ExtractedContainer); undefined otherwise.
   */
  storedCodec?(path: string): "zstd" | "none" | undefined;
}

/** Normalises a member path: strips "./" and leading "/", resolves "." and "..". */
export function normalizeMemberPath(p: string): string {
  const n = posix.normalize(`/${p}`).replace(/^\/+/, "");
  return n.replace(/\/+$/, "");
}

/** One entry of a tar index; `offset` is where its body starts in the file. */
export interface TarEntry {
  path: string;
  type: "file" | "symlink" | "hardlink" | "dir" | "other";
  offset: number;
  size: number;
  linkname: string;
}

function cstr(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString("utf8", start, end === -1 || end > start + len ? start + len : end);
}

/**
 * Parses a numeric tar header field strictly (POSIX ustar: octal digits, optionally led by
 * spaces and ended by NUL or space; GNU base-256 when the high bit of the first byte is set).
 * Returns undefined for anything else (no digit, a foreign character, a negative or unsafe value).
 */
export function parseTarNumber(buf: Buffer, start: number, len: number): number | undefined {
  if (buf[start] & 0x80) {
    // GNU base-256: big-endian, first byte's high bit is the flag; 0xff marks a negative number.
    if (buf[start] === 0xff) return undefined;
    let v = buf[start] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + buf[start + i];
    return Number.isSafeInteger(v) ? v : undefined;
  }
  const s = buf.toString("latin1", start, start + len);
  // As Go's archive/tar: trim spaces and NULs at both ends, then nothing but octal digits.
  const t = s.replace(/^[ \0]+|[ \0]+$/g, "");
  if (t === "") return 0;
  if (!/^[0-7]+$/.test(t)) return undefined;
  const v = Number.parseInt(t, 8);
  return Number.isSafeInteger(v) ? v : undefined;
}

function headerNumber(
  file: string,
  head: Buffer,
  offset: number,
  field: string,
  start: number,
  len: number,
): number {
  const v = parseTarNumber(head, start, len);
  if (v === undefined) {
    throw new DockpackError(
      "ARCHIVE_INVALID",
      `${file}: the tar header at byte ${offset} has an invalid ${field} field (${JSON.stringify(head.toString("latin1", start, start + len))}).`,
      { hint: "The file is not a tar archive or is corrupted.", details: { file, offset, field } },
    );
  }
  return v;
}

/** Largest pax / GNU long-name body read into memory (bytes). */
const MAX_META_BODY = 1024 * 1024;

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp === -1) break;
    const len = Number.parseInt(body.toString("utf8", i, sp), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = body.toString("utf8", sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/**
 * Indexes a tar file by reading its headers only. Throws `ARCHIVE_TRUNCATED` when a member runs
 * past the end of the file and `ARCHIVE_INVALID` when a header checksum is wrong or `file` is no
 * regular file (opened non-blocking: a fifo is refused at once instead of waiting for a writer).
 * @param file path of an uncompressed tar file
 * @param range where the tar sits inside `file` (a layer inside an image archive); default: all of it
 */
export async function indexTar(file: string, range?: { start: number; size: number }): Promise<TarEntry[]> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile())
      throw new DockpackError(
        "ARCHIVE_INVALID",
        `${file} is ${st.isDirectory() ? "a folder" : st.isFIFO() ? "a fifo" : st.isSocket() ? "a socket" : "a device"}, not a regular file.`,
        { hint: "Give the archive file itself (random access is needed: not a pipe)." },
      );
    const fileSize = range ? range.start + range.size : st.size;
    const entries: TarEntry[] = [];
    const head = Buffer.alloc(512);
    let offset = range?.start ?? 0;
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    // Headers of small members sit close together: read them through a 128 KiB window (one read
    // for many headers) while bodies are small; after a large body, read just the header.
    let win = Buffer.alloc(0);
    let winStart = 0;
    let lastBody = 0;
    const readAt = async (target: Buffer, length: number, pos: number): Promise<void> => {
      if (pos < winStart || pos + length > winStart + win.length) {
        const want = lastBody < 96 * 1024 ? Math.max(length, Math.min(128 * 1024, fileSize - pos)) : length;
        const b = Buffer.alloc(want);
        const { bytesRead } = await fh.read(b, 0, want, pos);
        win = b.subarray(0, bytesRead);
        winStart = pos;
      }
      win.copy(target, 0, pos - winStart, pos - winStart + length);
    };
    for (;;) {
      if (offset + 512 > fileSize) {
        if (offset === fileSize && (entries.length > 0 || range)) break; // no end-of-archive blocks; accept
        throw new DockpackError(
          "ARCHIVE_TRUNCATED",
          `${file}: the tar archive ends in the middle of a header.`,
          {
            hint: "The file is incomplete (interrupted copy?); copy it again.",
          },
        );
      }
      await readAt(head, 512, offset);
      if (head.every((b) => b === 0)) break;
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : head[i];
      if (sum !== parseTarNumber(head, 148, 8)) {
        throw new DockpackError("ARCHIVE_INVALID", `${file}: bad tar header checksum at byte ${offset}.`, {
          hint: "The file is not a tar archive or is corrupted.",
        });
      }
      const size = headerNumber(file, head, offset, "size", 124, 12);
      const flag = String.fromCharCode(head[156] || 0x30);
      const bodyStart = offset + 512;
      const next = bodyStart + Math.ceil(size / 512) * 512;
      if (bodyStart + size > fileSize) {
        throw new DockpackError(
          "ARCHIVE_TRUNCATED",
          `${file}: the tar archive is truncated (member at byte ${offset} needs ${size} bytes, the file ends at ${fileSize}).`,
          { hint: "The file is incomplete (interrupted copy?); copy it again." },
        );
      }
      if (flag === "x" || flag === "L" || flag === "K") {
        if (size > MAX_META_BODY) {
          throw new DockpackError(
            "ARCHIVE_INVALID",
            `${file}: the tar extended header at byte ${offset} is ${size} bytes (more than ${MAX_META_BODY}).`,
            { hint: "The file is not a tar archive written by a usual tool, or is corrupted." },
          );
        }
        const body = Buffer.alloc(size);
        await readAt(body, size, bodyStart);
        if (flag === "x") pax = parsePax(body);
        else if (flag === "L") longName = cstr(body, 0, size);
        else longLink = cstr(body, 0, size);
        offset = next;
        continue;
      }
      if (flag === "g") {
        offset = next;
        continue;
      }
      const magic = head.toString("latin1", 257, 263);
      const prefix = magic === "ustar\u000000" || magic.startsWith("ustar\0") ? cstr(head, 345, 155) : "";
      let name = cstr(head, 0, 100);
      if (prefix) name = `${prefix}/${name}`;
      name = pax.path ?? longName ?? name;
      const linkname = pax.linkpath ?? longLink ?? cstr(head, 157, 100);
      let realSize = size;
      if (pax.size !== undefined) {
        if (!/^[0-9]{1,16}$/.test(pax.size) || !Number.isSafeInteger(Number(pax.size))) {
          throw new DockpackError(
            "ARCHIVE_INVALID",
            `${file}: the pax size of the member at byte ${offset} is invalid (${JSON.stringify(pax.size.slice(0, 40))}).`,
            { hint: "The file is not a tar archive or is corrupted." },
          );
        }
        realSize = Number(pax.size);
        if (bodyStart + realSize > fileSize) {
          throw new DockpackError(
            "ARCHIVE_TRUNCATED",
            `${file}: the tar archive is truncated (member at byte ${offset} needs ${realSize} bytes, the file ends at ${fileSize}).`,
            { hint: "The file is incomplete (interrupted copy?); copy it again." },
          );
        }
      }
      const type =
        flag === "0" || flag === "\0" || flag === "7"
          ? "file"
          : flag === "2"
            ? "symlink"
            : flag === "1"
              ? "hardlink"
              : flag === "5"
                ? "dir"
                : "other";
      entries.push({ path: normalizeMemberPath(name), type, offset: bodyStart, size: realSize, linkname });
      pax = {};
      longName = undefined;
      longLink = undefined;
      lastBody = realSize;
      offset = bodyStart + Math.ceil(realSize / 512) * 512;
      if (realSize !== size) offset = Math.max(offset, next);
    }
    return entries;
  } finally {
    await fh.close();
  }
}

function missing(location: string, path: string): DockpackError {
  return new DockpackError("IMAGE_MEMBER_MISSING", `${location}: the member '${path}' is missing.`, {
    hint: "The archive is incomplete or not an image archive of the expected format.",
  });
}

/** A {@link BlobContainer} over an uncompressed tar file. */
export class TarContainer implements BlobContainer {
  private constructor(
    readonly location: string,
    private readonly entries: Map<string, TarEntry>,
    private readonly order: TarEntry[],
  ) {}

  /** Indexes `file` (see {@link indexTar}) and returns the container. */
  static async open(file: string): Promise<TarContainer> {
    const order = await indexTar(file);
    const map = new Map<string, TarEntry>();
    for (const e of order) map.set(e.path, e);
    return new TarContainer(file, map, order);
  }

  private resolve(path: string, depth = 0): TarEntry | undefined {
    const e = this.entries.get(normalizeMemberPath(path));
    if (!e || depth > 16) return undefined;
    if (e.type === "symlink") {
      const target = e.linkname.startsWith("/") ? e.linkname : posix.join(posix.dirname(e.path), e.linkname);
      return this.resolve(target, depth + 1);
    }
    if (e.type === "hardlink") return this.resolve(e.linkname, depth + 1);
    return e.type === "file" ? e : undefined;
  }

  async has(path: string): Promise<boolean> {
    return this.resolve(path) !== undefined;
  }

  async size(path: string): Promise<number> {
    const e = this.resolve(path);
    if (!e) throw missing(this.location, path);
    return e.size;
  }

  async range(path: string): Promise<{ file: string; start: number; size: number }> {
    const e = this.resolve(path);
    if (!e) throw missing(this.location, path);
    return { file: this.location, start: e.offset, size: e.size };
  }

  async open(path: string): Promise<Readable> {
    const e = this.resolve(path);
    if (!e) throw missing(this.location, path);
    if (e.size === 0) return Readable.from([]); // createReadStream refuses end -1 (Node ≥ 20)
    return createReadStream(this.location, { start: e.offset, end: e.offset + e.size - 1 });
  }

  async read(path: string, limit = 64 * 1024 * 1024): Promise<Buffer> {
    const e = this.resolve(path);
    if (!e) throw missing(this.location, path);
    if (e.size > limit) {
      throw new DockpackError(
        "IMAGE_MEMBER_TOO_LARGE",
        `${this.location}: '${path}' is ${e.size} bytes, more than expected.`,
      );
    }
    const fh = await open(this.location, "r");
    try {
      const buf = Buffer.alloc(e.size);
      await fh.read(buf, 0, e.size, e.offset);
      return buf;
    } finally {
      await fh.close();
    }
  }

  async members(): Promise<MemberInfo[]> {
    return this.order.filter((e) => e.type === "file").map((e) => ({ path: e.path, size: e.size }));
  }

  /** Every entry that is not a regular file (symlinks, hard links, folders, devices, fifos), in archive order. */
  nonFiles(): { path: string; type: "symlink" | "hardlink" | "dir" | "other" }[] {
    return this.order.flatMap((e) => (e.type === "file" ? [] : [{ path: e.path, type: e.type }]));
  }
}

/**
 * A {@link BlobContainer} over a directory (an OCI image layout). Members are regular files inside
 * the directory: a symlink may point to another file of the layout, never outside it (a blob
 * linked to /etc/shadow or /dev/zero), and fifos, devices and folders are refused
 * (`IMAGE_MEMBER_INVALID`) before anything is read, so no read blocks or never ends.
 */
export class DirContainer implements BlobContainer {
  private root: Promise<string> | undefined;

  constructor(readonly location: string) {}

  private full(path: string): string {
    return posix.join(this.location, normalizeMemberPath(path));
  }

  /** The member's real path (links resolved) and size; throws MISSING or INVALID (see the class docs). */
  private async file(path: string): Promise<{ real: string; size: number }> {
    let real: string;
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      real = await realpath(this.full(path));
      st = await stat(real);
    } catch {
      throw missing(this.location, path);
    }
    this.root ??= realpath(this.location);
    const root = await this.root;
    const invalid = (why: string) =>
      new DockpackError("IMAGE_MEMBER_INVALID", `${this.location}: '${path}' ${why}.`, {
        hint: "An OCI layout holds its blobs as regular files; copy the image again (e.g. with skopeo).",
      });
    if (!real.startsWith(root + sep)) throw invalid(`is a link to ${real}, outside the layout`);
    if (!st.isFile())
      throw invalid(
        `is ${st.isDirectory() ? "a folder" : st.isFIFO() ? "a fifo" : st.isSocket() ? "a socket" : "a device"}, not a regular file`,
      );
    return { real, size: st.size };
  }

  async has(path: string): Promise<boolean> {
    try {
      return (await stat(this.full(path))).isFile();
    } catch {
      return false;
    }
  }

  async size(path: string): Promise<number> {
    return (await this.file(path)).size;
  }

  async range(path: string): Promise<{ file: string; start: number; size: number }> {
    const { real, size } = await this.file(path);
    return { file: real, start: 0, size };
  }

  async open(path: string): Promise<Readable> {
    return createReadStream((await this.file(path)).real);
  }

  async read(path: string, limit = 64 * 1024 * 1024): Promise<Buffer> {
    const { real, size } = await this.file(path);
    if (size > limit) {
      throw new DockpackError(
        "IMAGE_MEMBER_TOO_LARGE",
        `${this.location}: '${path}' is ${size} bytes, more than expected.`,
      );
    }
    return readFile(real);
  }

  async members(): Promise<MemberInfo[]> {
    return [];
  }
}
