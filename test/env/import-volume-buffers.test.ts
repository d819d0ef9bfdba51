/**
 * src/env/import-volume-buffers.ts (import's one pass, issue 17): buffers of a SharedHasher's
 * arena lent to reads are read into again only once their write completed and the worker hashed
 * them; the digest is node:crypto's over the same bytes; after a stop the reads go to spares
 * (outside the arena, copied by the hasher) and the digest stays right. No engine, no timing:
 * writes complete on later turns of the event loop, in order, as a socket's do.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import { HashedBuffers } from "../../src/env/import-volume-buffers.js";
import { SharedHasher } from "../../src/env/package-volume-hash.js";

const COUNT = 4;
const BYTES = 64 * 1024;

test("HashedBuffers: a buffer comes back only once written and hashed; the digest is of the bytes read", async () => {
  const buffers = new HashedBuffers(new SharedHasher(COUNT, BYTES), COUNT, BYTES);
  const expected = createHash("sha256");
  /** Buffers lent and not yet given back (by identity of their memory). */
  const inUse = new Set<number>();
  const pending: Array<() => void> = [];
  let stopped = false;
  let spares = 0;
  let total = 0;
  for (let round = 0; round < 600; round++) {
    if (round === 500) stopped = true;
    await buffers.until(0, () => stopped);
    const buf = buffers.take();
    const shared = buf.buffer instanceof SharedArrayBuffer;
    if (shared) {
      assert.equal(inUse.has(buf.byteOffset), false, `round ${round}: a buffer still in use was lent again`);
      inUse.add(buf.byteOffset);
    } else spares++;
    const n = 1 + ((round * 7919) % BYTES);
    buf.set(randomBytes(n));
    const data = buf.subarray(0, n);
    expected.update(data);
    total += n;
    const written = buffers.lend(buf, data);
    const done = () => {
      // the write completed: from now on only the hasher may still need it
      inUse.delete(buf.byteOffset);
      written();
    };
    if (stopped) done();
    else {
      // a socket completes its writes in order, a few turns later
      pending.push(done);
      if (pending.length > 2 || round % 3 === 0)
        setImmediate(() => {
          pending.shift()?.();
        });
    }
  }
  for (const done of pending.splice(0)) done();
  assert.ok(spares > 0, "after the stop, reads with no free buffer go to spares");
  const r = await buffers.hasher.finish();
  assert.equal(r.size, total);
  assert.equal(r.digest, `sha256:${expected.digest("hex")}`);
});

test("HashedBuffers: until() returns when nothing is lent, and on stop; poke() wakes a waiter", async () => {
  const buffers = new HashedBuffers(new SharedHasher(2, 1024), 2, 1024);
  await buffers.until(5, () => false); // nothing lent: nothing to wait for
  const a = buffers.take();
  const b = buffers.take();
  const wa = buffers.lend(a, a.subarray(0, 10));
  buffers.lend(b, b.subarray(0, 10));
  assert.equal(buffers.available, 0);
  let stop = false;
  const waiting = buffers.until(0, () => stop);
  stop = true;
  buffers.poke();
  await waiting;
  // a written buffer comes back once the worker hashed it
  wa();
  await buffers.until(0, () => false);
  assert.equal(buffers.available, 1);
  buffers.hasher.close();
});
