/**
 * src/image/extract.ts: a `docker save` stream unpacked into a directory as it arrives, one file
 * per member, each member's sha256 computed on the way (no engine: synthetic archives).
 */
import assert from "node:assert/strict";
import {
  createReadStream,
  createWriteStream,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import tar from "tar-stream";
import { digestStream } from "../../src/core/digest.js";
import { DockpackError } from "../../src/core/errors.js";
import { makeTempDir, removeTempDir } from "../../src/core/fs.js";
import { layerFile } from "../../src/delta/ship-layer.js";
import { TarContainer } from "../../src/image/container.js";
import { readDockerArchive } from "../../src/image/docker-archive.js";
import { ExtractedContainer } from "../../src/image/extract.js";
import type { ArchiveLayout } from "../../src/image/write.js";
import { writeImageTar } from "../../src/image/write.js";
import { makeImage, makeLayer, sha, versionPair, writeSynth } from "./synthetic.js";

const root = mkdtempSync(join(tmpdir(), "dockpack-extract-test-"));
test.after(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
const freshDir = () => mkdtempSync(join(root, `x${n++}-`));

/** Files of `dir` still open in this process (a write not yet closed). */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Builds a tar in memory from entries (headers + bodies). */
async function makeTar(
  entries: { header: Partial<tar.Header> & { name: string }; body?: Buffer | string }[],
): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries) {
    const header = { mtime: new Date(0), mode: 0o644, ...e.header };
    pack.entry(header, e.body ?? "");
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

for (const layout of ["docker-archive", "docker-archive-oci"] as ArchiveLayout[]) {
  test(`${layout}: one file per member, sha256 and size known, layers used in place by layerFile`, async () => {
    const { v2 } = await versionPair("dockpack-extract-test");
    const file = join(root, `${layout}.tar`);
    await writeSynth(v2, file, layout);
    const dir = freshDir();
    const c = await ExtractedContainer.extract(createReadStream(file), dir, "test save");
    assert.equal(c.location, "test save");

    // Same regular members, in archive order, as the tar index of the same bytes.
    const ref = await TarContainer.open(file);
    assert.deepEqual(await c.members(), await ref.members());
    const members = await c.members();
    // One file per member, under generated names, nothing else in the directory.
    assert.equal(readdirSync(dir).length, members.length);
    for (const m of members) {
      const r = await c.range(m.path);
      assert.equal(dirname(r.file), dir);
      assert.match(r.file, /\/m\d+$/);
      assert.equal(r.start, 0);
      assert.equal(r.size, m.size);
      assert.equal(statSync(r.file).size, m.size);
      assert.equal(await c.size(m.path), m.size);
      const bytes = await c.read(m.path);
      assert.deepEqual(bytes, await ref.read(m.path));
      assert.equal(c.digest(m.path), sha(bytes), `${m.path}: digest computed on the way`);
      assert.equal((await digestStream(await c.open(m.path))).digest, sha(bytes));
    }
    assert.equal(c.digest("no/such/member"), undefined);
    assert.equal(await c.has("./manifest.json"), true, "paths are normalised");

    // Read as an image: every layer's recorded sha256 is its diff_id, and layerFile uses the
    // unpacked file in place (no temp copy).
    const image = await readDockerArchive(c, `docker-archive:${file}`);
    assert.equal(image.configDigest, v2.id);
    assert.deepEqual(
      image.layers.map((l) => l.diffId),
      v2.layers.map((l) => sha(l)),
    );
    for (const l of image.layers) {
      assert.equal(c.digest(l.blob), l.diffId);
      assert.equal(await c.size(l.blob), v2.layers[l.index].length);
      const copy = join(root, `copy-${layout}-${l.index}.tar`);
      const got = await layerFile(image, l.index, l.diffId, `layer ${l.index}`, copy);
      assert.equal(got.temp, false);
      assert.equal(dirname(got.file), dir);
      assert.equal(got.size, v2.layers[l.index].length);
      assert.deepEqual(readFileSync(got.file), v2.layers[l.index]);
      assert.equal(statSync(copy, { throwIfNoEntry: false }), undefined, "no copy written");
    }
    await image.close();
    rmSync(dir, { recursive: true });
  });
}

test("symlinks and hard links inside the archive resolve to the member they name; no path escapes the directory", async () => {
  const a = Buffer.from("layer A bytes");
  const evil = Buffer.from("must stay inside");
  const bytes = await makeTar([
    { header: { name: "aaa/", type: "directory", mode: 0o755 } },
    { header: { name: "aaa/layer.tar" }, body: a },
    // Docker < 25 writes a repeated layer as a relative symlink to the first copy.
    { header: { name: "bbb/layer.tar", type: "symlink", linkname: "../aaa/layer.tar" } },
    { header: { name: "ccc/layer.tar", type: "link", linkname: "aaa/layer.tar" } },
    { header: { name: "loop1", type: "symlink", linkname: "loop2" } },
    { header: { name: "loop2", type: "symlink", linkname: "loop1" } },
    { header: { name: "../../escape.txt" }, body: evil },
    { header: { name: "/abs/escape.txt" }, body: evil },
  ]);
  const dir = freshDir();
  const c = await ExtractedContainer.extract(Readable.from([bytes]), dir, "links.tar");
  for (const p of ["bbb/layer.tar", "ccc/layer.tar", "./bbb/layer.tar"]) {
    assert.equal(await c.has(p), true, p);
    assert.equal(c.digest(p), sha(a), p);
    assert.equal(await c.size(p), a.length, p);
    assert.deepEqual(await c.read(p), a, p);
    assert.equal((await c.range(p)).file, (await c.range("aaa/layer.tar")).file, `${p} in place`);
  }
  // A link loop is a missing member, not a hang.
  assert.equal(await c.has("loop1"), false);
  await assert.rejects(
    c.size("loop1"),
    (e: unknown) => e instanceof DockpackError && e.code === "IMAGE_MEMBER_MISSING",
  );
  // Only regular files are members; ".." and "/" are stripped and the bytes stay in `dir`.
  assert.deepEqual(await c.members(), [
    { path: "aaa/layer.tar", size: a.length },
    { path: "escape.txt", size: evil.length },
    { path: "abs/escape.txt", size: evil.length },
  ]);
  assert.deepEqual(readdirSync(dir).sort(), ["m0", "m1", "m2"]);
  assert.equal(statSync(join(root, "escape.txt"), { throwIfNoEntry: false }), undefined);
  assert.equal(statSync(join(dirname(root), "escape.txt"), { throwIfNoEntry: false }), undefined);
  rmSync(dir, { recursive: true });
});

test("hash: false unpacks the same files and sizes without digests (an engine save the engine checked)", async () => {
  const dir = freshDir();
  const body = Buffer.alloc(70_000, 9);
  const bytes = await makeTar([
    { header: { name: "a/layer.tar" }, body },
    { header: { name: "b.json" }, body: Buffer.from("{}") },
  ]);
  const seen: { path: string; size: number; digest?: string }[] = [];
  const c = await ExtractedContainer.extract(Readable.from([bytes]), dir, "nohash.tar", {
    hash: false,
    onMember: (m) => seen.push({ path: m.path, size: m.size, digest: m.digest }),
  });
  assert.equal(c.hashed, false);
  assert.deepEqual(seen, [
    { path: "a/layer.tar", size: body.length, digest: undefined },
    { path: "b.json", size: 2, digest: undefined },
  ]);
  assert.equal(c.digest("a/layer.tar"), undefined);
  assert.deepEqual(await c.read("a/layer.tar"), body);
  assert.deepEqual(await c.members(), [
    { path: "a/layer.tar", size: body.length },
    { path: "b.json", size: 2 },
  ]);
  rmSync(dir, { recursive: true });
});

test("missing and oversized members are clear DockpackErrors", async () => {
  const dir = freshDir();
  const bytes = await makeTar([{ header: { name: "big.bin" }, body: Buffer.alloc(4096, 7) }]);
  const c = await ExtractedContainer.extract(Readable.from([bytes]), dir, "small.tar");
  await assert.rejects(c.read("big.bin", 1024), (e: unknown) => {
    assert.ok(e instanceof DockpackError);
    assert.equal(e.code, "IMAGE_MEMBER_TOO_LARGE");
    assert.match(e.message, /small\.tar.*big\.bin.*4096 bytes/);
    return true;
  });
  for (const call of [
    () => c.open("nope"),
    () => c.range("nope"),
    () => c.read("nope"),
    () => c.size("nope"),
  ]) {
    await assert.rejects(call(), (e: unknown) => {
      assert.ok(e instanceof DockpackError);
      assert.equal(e.code, "IMAGE_MEMBER_MISSING");
      assert.match(e.message, /small\.tar: the member 'nope' is missing/);
      return true;
    });
  }
  rmSync(dir, { recursive: true });
});

test("a stream cut short or not a tar fails with ARCHIVE_TRUNCATED; nothing is left open, the temp dir is removed", async () => {
  const { v2 } = await versionPair("dockpack-extract-test");
  const file = join(root, "cut.tar");
  await writeSynth(v2, file, "docker-archive");
  const whole = await readFile(file);
  // Cut inside the largest member (the base layer), and cut inside a header.
  const ref = await TarContainer.open(file);
  const largest = (await ref.members()).reduce((a, b) => (b.size > a.size ? b : a));
  const r = await ref.range(largest.path);
  const cuts = [r.start + Math.floor(r.size / 2), r.start - 300];
  const inputs: [string, () => Readable][] = cuts.map((cut) => [
    `cut at ${cut}`,
    () => createReadStream(file, { end: cut - 1, highWaterMark: 4096 }),
  ]);
  inputs.push([
    "gzip data",
    () => Readable.from([Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), whole.subarray(0, 4096)])]),
  ]);
  inputs.push([
    "source error",
    () =>
      new Readable({
        read() {
          this.push(whole.subarray(0, 2048));
          this.destroy(new Error("engine connection reset"));
        },
      }),
  ]);
  for (const [what, input] of inputs) {
    const dir = await makeTempDir("dockpack-extract-test-");
    await assert.rejects(ExtractedContainer.extract(input(), dir, "docker save of t:1"), (e: unknown) => {
      assert.ok(e instanceof DockpackError, what);
      assert.equal(e.code, "ARCHIVE_TRUNCATED", what);
      assert.match(e.message, /^docker save of t:1: the tar stream is cut short or malformed/, what);
      assert.ok(e.hint, what);
      return true;
    });
    // The half-written member is closed by the time extract rejects, so the caller's cleanup
    // removes everything (no file re-created after the removal).
    assert.deepEqual(openFilesUnder(dir), [], what);
    await removeTempDir(dir);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(statSync(dir, { throwIfNoEntry: false }), undefined, `${what}: temp dir removed`);
  }
});

