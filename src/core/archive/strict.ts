/**
 * A strict streaming tar reader for untrusted archives (environment packages and the volume tars
 * inside them). It reads POSIX.1-1988 ustar and POSIX.1-2001 pax headers (`x` extended headers
 * bounded in size, `g` global headers without path/size overrides) and the GNU `L`/`K` long
 * names, and refuses anything ambiguous instead of guessing:
 *
 * - every header's checksum is verified (unsigned sum, or the historic signed sum);
 * - numeric fields are parsed strictly: octal digits with leading spaces and trailing spaces or
 *   NULs only, or GNU base-256 (positive values up to 2^53); anything else is refused;
 * - the magic must be `ustar\0` + `00` (POSIX) or `ustar  \0` (GNU);
 * - a directory, symlink, hardlink, device or fifo with a non-zero size is refused (a type
 *   changed while the size was kept);
 * - sparse files, multi-volume and label entries and unknown types are refused;
 * - after the end-of-archive (two zero blocks) only zero bytes may follow; a single zero block
 *   followed by data, a header cut short or a body cut short are refused.
 *
 * Errors are DockpackErrors with `details.offset` (byte offset of the header in the stream):
 * `ARCHIVE_TRUNCATED`, `ARCHIVE_HEADER_INVALID`, `ARCHIVE_TRAILING_DATA`,
 * `ARCHIVE_TYPE_SIZE_MISMATCH`, `ARCHIVE_UNSUPPORTED_TYPE`, `ARCHIVE_PAX_INVALID`.
 */
import { Readable } from "node:stream";
import { DockpackError } from "../errors.js";
import { chunksOf } from "../stream.js";

const BLOCK = 512;
/** Largest pax extended header or GNU long name accepted (bytes). */
const MAX_EXTENSION = 1024 * 1024;

/** Entry types the strict reader yields. */
export type StrictEntryType =
  | "file"
  | "link"
  | "symlink"
  | "character-device"
  | "block-device"
  | "directory"
  | "fifo";

/** One tar entry as {@link readTarStrict} decodes it (pax and GNU long names applied). */
export interface StrictTarEntry {
  /** Path as stored (pax `path` or GNU long name applied), not normalised. */
  name: string;
  type: StrictEntryType;
  /** Content bytes (0 for everything but files). */
  size: number;
  /** Permission bits incl. setuid/setgid/sticky (`& 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch (fractional with a pax `mtime`). */
  mtime: number;
  /** Symlink target or hardlink path ("" otherwise). */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Pax records of this entry other than the ones applied above (e.g. `SCHILY.xattr.user.x`). */
  pax: Record<string, string>;
  /** Byte offset of the entry's first header (extension headers included) in the stream. */
  offset: number;
  /** Byte offset of the entry's first content byte in the stream (its `size` bytes follow). */
  dataOffset: number;
}

/** Result of {@link readTarStrict}. */
export interface StrictTarResult {
  entries: number;
  /** Byte offset where the end-of-archive blocks start. */
  end: number;
  /** Bytes read in total (archive + zero padding after it). */
  total: number;
}

function fail(code: string, message: string, offset: number, cause?: unknown): DockpackError {
  return new DockpackError(code, `${message} (at byte ${offset})`, {
    hint: "The archive is damaged or was crafted; nothing from it should be trusted.",
    details: { offset },
    ...(cause ? { cause } : {}),
  });
}

/** Pulls exact byte counts out of a Readable. */
class Pull {
  private chunks: Buffer[] = [];
  private have = 0;
  private done = false;
  private readonly it: AsyncIterator<unknown>;
  /** Bytes handed out so far. */
  offset = 0;

  constructor(input: Readable) {
    // chunk by chunk (the stream's own iterator concatenates everything buffered into a new buffer)
    this.it = chunksOf(input);
  }

  private async more(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    if (b.length) {
      this.chunks.push(b);
      this.have += b.length;
    }
    return true;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= n;
    this.offset += n;
    return out;
  }

  /** Exactly `n` bytes, or fewer only at the end of the input. */
  async read(n: number): Promise<Buffer> {
    while (this.have < n && (await this.more()));
    return this.take(Math.min(n, this.have));
  }

