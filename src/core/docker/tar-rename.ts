/**
 * A streaming tar rewriter for the engine's archive downloads: every entry name (and hardlink
 * target) is passed through a rename function, header checksums are recomputed, and file
 * contents pass through untouched (sliced, never copied or re-encoded). Handles ustar name and
 * prefix fields, pax extended headers (`path`, `linkpath`; other records kept) and GNU long
 * names (`L`/`K`). This replaces an extract + re-pack (tar-stream), whose per-chunk copies and
 * garbage cost more CPU than the compressor behind it. The input comes from the local engine
 * (`GET /containers/{id}/archive`); it is not a validator (import reads with readTarStrict).
 */
import { Transform, type TransformCallback } from "node:stream";

const BLOCK = 512;

function cstring(b: Buffer, at: number, len: number): string {
  const end = b.indexOf(0, at);
  return b.toString("utf8", at, end < 0 || end > at + len ? at + len : end);
}

function octal(b: Buffer, at: number, len: number): number {
  if (b[at] & 0x80) {
    // base-256 (GNU) for sizes over 8 GiB
    let n = 0;
    for (let i = at + 1; i < at + len; i++) n = n * 256 + b[i];
    return n;
  }
  const s = cstring(b, at, len).trim();
  return s ? Number.parseInt(s, 8) : 0;
}

function writeChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
}

function setField(h: Buffer, at: number, len: number, value: string): boolean {
  const bytes = Buffer.from(value);
  if (bytes.length > len) return false;
  h.fill(0, at, at + len);
  bytes.copy(h, at);
  return true;
}

/** Pax records as `[key, value]` pairs, in order. */
function parsePax(data: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let at = 0;
  while (at < data.length) {
    const sp = data.indexOf(0x20, at);
    if (sp < 0) break;
    const len = Number(data.toString("ascii", at, sp));
    if (!Number.isInteger(len) || len <= 0 || at + len > data.length) break;
    const rec = data.toString("utf8", sp + 1, at + len - 1);
    const eq = rec.indexOf("=");
    out.push([rec.slice(0, eq), rec.slice(eq + 1)]);
    at += len;
  }
  return out;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len++;
  return `${len}${body}`;
}

const padTo = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

/** The first 100 bytes' worth of `s` (whole UTF-8 characters). */
function truncate(s: string): string {
  let out = s;
  while (Buffer.byteLength(out) > 100) out = out.slice(0, -1);
  return out;
}

/** A fresh pax `x` header block (size and checksum are set when it is written). */
function paxHeaderBlock(): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write("PaxHeader", 0, "ascii");
  h.write("0000644\0", 100, "ascii");
  h.write("0000000\0", 108, "ascii");
  h.write("0000000\0", 116, "ascii");
  h.write("00000000000\0", 136, "ascii");
  h.write("x", 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  return h;
}

/** An extension header (pax `x`, GNU `L`/`K`) held until the entry it applies to is read. */
interface Pending {
  header: Buffer;
  type: string;
  data: Buffer;
}

/**
 * The rewriter itself, synchronous: {@link write} takes the tar's bytes in order and calls `emit`
 * with the rewritten bytes before it returns — content as slices of the chunk written (use them
 * before the chunk's memory is reused), headers as fresh buffers. It keeps no reference to a
 * chunk after {@link write} returns (a header split across two chunks is copied), so a caller may
 * read into one reused buffer. {@link renameTarEntries} wraps it in a Transform.
 */
export class TarRenamer {
  private buf: Buffer[] = [];
  private have = 0;
  /** Content bytes (with padding) still to pass through. */
  private passing = 0;
  /** Bytes of an extension header's data (with padding) still to collect. */
  private collecting = 0;
  private collectingHeader: Buffer | null = null;
  private pending: Pending[] = [];
  private done = false;

  /**
   * @param rename maps an entry name (or hardlink target) as stored to the name to write
   * @param emit receives the rewritten tar, in order
   */
  constructor(
    private readonly rename: (name: string) => string,
    private readonly emit: (bytes: Buffer) => void,
  ) {}

  /** Whether the end-of-archive block has been read (everything after it passes as it is). */
  get ended(): boolean {
    return this.done;
  }

  private take(n: number): Buffer {
    const all = this.buf.length === 1 ? this.buf[0] : Buffer.concat(this.buf, this.have);
    const out = all.subarray(0, n);
    this.buf = n < all.length ? [all.subarray(n)] : [];
    this.have -= n;
    return out;
  }

