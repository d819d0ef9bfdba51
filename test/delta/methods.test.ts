/** Delta method limits and parameters, and the base-layer choice. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AUTO_BSDIFF_MAX,
  BSDIFF_MAX_BASE,
  BSDIFF_MEMORY_FACTOR,
  bsdiffLimit,
  checkBsdiff,
  chooseBase,
  methodFits,
  pickMethod,
  XDELTA3_MAX_WINDOW,
  xdelta3Window,
  zstdWindowLog,
} from "../../src/delta/index.js";

const MiB = 1024 * 1024;

test("xdelta3's source window covers the old layer, capped at 2 GiB", () => {
  assert.equal(xdelta3Window(1000), 16 * MiB);
  assert.equal(xdelta3Window(300 * MiB + 5), 301 * MiB);
  assert.equal(xdelta3Window(5 * 1024 * MiB), XDELTA3_MAX_WINDOW);
});

test("zstd long mode only above 128 MiB, window log covering the larger file", () => {
  assert.equal(zstdWindowLog(100 * MiB), undefined);
  assert.equal(zstdWindowLog(129 * MiB), 28);
  assert.equal(zstdWindowLog(600 * MiB), 30);
  assert.equal(zstdWindowLog(8 * 1024 * MiB), 31);
});

test("bsdiff refuses a layer above the memory-derived limit and suggests xdelta3 or zstd", () => {
  const limit = bsdiffLimit();
  assert.ok(limit > 0);
  assert.equal(methodFits("bsdiff", limit + 1), false);
  assert.equal(methodFits("xdelta3", limit + 1), true);
  assert.throws(
    () => checkBsdiff(limit * 2, "sha256:abc"),
    (e: { code?: string; message?: string; hint?: string }) =>
      e.code === "DELTA_BSDIFF_TOO_LARGE" &&
      e.message?.includes(`${BSDIFF_MEMORY_FACTOR}×`) === true &&
      /xdelta3/.test(e.hint ?? "") &&
      /zstd/.test(e.hint ?? ""),
  );
  checkBsdiff(1024, "sha256:abc");
});

test("bsdiff is bounded whatever the free memory; above the bound -m bsdiff falls back to xdelta3 and says why", () => {
  assert.ok(bsdiffLimit() <= BSDIFF_MAX_BASE);
  assert.deepEqual(pickMethod("bsdiff", 1 * MiB, 1 * MiB, MiB), { method: "bsdiff" });
  const big = pickMethod("bsdiff", 400 * MiB, 400 * MiB, 400 * MiB);
  assert.equal(big.method, "xdelta3");
  assert.match(
    big.reason ?? "",
    /bsdiff fell back to xdelta3: the base layer \(400\.0 MiB\) is above bsdiff's limit/,
  );
  assert.deepEqual(
    pickMethod("zstd", 400 * MiB, 400 * MiB, 0),
    { method: "zstd" },
    "no auto logic for an explicit method",
  );
});

test("auto picks one method per layer by similarity and size, and says why", () => {
  const small = pickMethod("auto", AUTO_BSDIFF_MAX, AUTO_BSDIFF_MAX / 2, AUTO_BSDIFF_MAX / 2);
  assert.equal(small.method, "bsdiff");
  assert.match(small.reason ?? "", /^auto: bsdiff, both layers are at most 1\.0 MiB.*100% of its bytes/);
  const large = pickMethod("auto", 120 * MiB, 115 * MiB, 110 * MiB);
  assert.equal(large.method, "xdelta3");
  assert.match(
    large.reason ?? "",
    /^auto: xdelta3, the layers \(120\.0 MiB → 115\.0 MiB\) are above 1\.0 MiB/,
  );
  const unrelated = pickMethod("auto", 120 * MiB, 100 * MiB, 2 * MiB);
  assert.equal(unrelated.method, undefined, "2 % shared: no delta");
  assert.match(
    unrelated.reason ?? "",
    /^auto: no delta, the layer has 2\.0% of its bytes in paths the base layer also has/,
  );
});

test("the base layer is the one sharing the most file bytes, then closest in size, then same position", () => {
  const paths = (o: Record<string, number>) => new Map(Object.entries(o));
  const newLayer = paths({ "usr/lib/libssl.so.3": 600_000, "usr/share/doc/openssl/changelog": 9_000 });
  const c = (index: number, size: number, p: Record<string, number>, image = "old:1") => ({
    image,
    diffId: `sha256:${String(index).repeat(64).slice(0, 64)}`,
    size,
    index,
    compressed: false,
    paths: paths(p),
  });
  const ssl = c(3, 700_000, { "usr/lib/libssl.so.3": 590_000 });
  const docs = c(4, 10_000, { "usr/share/doc/openssl/changelog": 8_000 });
  const unrelated = c(1, 610_000, { "bin/sh": 100_000 });
  const choice = chooseBase(newLayer, 650_000, 4, [unrelated, docs, ssl]);
  assert.equal(choice?.candidate, ssl);
  assert.match(choice?.reason ?? "", /shares 1 of 2 paths with layer 3 of old:1/);
  assert.equal(chooseBase(newLayer, 650_000, 4, [unrelated]), undefined, "no shared path, no delta");
  const same = c(2, 650_000, { "usr/lib/libssl.so.3": 590_000 });
  const far = c(7, 2_000_000, { "usr/lib/libssl.so.3": 590_000 });
  assert.equal(chooseBase(newLayer, 650_000, 2, [far, same])?.candidate, same, "tie on score: closest size");
  const pos = c(5, 650_000, { "usr/lib/libssl.so.3": 590_000 });
  assert.equal(chooseBase(newLayer, 650_000, 5, [same, pos])?.candidate, pos, "tie on size: same position");
});
