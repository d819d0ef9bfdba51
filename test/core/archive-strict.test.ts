/**
 * core/archive/strict.ts: the strict tar reader refuses every ambiguous or malformed input with a
 * named code (never loops, never guesses), and reads what GNU tar, tar-stream and dockpack's
 * package writer produce. Plus the volume-tar entry checks (checks.ts).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import {
  readTarStrict,
  type StrictTarEntry,
  StrictTarScanner,
  TarEntryChecker,
} from "../../src/core/archive.js";
import { fixChecksum, type RawEntry, tarBytes } from "../env/craft.js";
import { rawTar } from "./archive-helpers.js";

async function read(buf: Buffer, chunk = 7919): Promise<{ entries: (StrictTarEntry & { body: string })[] }> {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  const entries: (StrictTarEntry & { body: string })[] = [];
  await readTarStrict(Readable.from(parts), async (e, body) => {
    const c: Buffer[] = [];
    for await (const x of body) c.push(x as Buffer);
    entries.push({ ...e, body: Buffer.concat(c).toString() });
  });
  // the synchronous scanner (import's one-pass restore) reads the same entries
  assert.deepEqual(
    scan(buf, chunk),
    entries.map(({ body: _, ...e }) => e),
  );
  return { entries };
}

/** StrictTarScanner over `buf` in chunks of `chunk` bytes: its entries (throws as it does). */
function scan(buf: Buffer, chunk: number): StrictTarEntry[] {
  const entries: StrictTarEntry[] = [];
  const s = new StrictTarScanner((e) => entries.push(e));
  for (let i = 0; i < buf.length; i += chunk) s.write(buf.subarray(i, i + chunk));
  s.end();
  return entries;
}

const codeOf = (e: unknown) => (e as { code?: string }).code ?? `no code: ${(e as Error).message}`;

/** readTarStrict's verdict on `buf`; the scanner's must be the same, in any chunking. */
async function code(buf: Buffer): Promise<string> {
  let verdict = "OK";
  try {
    await read(buf);
  } catch (e) {
    verdict = codeOf(e);
  }
  for (const chunk of [1, 511, 7919, buf.length || 1]) {
    let scanned = "OK";
    try {
      scan(buf, chunk);
    } catch (e) {
      scanned = codeOf(e);
    }
    assert.equal(scanned, verdict, `scanner in chunks of ${chunk}`);
  }
  return verdict;
}

const base: RawEntry[] = [
  { name: "a.txt", body: "hello" },
  { name: "dir/", type: "5", mode: 0o755 },
  { name: "dir/link", type: "2", linkname: "../a.txt" },
];