  /** Between 1 and `n` bytes, or an empty buffer at the end of the input. */
  async some(n: number): Promise<Buffer> {
    while (this.have === 0 && (await this.more()));
    if (this.have === 0) return Buffer.alloc(0);
    return this.take(Math.min(n, this.chunks[0].length));
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/** Parses a numeric header field strictly; throws `ARCHIVE_HEADER_INVALID`. */
export function parseTarField(field: Buffer, what: string, offset: number, emptyIsZero = true): number {
  if (field[0] & 0x80) {
    if (field[0] !== 0x80)
      throw fail("ARCHIVE_HEADER_INVALID", `tar header field ${what} is a negative base-256 number`, offset);
    let v = 0n;
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i]);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw fail("ARCHIVE_HEADER_INVALID", `tar header field ${what} is too large`, offset);
    return Number(v);
  }
  const s = field.toString("latin1");
  const m = /^ *([0-7]*)[ \0]*$/.exec(s);
  if (!m) throw fail("ARCHIVE_HEADER_INVALID", `tar header field ${what} is not an octal number`, offset);
  if (m[1] === "") {
    if (emptyIsZero) return 0;
    throw fail("ARCHIVE_HEADER_INVALID", `tar header field ${what} is empty`, offset);
  }
  const v = Number.parseInt(m[1], 8);
  if (!Number.isSafeInteger(v))
    throw fail("ARCHIVE_HEADER_INVALID", `tar header field ${what} is too large`, offset);
  return v;
}

function cstring(buf: Buffer, start: number, end: number): string {
  const nul = buf.indexOf(0, start);
  return buf.toString("utf8", start, nul >= start && nul < end ? nul : end);
}

const TYPES: Record<string, StrictEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "link",
  "2": "symlink",
  "3": "character-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
};

interface RawHeader {
  name: string;
  typeflag: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function decodeHeader(b: Buffer, offset: number): RawHeader {
  const stored = parseTarField(b.subarray(148, 156), "chksum", offset, false);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed)
    throw fail("ARCHIVE_HEADER_INVALID", "tar header checksum does not match", offset);
  const magic = b.toString("latin1", 257, 265);
  const posix = magic === "ustar\x0000";
  if (!posix && magic !== "ustar  \0")
    throw fail("ARCHIVE_HEADER_INVALID", "tar header has no ustar magic", offset);
  let name = cstring(b, 0, 100);
  if (posix) {
    const prefix = cstring(b, 345, 500);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    name,
    typeflag: String.fromCharCode(b[156]),
    mode: parseTarField(b.subarray(100, 108), "mode", offset) & 0o7777,
    uid: parseTarField(b.subarray(108, 116), "uid", offset),
    gid: parseTarField(b.subarray(116, 124), "gid", offset),
    size: parseTarField(b.subarray(124, 136), "size", offset, false),
    mtime: parseTarField(b.subarray(136, 148), "mtime", offset),
    linkname: cstring(b, 157, 257),
    uname: cstring(b, 265, 297),
    gname: cstring(b, 297, 329),
    devmajor: parseTarField(b.subarray(329, 337), "devmajor", offset),
    devminor: parseTarField(b.subarray(337, 345), "devminor", offset),
  };
}

