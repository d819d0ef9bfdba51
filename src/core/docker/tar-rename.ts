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
 * Returns a transform that rewrites the tar streamed through it as the module docs say.
 * @param rename maps an entry name (or hardlink target) as stored to the name to write
 */
export function renameTarEntries(rename: (name: string) => string): Transform {
  let buf: Buffer[] = [];
  let have = 0;
  /** Content bytes (with padding) still to pass through. */
  let passing = 0;
  /** Bytes of an extension header's data (with padding) still to collect. */
  let collecting = 0;
  let collectingHeader: Buffer | null = null;
  let pending: Pending[] = [];
  let ended = false;

  const take = (n: number): Buffer => {
    const all = buf.length === 1 ? buf[0] : Buffer.concat(buf, have);
    const out = all.subarray(0, n);
    buf = n < all.length ? [all.subarray(n)] : [];
    have -= n;
    return out;
  };

  const emitEntry = (t: Transform, header: Buffer): void => {
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
      pending.some(
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
      const x = pending.find((p) => p.type === "x");
      const records = Buffer.from(extra.map(([k, v]) => paxRecord(k, v)).join(""));
      if (x) x.data = Buffer.concat([x.data, records]);
      else pending.push({ header: paxHeaderBlock(), type: "x", data: records });
    }
    for (const p of pending) {
      if (p.type === "x") {
        const records = parsePax(p.data).map(([k, v]): [string, string] => [
          k,
          k === "path" || (k === "linkpath" && hardlink) ? rename(v) : v,
        ]);
        const data = Buffer.from(records.map(([k, v]) => paxRecord(k, v)).join(""));
        const ph = Buffer.from(p.header);
        ph.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124, "ascii");
        writeChecksum(ph);
        t.push(ph);
        t.push(Buffer.concat([data, Buffer.alloc(padTo(data.length))]));
      } else {
        const text = cstring(p.data, 0, p.data.length);
        const value = p.type === "L" || hardlink ? rename(text) : text;
        const data = Buffer.from(`${value}\0`);
        const ph = Buffer.from(p.header);
        ph.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124, "ascii");
        writeChecksum(ph);
        t.push(ph);
        t.push(Buffer.concat([data, Buffer.alloc(padTo(data.length))]));
      }
    }
    pending = [];
    writeChecksum(h);
    t.push(h);
  };

  return new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      let c = chunk;
      while (c.length > 0) {
        if (ended) {
          this.push(c);
          break;
        }
        if (passing > 0) {
          const n = Math.min(passing, c.length);
          this.push(c.subarray(0, n));
          passing -= n;
          c = c.subarray(n);
          continue;
        }
        const need = collecting > 0 ? collecting : BLOCK;
        const n = Math.min(need - have, c.length);
        buf.push(c.subarray(0, n));
        have += n;
        c = c.subarray(n);
        if (have < need) break;
        const block = take(need);
        if (collectingHeader) {
          const size = octal(collectingHeader, 124, 12);
          pending.push({
            header: collectingHeader,
            type: String.fromCharCode(collectingHeader[156]),
            data: Buffer.from(block.subarray(0, size)),
          });
          collectingHeader = null;
          collecting = 0;
          continue;
        }
        if (block.every((x) => x === 0)) {
          // end-of-archive: everything after it passes as it is
          for (const p of pending)
            this.push(Buffer.concat([p.header, p.data, Buffer.alloc(padTo(p.data.length))]));
          pending = [];
          ended = true;
          this.push(Buffer.from(block));
          continue;
        }
        const type = String.fromCharCode(block[156]);
        const size = octal(block, 124, 12);
        if (type === "x" || type === "L" || type === "K") {
          collectingHeader = Buffer.from(block);
          collecting = size + padTo(size);
          if (collecting === 0) {
            pending.push({ header: collectingHeader, type, data: Buffer.alloc(0) });
            collectingHeader = null;
          }
          continue;
        }
        if (type === "g") {
          this.push(Buffer.from(block));
          passing = size + padTo(size);
          continue;
        }
        // a pax `size` record overrides the header's (files over 8 GiB)
        let content = size;
        for (const p of pending)
          if (p.type === "x") for (const [k, v] of parsePax(p.data)) if (k === "size") content = Number(v);
        emitEntry(this, block);
        // only regular files (and contiguous/old-style ones) carry content
        passing = type === "0" || type === "\0" || type === "7" ? content + padTo(content) : 0;
      }
      cb();
    },
    flush(cb) {
      if (have > 0) this.push(take(have));
      cb();
    },
  });
}
