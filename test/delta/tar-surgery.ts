/**
 * Test helper: edits tar files in place the way an attacker would — a header field replaced and
 * the header checksum fixed, a member body replaced by a same-length one — and rebuilds tars
 * with members swapped, added or duplicated.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from "node:fs";
import tar from "tar-stream";
import { indexTar } from "../../src/image/container.js";

/** Recomputes the checksum of the 512-byte header at `headerOffset` of `buf`. */
export function fixChecksum(buf: Buffer, headerOffset: number): void {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : buf[headerOffset + i];
  buf.write(`${sum.toString(8).padStart(6, "0")}\0 `, headerOffset + 148, 8, "latin1");
}

/** Writes `bytes` at `fieldStart` of the header of the member `path` in `file`, fixing the checksum. */
export async function setHeaderField(
  file: string,
  path: string,
  fieldStart: number,
  bytes: Buffer,
): Promise<void> {
  const entry = (await indexTar(file)).find((e) => e.path === path);
  if (!entry) throw new Error(`no member ${path} in ${file}`);
  const headerOffset = entry.offset - 512;
  const fd = openSync(file, "r+");
  try {
    const head = Buffer.alloc(512);
    readSync(fd, head, 0, 512, headerOffset);
    bytes.copy(head, fieldStart);
    fixChecksum(head, 0);
    writeSync(fd, head, 0, 512, headerOffset);
  } finally {
    closeSync(fd);
  }
}

/** One member of a rebuilt tar. */
export interface Member {
  name: string;
  body: Buffer;
  type?: "file" | "symlink" | "directory";
  linkname?: string;
}

/** Reads every regular member of a (small) tar file in order. */
export async function readMembers(file: string): Promise<Member[]> {
  const data = readFileSync(file);
  return (await indexTar(file))
    .filter((e) => e.type === "file")
    .map((e) => ({ name: e.path, body: data.subarray(e.offset, e.offset + e.size) }));
}

/** Writes `members` as a tar file (tar-stream, ustar). */
export async function writeMembers(file: string, members: Member[]): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on("end", () => r()));
  for (const m of members) {
    if (m.type === "symlink")
      pack.entry({ name: m.name, type: "symlink", linkname: m.linkname, mtime: new Date(0) });
    else if (m.type === "directory") pack.entry({ name: m.name, type: "directory", mtime: new Date(0) });
    else pack.entry({ name: m.name, mtime: new Date(0), mode: 0o644 }, m.body);
  }
  pack.finalize();
  await ended;
  writeFileSync(file, Buffer.concat(chunks));
}

/** A delta package taken apart: its metadata (parsed) and every member after it. */
export interface OpenPackage {
  // biome-ignore lint/suspicious/noExplicitAny: tests forge arbitrary metadata
  md: any;
  members: Member[];
}

/**
 * Rewrites the delta package `from` into `to` after `edit` changed its metadata or members; the
 * member digests and sizes in the metadata are recomputed for members whose body changed (what a
 * forger would do), unless `keepDigests`.
 */
export async function forgePackage(
  from: string,
  to: string,
  edit: (p: OpenPackage) => void | Promise<void>,
  options: { keepDigests?: boolean; rawMetadata?: (text: string) => string } = {},
): Promise<void> {
  const all = await readMembers(from);
  const md = JSON.parse(all[0].body.toString("utf8"));
  const p: OpenPackage = { md, members: all.slice(1) };
  const before = new Map(p.members.map((m) => [m.name, m.body]));
  await edit(p);
  if (!options.keepDigests) {
    for (const l of p.md.layers ?? []) {
      const m = p.members.find((x) => x.name === l.member);
      if (m && before.get(m.name) !== m.body) {
        l.memberSize = m.body.length;
        l.memberDigest = `sha256:${createHash("sha256").update(m.body).digest("hex")}`;
      }
    }
  }
  let text = `${JSON.stringify(p.md, null, 2)}\n`;
  if (options.rawMetadata) text = options.rawMetadata(text);
  await writeMembers(to, [{ name: "dockpack-delta.json", body: Buffer.from(text) }, ...p.members]);
}
