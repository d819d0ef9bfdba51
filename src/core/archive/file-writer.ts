/**
 * A tar writer that writes straight into a file with positional writes, so that members of
 * unknown size (a volume compressed on the fly, a layer another process compresses into the
 * file) are streamed once: the header is written with a placeholder and rewritten when the
 * member ends. It also reserves room for a metadata member at the head of the file and fills it
 * in last. Used for environment packages (env/export.ts) and delta packages written in place
 * (delta/package-in-place.ts).
 *
 * Output is POSIX ustar (pax `x` headers for names over 100 bytes; base-256 sizes over 8 GiB), as
 * read by GNU tar, bsdtar and tar-stream. Regular files, directories and symlinks only.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

const BLOCK = 512;

interface HeaderFields {
  name: string;
  size: number;
  mode: number;
  type: "0" | "2" | "5" | "x";
  linkname?: string;
  mtime: number;
}

function octal(buf: Buffer, value: number, offset: number, length: number): void {
  buf.write(`${value.toString(8).padStart(length - 1, "0")}\0`, offset, length, "ascii");
}

function encodeHeader(h: HeaderFields): Buffer {
  const buf = Buffer.alloc(BLOCK);
  buf.write(h.name, 0, 100, "utf8");
  octal(buf, h.mode & 0o7777, 100, 8);
  octal(buf, 0, 108, 8);
  octal(buf, 0, 116, 8);
  if (h.size < 8 ** 11) octal(buf, h.size, 124, 12);
  else {
    // base-256 (GNU): high bit set, big-endian value in the remaining bytes
    buf[124] = 0x80;
    let v = BigInt(h.size);
    for (let i = 135; i > 124; i--) {
      buf[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  octal(buf, Math.floor(h.mtime), 136, 12);
  buf.fill(" ", 148, 156);
  buf.write(h.type, 156, 1, "ascii");
  if (h.linkname) buf.write(h.linkname, 157, 100, "utf8");
  buf.write("ustar\0", 257, 6, "ascii");
  buf.write("00", 263, 2, "ascii");
  let sum = 0;
  for (const b of buf) sum += b;
  buf.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return buf;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len)
    len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** A reserved member whose content is written later with {@link PackageTarWriter.fill}. */
export interface Reservation {
  name: string;
  /** File offset of the content. */
  offset: number;
  /** Reserved content bytes. */
  size: number;
}

/** What a member write returns: content bytes and `sha256:<hex>` of the content. */
export interface MemberInfo {
  name: string;
  size: number;
  sha256: string;
}

/**
 * A member whose content another process appends to the file (see
 * {@link PackageTarWriter.beginAppended}): where its header slot and its content start.
 */
export interface AppendedMember {
  /** File offset of the member's header block. */
  headerAt: number;
  /** File offset of the content. */
  start: number;
  /** Content bytes, known once {@link PackageTarWriter.endAppended} returned. */
  size?: number;
}

/** Writes a tar file member by member; see the module docs. */
export class PackageTarWriter {
  private pos = 0;
  private constructor(
    private readonly fh: FileHandle,
    private readonly mtime: number,
    /** The file's path (for {@link addAppended}'s second descriptor). */
    readonly path: string,
  ) {}

  /**
   * Opens (creates or truncates) `path` for writing, mode 0600 until {@link chmod}.
   * `mtime` is in seconds since the epoch.
   */
  static async open(path: string, mtime = Math.floor(Date.now() / 1000)): Promise<PackageTarWriter> {
    return new PackageTarWriter(await open(path, "w", 0o600), mtime, path);
  }

  /**
   * Writes into an empty file already open as `fh` (e.g. an atomic write's temp file re-opened
   * through `/proc/self/fd/N`, which is then also `path`). The caller closes nothing: {@link
   * finish} and {@link abort} close `fh`. Throws RangeError when the file is not empty.
   */
  static async attach(
    fh: FileHandle,
    path: string,
    mtime = Math.floor(Date.now() / 1000),
  ): Promise<PackageTarWriter> {
    if ((await fh.stat()).size !== 0) throw new RangeError(`${path}: the file is not empty`);
    return new PackageTarWriter(fh, mtime, path);
  }

  /** Bytes written so far. */
  get size(): number {
    return this.pos;
  }