/** Parses pax records (`<len> <key>=<value>\n`) strictly. */
function parsePax(buf: Buffer, offset: number): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < buf.length) {
    const space = buf.indexOf(0x20, at);
    const lenText = space > at ? buf.toString("latin1", at, space) : "";
    if (!/^[1-9][0-9]{0,7}$/.test(lenText))
      throw fail("ARCHIVE_PAX_INVALID", "pax record length is not a decimal number", offset);
    const len = Number(lenText);
    if (at + len > buf.length || buf[at + len - 1] !== 0x0a)
      throw fail("ARCHIVE_PAX_INVALID", "pax record does not end where its length says", offset);
    const record = buf.toString("utf8", space + 1, at + len - 1);
    const eq = record.indexOf("=");
    if (eq <= 0) throw fail("ARCHIVE_PAX_INVALID", "pax record has no key", offset);
    const key = record.slice(0, eq);
    if (Object.hasOwn(out, key))
      throw fail("ARCHIVE_PAX_INVALID", `pax record '${key}' appears twice`, offset);
    out[key] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

function paxInteger(value: string, key: string, offset: number): number {
  if (!/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw fail("ARCHIVE_PAX_INVALID", `pax record '${key}' is not a decimal integer`, offset);
  return Number(value);
}

/** What a non-zero header block is: an extension header whose data follow, or an entry. */
type HeaderStep = { extension: number } | { entry: StrictTarEntry };

/**
 * The header logic of the strict reader, shared by {@link readTarStrict} and
 * {@link StrictTarScanner}: header blocks and extension data are fed in order; pax records and
 * GNU long names are held until the entry they apply to, which is returned fully checked.
 */
class StrictHeaders {
  private pax: Record<string, string> | null = null;
  private longName: string | null = null;
  private longLink: string | null = null;
  /** Offset of the first header of the entry being read (extension headers included), or -1. */
  private start = -1;
  /** The extension header whose data {@link extension} takes next. */
  private ext: { type: string; at: number } | null = null;

  /** A zero block at `at`; refused while an extension header waits for its entry. */
  zero(at: number): void {
    if (this.start >= 0)
      throw fail("ARCHIVE_HEADER_INVALID", "an extension header is not followed by an entry", at);
  }

  /**
   * The non-zero header block at `at`: an extension header (its `extension` data bytes, padding
   * excluded, go to {@link extension} next) or the checked entry.
   */
  header(block: Buffer, at: number): HeaderStep {
    const h = decodeHeader(block, at);
    if (this.start < 0) this.start = at;
    const ext = h.typeflag;
    if (ext === "x" || ext === "g" || ext === "L" || ext === "K") {
      if (h.size > MAX_EXTENSION)
        throw fail(
          "ARCHIVE_PAX_INVALID",
          `extension header of ${h.size} bytes is over the ${MAX_EXTENSION} allowed`,
          at,
        );
      this.ext = { type: ext, at };
      return { extension: h.size };
    }
    const type = TYPES[ext];
    if (!type)
      throw fail(
        "ARCHIVE_UNSUPPORTED_TYPE",
        `tar entry '${h.name}' has the unsupported type flag '${ext === "\0" ? "\\0" : ext}'`,
        at,
      );
    const rest: Record<string, string> = {};
    let size = h.size;
    let uid = h.uid;
    let gid = h.gid;
    let mtime = h.mtime;
    let name = this.longName ?? h.name;
    let linkname = this.longLink ?? h.linkname;
    let uname = h.uname;
    let gname = h.gname;
    for (const [k, v] of Object.entries(this.pax ?? {})) {
      if (k === "path") name = v;
      else if (k === "linkpath") linkname = v;
      else if (k === "size") size = paxInteger(v, k, at);
      else if (k === "uid") uid = paxInteger(v, k, at);
      else if (k === "gid") gid = paxInteger(v, k, at);
      else if (k === "uname") uname = v;
      else if (k === "gname") gname = v;
      else if (k === "mtime") {
        if (!/^-?[0-9]{1,16}(\.[0-9]{1,18})?$/.test(v))
          throw fail("ARCHIVE_PAX_INVALID", "pax record 'mtime' is not a decimal number", at);
        mtime = Number(v);
      } else if (k !== "atime" && k !== "ctime") rest[k] = v;
    }
    this.pax = null;
    this.longName = null;
    this.longLink = null;
    if (type !== "file" && size !== 0)
      throw fail(
        "ARCHIVE_TYPE_SIZE_MISMATCH",
        `tar entry '${name}' is a ${type} but declares ${size} content bytes`,
        at,
      );
    if (name.includes("\0")) throw fail("ARCHIVE_HEADER_INVALID", "an entry name contains a NUL byte", at);
    const entry: StrictTarEntry = {
      name,
      type,
      size,
      mode: h.mode,
      uid,
      gid,
      uname,
      gname,
      mtime,
      linkname,
      devmajor: h.devmajor,
      devminor: h.devminor,
      pax: rest,
      offset: this.start,
      dataOffset: at + BLOCK,
    };
    this.start = -1;
    return { entry };
  }

  /** The data of the extension header {@link header} returned last (padding excluded). */
  extension(data: Buffer): void {
    const { type: ext, at } = this.ext as { type: string; at: number };
    this.ext = null;
    if (ext === "g") {
      const g = parsePax(data, at);
      for (const k of ["path", "linkpath", "size"])
        if (k in g) throw fail("ARCHIVE_PAX_INVALID", `a global pax header sets '${k}'`, at);
      this.start = -1;
      return;
    }
    if (ext === "x") {
      if (this.pax) throw fail("ARCHIVE_PAX_INVALID", "two pax headers precede one entry", at);
      this.pax = parsePax(data, at);
      for (const k of Object.keys(this.pax))
        if (k.startsWith("GNU.sparse"))
          throw fail("ARCHIVE_UNSUPPORTED_TYPE", "sparse files are not supported", at);
      return;
    }
    const text = cstring(data, 0, data.length);
    if (ext === "L") {
      if (this.longName !== null)
        throw fail("ARCHIVE_HEADER_INVALID", "two GNU long names precede one entry", at);
      this.longName = text;
    } else {
      if (this.longLink !== null)
        throw fail("ARCHIVE_HEADER_INVALID", "two GNU long link names precede one entry", at);
      this.longLink = text;
    }
  }
}

const padOf = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

/** Whether every byte of `b` from `from` on is zero. */
function allZero(b: Buffer, from = 0): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Reads the tar stream `input` strictly (see the module docs) and calls `onEntry(entry, body)`
 * for each entry in order, waiting for the returned promise. `body` streams exactly the entry's
 * `size` bytes; what `onEntry` leaves unread is skipped. A truncated body makes `body` fail
 * with `ARCHIVE_TRUNCATED`.
 * @returns entries read, the offset of the end-of-archive and the total bytes read
 * @throws DockpackError with the codes listed in the module docs; a rejection of `onEntry` and an
 *   error of `input` are rethrown as they are. `input` is destroyed on any failure.
 */
export async function readTarStrict(
  input: Readable,
  onEntry: (entry: StrictTarEntry, body: Readable) => Promise<void>,
): Promise<StrictTarResult> {
  const src = new Pull(input);
  const headers = new StrictHeaders();
  let entries = 0;
  try {
    for (;;) {
      const at = src.offset;
      const block = await src.read(BLOCK);
      if (block.length < BLOCK) {
        if (block.length === 0 && at === 0) throw fail("ARCHIVE_TRUNCATED", "the archive is empty", at);
        throw fail(
          "ARCHIVE_TRUNCATED",
          "the archive ends inside a header or without end-of-archive blocks",
          at,
        );
      }
      if (allZero(block)) {
        headers.zero(at);
        const second = await src.read(BLOCK);
        if (second.length < BLOCK)
          throw fail("ARCHIVE_TRUNCATED", "the archive ends after one zero block", at);
        if (!allZero(second))
          throw fail("ARCHIVE_TRAILING_DATA", "a single zero block is followed by data", at);
        for (;;) {
          const rest = await src.some(64 * 1024);
          if (rest.length === 0) break;
          if (!allZero(rest))
            throw fail(
              "ARCHIVE_TRAILING_DATA",
              "data follows the end-of-archive blocks",
              src.offset - rest.length,
            );
        }
        return { entries, end: at, total: src.offset };
      }
      const step = headers.header(block, at);
      if ("extension" in step) {
        const data = await src.read(step.extension);
        if (data.length < step.extension)
          throw fail("ARCHIVE_TRUNCATED", "the archive ends inside an extension header", at);
        const pad = padOf(step.extension);
        if ((await src.read(pad)).length < pad)
          throw fail("ARCHIVE_TRUNCATED", "the archive ends inside padding", at);
        headers.extension(data);
        continue;
      }
      entries++;
      await deliver(src, step.entry, onEntry);
    }
  } catch (err) {
    input.destroy();
    await src.close().catch(() => undefined);
    throw err;
  }
}

/**
 * The strict reader as a synchronous scanner, for a caller that holds the bytes itself (import's
 * one-pass volume restore hands every chunk to the scanner before any byte of it goes on): the
 * same rules and error codes as {@link readTarStrict}, without body streams. {@link write} takes
 * the tar's bytes in order and throws at the first problem (nothing of that chunk should be used);
 * `onEntry` is called synchronously with each entry as soon as its header was read and may throw
 * to refuse it. It keeps no reference to a chunk after {@link write} returns.
 */
export class StrictTarScanner {
  private readonly headers = new StrictHeaders();
  /** Bytes taken so far. */
  private offset = 0;
  private mode: "header" | "extension" | "content" | "zero" | "trailing" = "header";
  /** The unit being collected (a header block, an extension's data with padding). */
  private unit = Buffer.alloc(BLOCK);
  private unitAt = 0;
  private have = 0;
  private want = BLOCK;
  /** Extension data bytes (padding excluded) of the unit being collected. */
  private extSize = 0;
  /** Content and padding bytes still to pass, and the entry they belong to. */
  private skip = 0;
  private current: StrictTarEntry | null = null;
  private endAt = -1;
  private entries = 0;

  constructor(private readonly onEntry: (entry: StrictTarEntry) => void) {}

  /** Scans the next bytes (see the class docs). @throws DockpackError as readTarStrict */
  write(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.mode === "content") {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        this.offset += n;
        i += n;
        if (this.skip === 0) this.mode = "header";
        continue;
      }
      if (this.mode === "trailing") {
        for (let k = i; k < chunk.length; k++)
          if (chunk[k] !== 0)
            throw fail(
              "ARCHIVE_TRAILING_DATA",
              "data follows the end-of-archive blocks",
              this.offset + k - i,
            );
        this.offset += chunk.length - i;
        return;
      }
      if (this.have === 0) this.unitAt = this.offset;
      const n = Math.min(this.want - this.have, chunk.length - i);
      chunk.copy(this.unit, this.have, i, i + n);
      this.have += n;
      this.offset += n;
      i += n;
      if (this.have === this.want) this.complete();
    }
  }

  /** A collected unit: a header block, the second zero block, or an extension's data. */
  private complete(): void {
    const at = this.unitAt;
    const unit = this.unit.subarray(0, this.want);
    this.have = 0;
    if (this.mode === "extension") {
      this.headers.extension(Buffer.from(unit.subarray(0, this.extSize)));
      this.setUnit(BLOCK, "header");
      return;
    }
    if (this.mode === "zero") {
      if (!allZero(unit))
        throw fail("ARCHIVE_TRAILING_DATA", "a single zero block is followed by data", this.endAt);
      this.mode = "trailing";
      return;
    }
    if (allZero(unit)) {
      this.headers.zero(at);
      this.endAt = at;
      this.mode = "zero";
      return;
    }
    const step = this.headers.header(unit, at);
    if ("extension" in step) {
      this.extSize = step.extension;
      const total = step.extension + padOf(step.extension);
      if (total > 0) this.setUnit(total, "extension");
      else this.headers.extension(Buffer.alloc(0));
      return;
    }
    this.entries++;
    this.current = step.entry;
    this.onEntry(step.entry);
    this.skip = step.entry.size + padOf(step.entry.size);
    if (this.skip > 0) this.mode = "content";
  }

  private setUnit(size: number, mode: "header" | "extension"): void {
    if (this.unit.length < size) this.unit = Buffer.alloc(size);
    else if (size === BLOCK && this.unit.length > BLOCK) this.unit = Buffer.alloc(BLOCK);
    this.want = size;
    this.mode = mode;
  }

  /**
   * The end of the input: the archive must have ended with its end-of-archive blocks.
   * @returns as readTarStrict
   * @throws DockpackError `ARCHIVE_TRUNCATED`
   */
  end(): StrictTarResult {
    switch (this.mode) {
      case "trailing":
        return { entries: this.entries, end: this.endAt, total: this.offset };
      case "zero":
        throw fail("ARCHIVE_TRUNCATED", "the archive ends after one zero block", this.endAt);
      case "content":
        throw fail(
          "ARCHIVE_TRUNCATED",
          `the archive ends inside the content of '${this.current?.name}'`,
          this.current?.offset ?? this.offset,
        );
      case "extension":
        throw fail("ARCHIVE_TRUNCATED", "the archive ends inside an extension header", this.unitAt - BLOCK);
      default:
        if (this.offset === 0) throw fail("ARCHIVE_TRUNCATED", "the archive is empty", 0);
        throw fail(
          "ARCHIVE_TRUNCATED",
          "the archive ends inside a header or without end-of-archive blocks",
          this.unitAt,
        );
    }
  }
}