test("reads GNU tar, tar-stream and crafted ustar/pax archives, in any chunking", async () => {
  const dir = await mkdtemp(join(tmpdir(), "dockpack-strict-"));
  try {
    await writeFile(join(dir, "f"), "x".repeat(1000));
    await writeFile(join(dir, `${"long".repeat(40)}.txt`), "long name");
    await symlink("f", join(dir, "l"));
    for (const format of ["gnu", "posix"]) {
      const tar = execFileSync("tar", [`--format=${format}`, "-cf", "-", "-C", dir, "."]);
      const { entries } = await read(tar, 100);
      assert.ok(
        entries.some((e) => e.name.endsWith(`${"long".repeat(40)}.txt`) && e.body === "long name"),
        format,
      );
      assert.ok(
        entries.some((e) => e.name === "./l" && e.type === "symlink" && e.linkname === "f"),
        format,
      );
    }
    const ts = await rawTar([
      { name: "x", body: "y", mode: 0o640, uid: 1000 },
      { name: "p".repeat(150), body: "z" },
    ]);
    const { entries } = await read(ts, 1);
    assert.equal(entries[0].mode, 0o640);
    assert.equal(entries[0].uid, 1000);
    assert.equal(entries[1].name, "p".repeat(150));
    assert.equal((await read(tarBytes(base))).entries.length, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("numeric fields: non-octal, NaN-like and negative base-256 values are refused; base-256 sizes read", async () => {
  const good = tarBytes(base);
  const patch = (off: number, text: string | Buffer) => {
    const b = Buffer.from(good);
    (typeof text === "string" ? Buffer.from(text, "latin1") : text).copy(b, off);
    fixChecksum(b, 0);
    return b;
  };
  assert.equal(await code(patch(124, "0000000008x\0")), "ARCHIVE_HEADER_INVALID");
  assert.equal(await code(patch(124, "NaN        \0")), "ARCHIVE_HEADER_INVALID");
  assert.equal(await code(patch(124, "\0\0\0\0\0\0\0\0\0\0\0\0")), "ARCHIVE_HEADER_INVALID", "empty size");
  assert.equal(await code(patch(100, "07x4\0\0\0\0")), "ARCHIVE_HEADER_INVALID", "mode");
  assert.equal(
    await code(
      patch(124, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb])),
    ),
    "ARCHIVE_HEADER_INVALID",
    "negative base-256",
  );
  assert.equal(
    await code(
      patch(124, Buffer.from([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
    ),
    "ARCHIVE_HEADER_INVALID",
    "over 2^53",
  );
  // base-256 size 5 is the same as octal 5
  const b256 = patch(124, Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]));
  assert.equal((await read(b256)).entries[0].body, "hello");
  // a huge declared size with no data is a truncation, found without reading gigabytes
  const huge = patch(124, Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]));
  assert.equal(await code(huge), "ARCHIVE_TRUNCATED");
  const badSum = Buffer.from(good);
  badSum[10] ^= 1;
  assert.equal(await code(badSum), "ARCHIVE_HEADER_INVALID");
});

test("pax: bounded, strictly parsed, no global path override, sparse refused", async () => {
  assert.equal(
    (await read(tarBytes([{ name: "x", body: "1", pax: { path: "y/z" } }]))).entries[0].name,
    "y/z",
  );
  const big = tarBytes([{ name: "x", body: "1", pax: { comment: "c".repeat(1024 * 1024 + 10) } }]);
  assert.equal(await code(big), "ARCHIVE_PAX_INVALID");
  const paxSize = tarBytes([{ name: "x", body: "1", pax: { size: "12abc" } }]);
  assert.equal(await code(paxSize), "ARCHIVE_PAX_INVALID");
  const sparse = tarBytes([{ name: "x", body: "1", pax: { "GNU.sparse.major": "1" } }]);
  assert.equal(await code(sparse), "ARCHIVE_UNSUPPORTED_TYPE");
  const global = tarBytes([
    { name: "g", type: "g", body: "16 path=/etc/x\n" },
    { name: "x", body: "1" },
  ]);
  assert.equal(await code(global), "ARCHIVE_PAX_INVALID");
  const badRecord = tarBytes([
    { name: "x", type: "x", body: "99 path=y\n" },
    { name: "x", body: "1" },
  ]);
  assert.equal(await code(badRecord), "ARCHIVE_PAX_INVALID");
  const dangling = Buffer.concat([
    tarBytes([{ name: "x", type: "x", body: "10 path=y\n" }], false),
    Buffer.alloc(1024),
  ]);
  assert.equal(await code(dangling), "ARCHIVE_HEADER_INVALID");
});

test("structure: type/size mismatch, unknown types, trailing data, truncation, empty input", async () => {
  assert.equal(
    await code(tarBytes([{ name: "d", type: "5", size: 5, body: "hello" }])),
    "ARCHIVE_TYPE_SIZE_MISMATCH",
  );
  assert.equal(
    await code(tarBytes([{ name: "l", type: "2", linkname: "x", size: 5, body: "hello" }])),
    "ARCHIVE_TYPE_SIZE_MISMATCH",
  );
  assert.equal(await code(tarBytes([{ name: "s", type: "S", body: "" }])), "ARCHIVE_UNSUPPORTED_TYPE");
  assert.equal(await code(tarBytes([{ name: "v", type: "V", body: "" }])), "ARCHIVE_UNSUPPORTED_TYPE");
  const good = tarBytes(base);
  assert.equal(await code(Buffer.concat([good, Buffer.alloc(20 * 512)])), "OK", "zero padding is fine");
  assert.equal(await code(Buffer.concat([good, good])), "ARCHIVE_TRAILING_DATA");
  assert.equal(await code(Buffer.concat([good, Buffer.from("x")])), "ARCHIVE_TRAILING_DATA");
  const lone = Buffer.concat([tarBytes([base[0]], false), Buffer.alloc(512), tarBytes([base[1]])]);
  assert.equal(await code(lone), "ARCHIVE_TRAILING_DATA");
  assert.equal(await code(good.subarray(0, good.length - 1024)), "ARCHIVE_TRUNCATED");
  assert.equal(await code(good.subarray(0, 600)), "ARCHIVE_TRUNCATED");
  assert.equal(await code(good.subarray(0, 515)), "ARCHIVE_TRUNCATED");
  assert.equal(await code(Buffer.alloc(0)), "ARCHIVE_TRUNCATED");
  assert.equal(await code(Buffer.from("not a tar at all".repeat(64))), "ARCHIVE_HEADER_INVALID");
});

test("volume entry checks: devices, fifos, hardlinks, writes below symlinks, duplicates", () => {
  const c = new TarEntryChecker();
  const e = (name: string, type: StrictTarEntry["type"], linkname = "") => c.check({ name, type, linkname });
  assert.equal(e("./", "directory"), null);
  assert.equal(e("f", "file"), null);
  assert.equal(e("h", "link", "f"), null);
  assert.equal(e("h2", "link", "later")?.code, "ARCHIVE_UNSAFE_ENTRY");
  assert.equal(e("h3", "link", "../f")?.code, "ARCHIVE_UNSAFE_ENTRY");
  assert.equal(e("null", "character-device")?.code, "ARCHIVE_SPECIAL_FILE");
  assert.equal(e("loop", "block-device")?.code, "ARCHIVE_SPECIAL_FILE");
  assert.equal(e("p", "fifo")?.code, "ARCHIVE_SPECIAL_FILE");
  assert.equal(e("s", "symlink", "/etc"), null);
  assert.equal(e("s/passwd", "file")?.code, "ARCHIVE_UNSAFE_ENTRY");
  assert.equal(e("f/x", "file")?.code, "ARCHIVE_UNSAFE_ENTRY");
  assert.equal(e("./f", "file")?.code, "ARCHIVE_UNSAFE_ENTRY", "duplicate after normalising");
  assert.equal(e("../x", "file")?.code, "ARCHIVE_UNSAFE_ENTRY");
  const allow = new TarEntryChecker({ allowSpecialFiles: true });
  assert.equal(allow.check({ name: "p", type: "fifo", linkname: "" }), null);
});
