/**
 * src/env/import-volume-fast.ts + import-volume-put.ts: import's one-pass restore on a local
 * engine (zstd through socket pairs, the strict scanner, a raw chunked PUT on the engine socket)
 * restores a volume exactly as the stream path does (the engine's archive of both volumes is the
 * same, byte for byte); a member whose bytes do not match metadata.json, or whose tar turns hostile
 * midway, is refused with validate's code and leaves no helper container (the volume can be
 * removed at once, as the import's rollback does); the engine's own refusal of a PUT is reported
 * with its message.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  createVolume,
  openVolumeUpload,
  readVolumeTar,
  removeVolume,
} from "../../src/core/docker/volumes.js";
import { silentReporter } from "../../src/core/output.js";
import { rawEngineSocket } from "../../src/env/export-archive.js";
import { restoreVolume } from "../../src/env/import-restore.js";
import { VolumeUpload } from "../../src/env/import-volume-put.js";
import type { Journal } from "../../src/env/journal.js";
import type { PackageVolume } from "../../src/env/package-format.js";
import { needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { helpersFor, volumeScope } from "../helpers/volumes.js";
import { type RawEntry, tarBytes } from "./craft.js";

const { prefix, created } = volumeScope("ifast");
let dir = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-ifast-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
/** The import's journal as restoreVolume uses it (only its cancel hook). */
const journal = { onCancel: () => () => undefined } as unknown as Journal;

const BIG = randomBytes(3 * 1024 * 1024 + 123);
const ENTRIES: RawEntry[] = [
  { name: "./", type: "5", mode: 0o750, uid: 999, gid: 998 },
  { name: "db/", type: "5", mode: 0o700, uid: 999 },
  { name: "db/big.bin", body: BIG, mode: 0o600, uid: 999 },
  { name: "db/setuid", body: "x", mode: 0o4755 },
  { name: "db/hard", type: "1", linkname: "db/big.bin" },
  { name: "db/link", type: "2", linkname: "../etc/passwd" },
  // every folder has its entry (one the engine makes itself carries the time it was made)
  { name: `${"n".repeat(90)}/`, type: "5" },
  { name: `${"n".repeat(90)}/${"m".repeat(60)}`, body: "ustar prefix split" },
  { name: "p", body: "pax long name", pax: { path: `deep/${"q".repeat(150)}` } },
  { name: "deep/", type: "5" },
  { name: "many/", type: "5" },
  ...Array.from({ length: 200 }, (_, i): RawEntry => ({ name: `many/f${i}`, body: `${i}\n`.repeat(i) })),
];

/** A package-like file: junk, the zstd member, junk; the member's place and its PackageVolume. */
async function packageWith(
  name: string,
  tar: Buffer,
  edit: (member: Buffer) => Buffer = (m) => m,
): Promise<{ file: string; at: { offset: number; size: number }; v: PackageVolume }> {
  const member = execFileSync("zstd", ["-q", "-3", "-c"], { input: tar, maxBuffer: 1 << 30 });
  const stored = edit(Buffer.from(member));
  const head = randomBytes(1536);
  const file = join(dir, `${name}.tar`);
  await writeFile(file, Buffer.concat([head, stored, randomBytes(700)]));
  return {
    file,
    at: { offset: head.length, size: stored.length },
    v: {
      name,
      member: `volumes/${name}.tar.zst`,
      codec: "zstd",
      sha256: sha(member),
      compressed_size: member.length,
      size: tar.length,
      tar_sha256: sha(tar),
    } as PackageVolume,
  };
}

async function freshVolume(tag: string): Promise<string> {
  const name = `${prefix}-${tag}`;
  created.push(name);
  await createVolume(name);
  return name;
}

async function archiveOf(volume: string): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of await readVolumeTar(volume)) out.push(c as Buffer);
  return Buffer.concat(out);
}