async function deliver(
  src: Pull,
  entry: StrictTarEntry,
  onEntry: (entry: StrictTarEntry, body: Readable) => Promise<void>,
): Promise<void> {
  let remaining = entry.size;
  const inFlight: { pending: Promise<void> | null } = { pending: null };
  let detached = false;
  const truncated = () =>
    fail("ARCHIVE_TRUNCATED", `the archive ends inside the content of '${entry.name}'`, entry.offset);
  const body = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      if (remaining === 0) {
        this.push(null);
        return;
      }
      inFlight.pending = src.some(Math.min(remaining, 1024 * 1024)).then(
        (chunk) => {
          inFlight.pending = null;
          if (chunk.length === 0) {
            if (!detached) body.destroy(truncated());
            return;
          }
          remaining -= chunk.length;
          if (detached) return;
          this.push(chunk);
          if (remaining === 0) this.push(null);
        },
        (err) => {
          inFlight.pending = null;
          if (!detached) body.destroy(err);
        },
      );
    },
  });
  // A consumer that stopped reading must not crash the process with the archive's error.
  body.on("error", () => undefined);
  try {
    await onEntry(entry, body);
  } finally {
    detached = true;
    if (inFlight.pending) await inFlight.pending;
    if (!body.destroyed) body.destroy();
  }
  while (remaining > 0) {
    const chunk = await src.some(Math.min(remaining, 1024 * 1024));
    if (chunk.length === 0) throw truncated();
    remaining -= chunk.length;
  }
  const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
  if ((await src.read(pad)).length < pad) throw truncated();
}