test("a layer whose bytes do not match the config's diff_id: the sha256 from unpacking exposes it, layerFile refuses it", async () => {
  const good = await makeLayer([{ path: "bin/tool", content: "#!/bin/sh\necho good\n" }]);
  const bad = Buffer.from(good);
  bad[bad.indexOf("good")] = "G".charCodeAt(0);
  const image = makeImage([good], ["dockpack-extract-test:bad"]);
  const file = join(root, "mismatch.tar");
  const out = createWriteStream(file);
  await writeImageTar(
    {
      config: image.config,
      repoTags: image.tags,
      layers: [{ diffId: sha(good), size: bad.length, open: async () => Readable.from([bad]) }],
    },
    out,
    "docker-archive",
  );
  const dir = freshDir();
  const c = await ExtractedContainer.extract(createReadStream(file), dir, "mismatch.tar");
  const img = await readDockerArchive(c, file);
  const layer = img.layers[0];
  assert.equal(layer.diffId, sha(good));
  assert.equal(c.digest(layer.blob), sha(bad), "the digest is of the bytes, not taken from the name");
  await assert.rejects(
    layerFile(img, 0, layer.diffId, "layer 0 of mismatch.tar", join(root, "c.tar")),
    (e: unknown) => {
      assert.ok(e instanceof DockpackError);
      assert.equal(e.code, "DIGEST_MISMATCH");
      assert.match(
        e.message,
        /layer 0 of mismatch\.tar: expected sha256:[a-f0-9]{64}, got sha256:[a-f0-9]{64}/,
      );
      assert.ok(e.message.includes(sha(bad)));
      return true;
    },
  );
  await img.close();
  rmSync(dir, { recursive: true });
});
