import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import {
  DIGEST_RE,
  DigestStream,
  digestFile,
  digestStream,
  parseDigest,
  sha256Hex,
  verifyingStream,
} from "../../src/core/digest.js";

const EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ABC = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

function sink(): Writable {
  return new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });
}

test("sha256Hex and parseDigest", () => {
  assert.equal(`sha256:${sha256Hex("abc")}`, ABC);
  assert.equal(`sha256:${sha256Hex(Buffer.alloc(0))}`, EMPTY);
  assert.ok(DIGEST_RE.test(ABC));
  assert.equal(parseDigest(ABC), ABC.slice(7));
  for (const bad of ["sha256:ABC", "sha512:" + "a".repeat(64), ABC.slice(7), `${ABC}0`]) {
    assert.throws(() => parseDigest(bad), { code: "DIGEST_INVALID" });
  }
});

test("DigestStream passes data through and reports digest and size", async () => {
  const ds = new DigestStream();
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from([Buffer.from("a"), Buffer.from("bc")]),
    ds,
    new Writable({
      write(c, _e, cb) {
        chunks.push(c);
        cb();
      },
    }),
  );
  assert.equal(ds.digest, ABC);
  assert.equal(ds.size, 3);
  assert.equal(Buffer.concat(chunks).toString(), "abc");
});

test("digestStream and digestFile", async () => {
  assert.deepEqual(await digestStream(Readable.from([Buffer.from("abc")])), { digest: ABC, size: 3 });
  assert.deepEqual(await digestStream(Readable.from([])), { digest: EMPTY, size: 0 });
  const dir = await mkdtemp(join(tmpdir(), "dockpack-digest-"));
  try {
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
    await writeFile(join(dir, "f"), big);
    assert.deepEqual(await digestFile(join(dir, "f")), {
      digest: `sha256:${sha256Hex(big)}`,
      size: big.length,
    });
    await assert.rejects(digestFile(join(dir, "missing")), { code: "ENOENT" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("verifyingStream passes matching data and fails on a mismatch naming both digests", async () => {
  await pipeline(Readable.from([Buffer.from("ab"), Buffer.from("c")]), verifyingStream(ABC, "x"), sink());
  await assert.rejects(
    pipeline(Readable.from([Buffer.from("abd")]), verifyingStream(ABC, "blobs/sha256/ba78"), sink()),
    (e: Error & { code?: string; details?: Record<string, unknown> }) => {
      assert.equal(e.code, "DIGEST_MISMATCH");
      assert.match(e.message, /^blobs\/sha256\/ba78: expected sha256:ba78.*, got sha256:[a-f0-9]{64}$/);
      assert.equal(e.details?.expected, ABC);
      assert.equal(e.details?.actual, `sha256:${sha256Hex("abd")}`);
      return true;
    },
  );
  assert.throws(() => verifyingStream("nope", "x"), { code: "DIGEST_INVALID" });
});