  private async write(buf: Buffer, at = this.pos): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, at + done);
      done += bytesWritten;
    }
    if (at === this.pos) this.pos += buf.length;
  }

  /** Writes `bufs` (`total` bytes together) at the end with one writev when it takes them all. */
  private async writeMany(bufs: Buffer[], total: number): Promise<void> {
    if (bufs.length === 1) return this.write(bufs[0]);
    const { bytesWritten } = await this.fh.writev(bufs, this.pos);
    if (bytesWritten === total) {
      this.pos += total;
      return;
    }
    const rest = Buffer.concat(bufs).subarray(bytesWritten);
    this.pos += bytesWritten;
    await this.write(rest);
  }

  private async header(fields: HeaderFields): Promise<number> {
    if (
      Buffer.byteLength(fields.name) > 100 ||
      (fields.linkname && Buffer.byteLength(fields.linkname) > 100)
    ) {
      const pax = Buffer.from(
        paxRecord("path", fields.name) + (fields.linkname ? paxRecord("linkpath", fields.linkname) : ""),
      );
      await this.write(
        encodeHeader({ name: "PaxHeader", size: pax.length, mode: 0o644, type: "x", mtime: this.mtime }),
      );
      await this.write(Buffer.concat([pax, Buffer.alloc(padding(pax.length))]));
    }
    const at = this.pos;
    await this.write(encodeHeader(fields));
    return at;
  }

  /** Adds a member with `size` bytes reserved (zero-filled) and returns where to fill it in. */
  async reserve(name: string, size: number): Promise<Reservation> {
    await this.header({ name, size, mode: 0o644, type: "0", mtime: this.mtime });
    const offset = this.pos;
    await this.write(Buffer.alloc(size + padding(size)));
    return { name, offset, size };
  }

  /** Writes `content` into a reservation, padded with `pad` bytes (default spaces). Returns its info. */
  async fill(r: Reservation, content: Buffer, pad = 0x20): Promise<MemberInfo> {
    if (content.length > r.size)
      throw new RangeError(`${r.name}: ${content.length} bytes exceed the ${r.size} reserved`);
    const full = Buffer.alloc(r.size, pad);
    content.copy(full);
    await this.write(full, r.offset);
    return {
      name: r.name,
      size: r.size,
      sha256: `sha256:${createHash("sha256").update(full).digest("hex")}`,
    };
  }

  /** Adds a regular file from a buffer. `mode` defaults to 0644. */
  async addBuffer(name: string, content: Buffer, mode = 0o644): Promise<MemberInfo> {
    await this.header({ name, size: content.length, mode, type: "0", mtime: this.mtime });
    await this.write(Buffer.concat([content, Buffer.alloc(padding(content.length))]));
    return {
      name,
      size: content.length,
      sha256: `sha256:${createHash("sha256").update(content).digest("hex")}`,
    };
  }

  /** Adds a directory member (`name` without trailing slash). */
  async addDirectory(name: string, mode = 0o755): Promise<void> {
    await this.header({ name: `${name}/`, size: 0, mode, type: "5", mtime: this.mtime });
  }

  /** Adds a symlink; its checksum is the sha256 of the target text. */
  async addSymlink(name: string, target: string): Promise<MemberInfo> {
    await this.header({ name, size: 0, mode: 0o777, type: "2", linkname: target, mtime: this.mtime });
    return { name, size: 0, sha256: `sha256:${createHash("sha256").update(target).digest("hex")}` };
  }

  /**
   * Streams `input` into a new member of yet unknown size: the header is rewritten with the real
   * size when the stream ends. Never buffers more than one chunk.
   * @param onBytes called with each chunk's length (progress)
   */
  async addStream(
    name: string,
    input: Readable,
    mode = 0o644,
    onBytes?: (n: number) => void,
  ): Promise<MemberInfo> {
    const headerAt = await this.header({ name, size: 0, mode, type: "0", mtime: this.mtime });
    const hash = createHash("sha256");
    let size = 0;
    const sink = new Writable({
      highWaterMark: 4 * 1024 * 1024,
      writev: (chunks, cb) => {
        // one vectored write, no concatenation copy
        const bufs = chunks.map((c) => c.chunk as Buffer);
        let n = 0;
        for (const b of bufs) {
          hash.update(b);
          n += b.length;
        }
        size += n;
        onBytes?.(n);
        this.writeMany(bufs, n).then(() => cb(), cb);
      },
    });
    await pipeline(input, sink);
    await this.write(Buffer.alloc(padding(size)));
    await this.write(encodeHeader({ name, size, mode, type: "0", mtime: this.mtime }), headerAt);
    return { name, size, sha256: `sha256:${hash.digest("hex")}` };
  }

  /**
   * Adds a member whose content another writer appends to the file: `produce` gets a second
   * descriptor of the file opened with O_APPEND (hand it to a child process as its stdout, say)
   * and the file offset where the content starts, appends the content, and resolves with its
   * `sha256:<hex>`; the member's size is what the file grew by. The descriptor is closed
   * afterwards; nothing else may write to the file meanwhile. On failure the caller aborts the
   * whole file (the member is left unfinished).
   */
  async addAppended(
    name: string,
    produce: (fd: number, offset: number) => Promise<string>,
    mode = 0o644,
  ): Promise<MemberInfo> {
    const headerAt = await this.header({ name, size: 0, mode, type: "0", mtime: this.mtime });
    const start = this.pos;
    if ((await this.fh.stat()).size !== start)
      throw new RangeError(`${name}: the file is not ${start} bytes long before its content is appended`);
    const appender = await open(this.path, constants.O_WRONLY | constants.O_APPEND);
    let sha256: string;
    try {
      sha256 = await produce(appender.fd, start);
    } finally {
      await appender.close();
    }
    const size = (await this.fh.stat()).size - start;
    if (size < 0) throw new RangeError(`${name}: the file shrank while its content was appended`);
    this.pos = start + size;
    await this.write(Buffer.alloc(padding(size)));
    await this.write(encodeHeader({ name, size, mode, type: "0", mtime: this.mtime }), headerAt);
    return { name, size, sha256 };
  }

  /**
   * Starts a member whose content another process appends (through a descriptor of the file
   * opened with O_APPEND) after this returns: writes a placeholder header block. Nothing else may
   * write to the file until {@link endAppended}. The header gets its name and size from
   * {@link nameAppended}. Throws RangeError when the file is not as long as this writer wrote.
   */
  async beginAppended(): Promise<AppendedMember> {
    const headerAt = this.pos;
    if ((await this.fh.stat()).size !== headerAt)
      throw new RangeError(`${this.path}: the file is not ${headerAt} bytes long before a member`);
    await this.write(Buffer.alloc(BLOCK));
    return { headerAt, start: this.pos };
  }

  /**
   * Ends a member begun with {@link beginAppended}: its size is what the file grew by; pads it
   * to the block size. Returns `m` with `size` set (bytes). Throws RangeError if the file shrank.
   */
  async endAppended(m: AppendedMember): Promise<AppendedMember> {
    const size = (await this.fh.stat()).size - m.start;
    if (size < 0) throw new RangeError(`${this.path}: the file shrank while a member was appended`);
    this.pos = m.start + size;
    await this.write(Buffer.alloc(padding(size)));
    m.size = size;
    return m;
  }

  /**
   * Writes the header of an ended appended member: regular file `name` (at most 100 bytes: the
   * slot has room for one header block only), `mode`. Throws RangeError otherwise.
   */
  async nameAppended(m: AppendedMember, name: string, mode = 0o644): Promise<void> {
    if (m.size === undefined) throw new RangeError(`${name}: the member has not ended`);
    if (Buffer.byteLength(name) > 100) throw new RangeError(`${name}: longer than 100 bytes`);
    await this.write(encodeHeader({ name, size: m.size, mode, type: "0", mtime: this.mtime }), m.headerAt);
  }

  /**
   * Starts writing what the file holds so far to disk (fdatasync) without waiting, so that
   * {@link finish}'s fsync has less left to do; {@link finish} and {@link abort} wait for it.
   */
  syncSoFar(): void {
    const p = this.fh.datasync().catch(() => undefined);
    this.syncing = Promise.all([this.syncing, p]).then(() => undefined);
  }
  private syncing: Promise<void> = Promise.resolve();

  /** Sets the file's permission bits (e.g. 0600 for a package holding env files). */
  async chmod(mode: number): Promise<void> {
    await this.fh.chmod(mode);
  }

  /** Writes the end-of-archive blocks, fsyncs and closes the file. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(BLOCK * 2));
    await this.syncing;
    await this.fh.sync();
    await this.fh.close();
  }

  /** Closes the file without finishing it (the caller removes it). */
  async abort(): Promise<void> {
    await this.syncing;
    await this.fh.close().catch(() => {});
  }
}