  private emitEntry(header: Buffer): void {
    const rename = this.rename;
    const h = Buffer.from(header);
    const type = String.fromCharCode(h[156] || 0x30);
    const hardlink = type === "1";
    const isUstar = h.toString("ascii", 257, 262) === "ustar";
    const prefix = isUstar ? cstring(h, 345, 155) : "";
    const name = cstring(h, 0, 100);
    const full = prefix ? `${prefix}/${name}` : name;
    const renamed = rename(full);
    /** Records a fresh pax header must carry: names that fit no ustar field and no header covers. */
    const extra: Array<[string, string]> = [];
    const covered = (key: "path" | "linkpath") =>
      this.pending.some(
        (p) =>
          (p.type === "x" && parsePax(p.data).some(([k]) => k === key)) ||
          p.type === (key === "path" ? "L" : "K"),
      );
    if (renamed !== full) {
      if (!setField(h, 0, 100, renamed)) {
        // too long for the name field alone: split at a slash (ustar), else a pax path
        const cut = renamed.lastIndexOf("/", renamed.length - 2);
        if (isUstar && cut > 0 && cut <= 155 && Buffer.byteLength(renamed.slice(cut + 1)) <= 100) {
          setField(h, 345, 155, renamed.slice(0, cut));
          setField(h, 0, 100, renamed.slice(cut + 1));
        } else {
          setField(h, 0, 100, truncate(renamed));
          if (isUstar) h.fill(0, 345, 500);
          // as stored: the pending headers' records are renamed when written (below)
          if (!covered("path")) extra.push(["path", full]);
        }
      } else if (isUstar) h.fill(0, 345, 500);
    }
    if (hardlink) {
      const link = cstring(h, 157, 100);
      if (link && !setField(h, 157, 100, rename(link))) {
        setField(h, 157, 100, truncate(rename(link)));
        if (!covered("linkpath")) extra.push(["linkpath", link]);
      }
    }
    if (extra.length) {
      const x = this.pending.find((p) => p.type === "x");
      const records = Buffer.from(extra.map(([k, v]) => paxRecord(k, v)).join(""));
      if (x) x.data = Buffer.concat([x.data, records]);
      else this.pending.push({ header: paxHeaderBlock(), type: "x", data: records });
    }
    for (const p of this.pending) {
      let data: Buffer;
      if (p.type === "x") {
        const records = parsePax(p.data).map(([k, v]): [string, string] => [
          k,
          k === "path" || (k === "linkpath" && hardlink) ? rename(v) : v,
        ]);
        data = Buffer.from(records.map(([k, v]) => paxRecord(k, v)).join(""));
      } else {
        const text = cstring(p.data, 0, p.data.length);
        const value = p.type === "L" || hardlink ? rename(text) : text;
        data = Buffer.from(`${value}\0`);
      }
      const ph = Buffer.from(p.header);
      ph.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124, "ascii");
      writeChecksum(ph);
      this.emit(ph);
      this.emit(Buffer.concat([data, Buffer.alloc(padTo(data.length))]));
    }
    this.pending = [];
    writeChecksum(h);
    this.emit(h);
  }

  /** Rewrites the next bytes of the tar (see the class docs). */
  write(chunk: Buffer): void {
    let c = chunk;
    while (c.length > 0) {
      if (this.done) {
        this.emit(c);
        break;
      }
      if (this.passing > 0) {
        const n = Math.min(this.passing, c.length);
        this.emit(c.subarray(0, n));
        this.passing -= n;
        c = c.subarray(n);
        continue;
      }
      const need = this.collecting > 0 ? this.collecting : BLOCK;
      const n = Math.min(need - this.have, c.length);
      if (this.have + n < need) {
        // the rest arrives with a later chunk: keep a copy, never the caller's memory
        this.buf.push(Buffer.from(c.subarray(0, n)));
        this.have += n;
        break;
      }
      this.buf.push(c.subarray(0, n));
      this.have += n;
      c = c.subarray(n);
      const block = this.take(need);
      if (this.collectingHeader) {
        const size = octal(this.collectingHeader, 124, 12);
        this.pending.push({
          header: this.collectingHeader,
          type: String.fromCharCode(this.collectingHeader[156]),
          data: Buffer.from(block.subarray(0, size)),
        });
        this.collectingHeader = null;
        this.collecting = 0;
        continue;
      }
      if (block.every((x) => x === 0)) {
        // end-of-archive: everything after it passes as it is
        for (const p of this.pending)
          this.emit(Buffer.concat([p.header, p.data, Buffer.alloc(padTo(p.data.length))]));
        this.pending = [];
        this.done = true;
        this.emit(Buffer.from(block));
        continue;
      }
      const type = String.fromCharCode(block[156]);
      const size = octal(block, 124, 12);
      if (type === "x" || type === "L" || type === "K") {
        this.collectingHeader = Buffer.from(block);
        this.collecting = size + padTo(size);
        if (this.collecting === 0) {
          this.pending.push({ header: this.collectingHeader, type, data: Buffer.alloc(0) });
          this.collectingHeader = null;
        }
        continue;
      }
      if (type === "g") {
        this.emit(Buffer.from(block));
        this.passing = size + padTo(size);
        continue;
      }
      // a pax `size` record overrides the header's (files over 8 GiB)
      let content = size;
      for (const p of this.pending)
        if (p.type === "x") for (const [k, v] of parsePax(p.data)) if (k === "size") content = Number(v);
      this.emitEntry(block);
      // only regular files (and contiguous/old-style ones) carry content
      this.passing = type === "0" || type === "\0" || type === "7" ? content + padTo(content) : 0;
    }
  }

  /** Emits what is left over (an incomplete block of a truncated tar, as it is). */
  end(): void {
    if (this.have > 0) this.emit(this.take(this.have));
  }
}

/**
 * Returns a transform that rewrites the tar streamed through it as the module docs say.
 * @param rename maps an entry name (or hardlink target) as stored to the name to write
 */
export function renameTarEntries(rename: (name: string) => string): Transform {
  let renamer: TarRenamer;
  const t = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      renamer.write(chunk);
      cb();
    },
    flush(cb) {
      renamer.end();
      cb();
    },
  });
  renamer = new TarRenamer(rename, (b) => t.push(b));
  return t;
}
