/**
 * src/env/package-volume-hash.ts: the worker-thread hashes give the digest node:crypto gives on
 * the main thread — SharedHasher for ranges of its arena buffers mixed with outside bytes (tar
 * headers; pieces larger than its side ring; more ranges than its queue holds, so the caller
 * waits for the worker), HashingBatcher for a stream of odd-sized chunks. No engine, no timing.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import { HashingBatcher, SharedHasher } from "../../src/env/package-volume-hash.js";

const sha = (parts: Uint8Array[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return `sha256:${h.digest("hex")}`;
};

test("SharedHasher: arena slices, outside bytes, a piece over the side ring and a full range queue", async () => {
  const h = new SharedHasher(4, 64 * 1024);
  const seen: Uint8Array[] = [];
  const tickets = [0, 0, 0, 0];
  for (let round = 0; round < 3000; round++) {
    const i = round % 4;
    // the buffer is refilled only once its earlier ranges are hashed
    if (h.hashed() < tickets[i]) await h.whenHashed(tickets[i]);
    const buf = h.buffer(i);
    buf.set(randomBytes(1024 + (round % 7) * 512));
    const header = randomBytes(512);
    for (const p of [buf.subarray(0, 700), header, buf.subarray(700, 1024 + (round % 7) * 512)]) {
      h.add(p);
      seen.push(Buffer.from(p));
    }
    if (round % 500 === 0) {
      const big = randomBytes(300 * 1024);
      h.add(big);
      seen.push(big);
    }
    if (round === 1500)
      // unpublished, more ranges than the queue holds (4096): add() hands them over and waits
      for (let k = 0; k < 5000; k++) {
        const tiny = randomBytes(16);
        h.add(tiny);
        seen.push(tiny);
      }
    if (round % 3 === 0) h.publish();
    tickets[i] = h.ticket;
  }
  const r = await h.finish();
  assert.equal(r.digest, sha(seen));
  assert.equal(r.size, h.size);
});

test("HashingBatcher: odd-sized chunks through the ring give the same digest, written in order", async () => {
  const written: Buffer[] = [];
  const b = new HashingBatcher((view, done) => {
    written.push(Buffer.from(view));
    setImmediate(done);
  });
  const chunks: Buffer[] = [];
  for (let i = 0; i < 40; i++) chunks.push(randomBytes(((i * 7919) % 400_000) + 1));
  for (const c of chunks) {
    if (!b.canTake(c.length)) await b.ready(c.length);
    b.push(c);
  }
  const r = await b.finish();
  assert.equal(r.digest, sha(chunks));
  assert.deepEqual(Buffer.concat(written), Buffer.concat(chunks));
});