test("the fast one pass restores a volume exactly as the stream path does", async (t) => {
  if (!(await needsEngine(t))) return;
  await ensureFixture("busybox");
  assert.ok(rawEngineSocket(), "the test engine is local (unix socket)");
  const tar = tarBytes(ENTRIES);
  const pkg = await packageWith("same", tar);
  const fast = await freshVolume("fast");
  const slow = await freshVolume("slow");
  await restoreVolume(pkg.file, pkg.at, pkg.v, fast, silentReporter(), journal);
  // a source stream takes the stream path (writeVolumeTar through dockerode)
  const source = createReadStream(pkg.file, { start: pkg.at.offset, end: pkg.at.offset + pkg.at.size - 1 });
  await restoreVolume(pkg.file, pkg.at, pkg.v, slow, silentReporter(), journal, { source });
  const a = await archiveOf(fast);
  const b = await archiveOf(slow);
  assert.ok(a.includes(BIG.subarray(0, 4096)), "the content is there");
  assert.equal(sha(a), sha(b), "the engine's archive of both volumes is the same");
  assert.equal(helpersFor(fast), "", "no helper container left");
});

test("a member that does not match metadata.json is refused after the pass; nothing holds the volume", async (t) => {
  if (!(await needsEngine(t))) return;
  await ensureFixture("busybox");
  const tar = tarBytes(ENTRIES);
  // same content, other bytes: zstd at another level (a valid member whose digest differs)
  const other = execFileSync("zstd", ["-q", "-19", "-c"], { input: tar, maxBuffer: 1 << 30 });
  const pkg = await packageWith("digest", tar, () => other);
  const vol = await freshVolume("digest");
  await assert.rejects(
    restoreVolume(pkg.file, pkg.at, pkg.v, vol, silentReporter(), journal),
    (e: { code?: string; details?: { packageProblem?: boolean } }) =>
      e.code === "PACKAGE_CHECKSUM_MISMATCH" && e.details?.packageProblem === true,
  );
  assert.equal(helpersFor(vol), "");
  await removeVolume(vol); // the rollback's step: nothing uses it any more
  created.splice(created.indexOf(vol), 1);
});

test("a tar that turns hostile midway is refused with validate's code before the entry reaches the engine", async (t) => {
  if (!(await needsEngine(t))) return;
  await ensureFixture("busybox");
  const tar = tarBytes([...ENTRIES.slice(0, 3), { name: "../escape", body: "no" }, ...ENTRIES.slice(3)]);
  const pkg = await packageWith("hostile", tar);
  const vol = await freshVolume("hostile");
  await assert.rejects(
    restoreVolume(pkg.file, pkg.at, pkg.v, vol, silentReporter(), journal),
    (e: { code?: string }) => e.code === "PACKAGE_UNSAFE_PATH",
  );
  assert.equal(helpersFor(vol), "");
  const left = await archiveOf(vol);
  assert.ok(!left.includes(Buffer.from("escape")), "the refused entry never reached the engine");
  assert.ok(!left.includes(Buffer.from("many/f1")), "nothing after it either");
  // a member that expands past its declared size is refused the same way
  const bomb = await packageWith("bomb", tarBytes(ENTRIES));
  const capped = await freshVolume("bomb");
  await assert.rejects(
    restoreVolume(bomb.file, bomb.at, { ...bomb.v, size: 1024 * 1024 }, capped, silentReporter(), journal),
    (e: { code?: string; message?: string }) =>
      e.code === "PACKAGE_VOLUME_INVALID" && /decompresses to more than/.test(e.message ?? ""),
  );
  assert.equal(helpersFor(capped), "");
});

test("the engine's refusal of the raw PUT is reported with its message", async (t) => {
  if (!(await needsEngine(t))) return;
  await ensureFixture("busybox");
  const socket = rawEngineSocket() as string;
  // no such container
  const missing = new VolumeUpload(socket, "/containers/dpt-no-such-container/archive?path=%2F", "x");
  missing.send([tarBytes([{ name: "data/a", body: "a" }])], () => undefined);
  await assert.rejects(
    missing.finish(),
    (e: { code?: string; message?: string }) =>
      e.code === "VOLUME_FAILED" && /no such container/i.test(e.message ?? ""),
  );
  // bytes that are no tar, sent to a real helper container (the scanner would never let them by)
  const vol = await freshVolume("refused");
  const helper = await openVolumeUpload(vol);
  try {
    const put = new VolumeUpload(socket, helper.path, vol);
    put.send([Buffer.from("this is not a tar archive at all ".repeat(64))], () => undefined);
    await assert.rejects(put.finish(), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, "VOLUME_FAILED");
      assert.match(e.message ?? "", /writing files failed: \d{3} \S/);
      return true;
    });
  } finally {
    await helper.release();
  }
});
