/**
 * Test helper: crafts tar archives byte by byte (any type flag, pax records, GNU long names,
 * wrong sizes) and environment packages around them whose metadata.json and checksums.sha256
 * are *correct*, so that only the crafted content is hostile.
 */
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import type { PackageMetadata } from "../../src/env/package-format.js";

/** One raw tar entry. `type` is the typeflag character; `size` overrides the body length. */
export interface RawEntry {
  name: string;
  type?: string;
  body?: Buffer | string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  pax?: Record<string, string>;
  devmajor?: number;
  devminor?: number;
}

const octal = (buf: Buffer, v: number, off: number, len: number) =>
  buf.write(`${v.toString(8).padStart(len - 1, "0")}\0`, off, len, "latin1");

/** A ustar header block for `e` (checksum computed). */
export function header(e: RawEntry, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(e.name, 0, 100, "utf8");
  octal(b, e.mode ?? 0o644, 100, 8);
  octal(b, e.uid ?? 0, 108, 8);
  octal(b, e.gid ?? 0, 116, 8);
  octal(b, size, 124, 12);
  octal(b, 1_700_000_000, 136, 12);
  b.fill(0x20, 148, 156);
  b.write(e.type ?? "0", 156, 1, "latin1");
  if (e.linkname) b.write(e.linkname, 157, 100, "utf8");
  b.write("ustar\x0000", 257, 8, "latin1");
  octal(b, e.devmajor ?? 0, 329, 8);
  octal(b, e.devminor ?? 0, 337, 8);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
  return b;
}

/** Recomputes the checksum of the 512-byte header at `at` in `buf` (in place). */
export function fixChecksum(buf: Buffer, at: number): void {
  buf.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + 512; i++) sum += buf[i];
  buf.write(`${sum.toString(8).padStart(6, "0")}\0 `, at + 148, 8, "latin1");
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

function paxBody(records: Record<string, string>): Buffer {
  let out = "";
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len)
      len = String(len).length + Buffer.byteLength(body);
    out += `${len}${body}`;
  }
  return Buffer.from(out);
}

/** Encodes entries (with pax headers when `pax` is set) followed by the end-of-archive blocks. */
export function tarBytes(entries: RawEntry[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const p = paxBody(e.pax);
      parts.push(header({ name: "PaxHeader", type: "x" }, p.length), p, pad(p.length));
    }
    const body = typeof e.body === "string" ? Buffer.from(e.body) : (e.body ?? Buffer.alloc(0));
    parts.push(header(e, e.size ?? body.length), body, pad(body.length));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A volume of a crafted package: its uncompressed tar. */
export interface CraftVolume {
  name: string;
  tar: Buffer;
  codec?: "gzip" | "none";
  /** The tar size metadata.json declares (default: the real one). */
  declaredSize?: number;
}

/** What {@link craftPackage} puts in a package. */
export interface CraftSpec {
  /** Members under code/ and environment/ (names include the section); symlinks with type "2". */
  members: RawEntry[];
  volumes?: CraftVolume[];
  /** Extra metadata fields (override). */
  meta?: Partial<PackageMetadata>;
  /** Leave members out of checksums.sha256 (by name). */
  unlisted?: string[];
}

/** Writes a package with correct metadata and checksums around `spec`; returns its bytes. */
export async function craftPackage(path: string, spec: CraftSpec): Promise<Buffer> {
  const members: RawEntry[] = [...spec.members];
  const volumes: PackageMetadata["volumes"] = [];
  for (const v of spec.volumes ?? []) {
    const codec = v.codec ?? "gzip";
    const data = codec === "gzip" ? gzipSync(v.tar) : v.tar;
    const member = `volumes/${v.name}.tar${codec === "gzip" ? ".gz" : ""}`;
    members.push({ name: member, body: data });
    volumes.push({
      name: v.name,
      source_volume: `src_${v.name}`,
      member,
      codec,
      size: v.declaredSize ?? v.tar.length,
      compressed_size: data.length,
      sha256: sha(data),
      tar_sha256: sha(v.tar),
    });
  }
  const sums: string[] = [];
  const digestOf = (e: RawEntry) =>
    e.type === "2" || e.type === "1"
      ? sha(e.linkname ?? "")
      : sha(typeof e.body === "string" ? Buffer.from(e.body) : (e.body ?? Buffer.alloc(0)));
  const listed = members.filter((m) => !(spec.unlisted ?? []).includes(m.name));
  const meta: PackageMetadata = {
    format: "dockpack-env-package",
    format_version: "1.0",
    dockpack_version: "0.1.0",
    created_at: "2026-01-01T00:00:00.000Z",
    project: "craft",
    branch: "crafted",
    compose_project: "craft-crafted",
    commit: null,
    dirty: false,
    include_code: true,
    environment_files: members.filter((m) => m.name.startsWith("environment/")).map((m) => m.name.slice(12)),
    code_files: members.filter((m) => m.name.startsWith("code/")).length,
    volumes,
    members: listed.length + 1,
    ...spec.meta,
  };
  const metaBytes = Buffer.from(JSON.stringify(meta, null, 2));
  sums.push(`${sha(metaBytes).slice(7)}  metadata.json`);
  for (const m of listed) sums.push(`${digestOf(m).slice(7)}  ${m.name}`);
  const all: RawEntry[] = [
    { name: "metadata.json", body: metaBytes },
    ...members,
    { name: "checksums.sha256", body: `${sums.join("\n")}\n` },
  ];
  const bytes = tarBytes(all);
  await writeFile(path, bytes);
  return bytes;
}
