/** FastCDC (core/oci/cdc.ts): bounds, determinism across piece sizes, local effect of an edit. */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import { type CdcParams, FastCdc } from "../../../src/core/oci/cdc.js";

const P: CdcParams = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

function cut(data: Buffer, piece: number, params = P): number[] {
  const c = new FastCdc(params);
  const lens: number[] = [];
  for (let o = 0; o < data.length; o += piece) lens.push(...c.push(data.subarray(o, o + piece)));
  const last = c.end();
  if (last) lens.push(last);
  return lens;
}

function digests(data: Buffer, lens: number[]): string[] {
  let o = 0;
  return lens.map((l) => {
    const d = createHash("sha256")
      .update(data.subarray(o, o + l))
      .digest("hex");
    o += l;
    return d;
  });
}

test("chunks cover the input, respect min/max, average near avg, same cuts whatever the piece size", () => {
  const data = randomBytes(8 * 1024 * 1024);
  const a = cut(data, 1024 * 1024);
  assert.equal(
    a.reduce((n, l) => n + l, 0),
    data.length,
  );
  for (const l of a.slice(0, -1)) assert.ok(l >= P.min && l <= P.max, `chunk of ${l}`);
  const mean = data.length / a.length;
  assert.ok(mean > P.avg / 2 && mean < P.avg * 2, `mean ${mean}`);
  assert.deepEqual(cut(data.subarray(0, 1024 * 1024), 1), cut(data.subarray(0, 1024 * 1024), 4096));
  assert.deepEqual(cut(data, 7919), a);
  assert.deepEqual(cut(data, data.length), a);
});

test("an insertion in the middle changes only the chunks around it", () => {
  const data = randomBytes(8 * 1024 * 1024);
  const mid = data.length / 2;
  const edited = Buffer.concat([data.subarray(0, mid), randomBytes(1000), data.subarray(mid)]);
  const before = new Set(digests(data, cut(data, 65536)));
  const lens = cut(edited, 65536);
  const after = digests(edited, lens);
  let fresh = 0;
  after.forEach((d, i) => {
    if (!before.has(d)) fresh += lens[i];
  });
  assert.ok(fresh <= 3 * P.max, `${fresh} new bytes`);
  assert.ok(fresh > 0);
});

test("bad bounds are refused; empty input gives no chunk", () => {
  assert.throws(() => new FastCdc({ min: 10, avg: 1000, max: 2000 }), RangeError);
  assert.throws(() => new FastCdc({ min: 2048, avg: 1024, max: 4096 }), RangeError);
  const c = new FastCdc(P);
  assert.deepEqual(c.push(Buffer.alloc(0)), []);
  assert.equal(c.end(), 0);
});
