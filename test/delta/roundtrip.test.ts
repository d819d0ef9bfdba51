/**
 * Delta create/apply from files (no engine): every method × every compression round-trips to
 * the identical image ID; duplicates and empty layers; 60 layers; list/info read metadata only.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CODECS } from "../../src/core/codec.js";
import { digestStream } from "../../src/core/digest.js";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta, deltaInfo, deltaList } from "../../src/delta/index.js";
import { openImage } from "../../src/image/open.js";
import { makeImage, makeLayer, type SynthImage, versionPair, writeSynth } from "../image/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-test-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const r = silentReporter();

/** Reads an image file back and checks the image ID, tags and every layer's bytes. */
async function assertSameImage(file: string, want: SynthImage, tags = want.tags) {
  const image = await openImage(file);
  try {
    assert.equal(image.configDigest, want.id, "identical image ID");
    assert.deepEqual(image.repoTags, tags);
    for (const l of image.layers)
      assert.equal((await digestStream(await image.openLayer(l.index))).digest, l.diffId);
  } finally {
    await image.close();
  }
}

let pair: { v1: SynthImage; v2: SynthImage };
let v1File: string;
let v2File: string;
test.before(async () => {
  pair = await versionPair("dockpack-test-rt");
  v1File = join(dir, "v1.tar");
  v2File = join(dir, "v2.tar");
  await writeSynth(pair.v1, v1File);
  await writeSynth(pair.v2, v2File, "docker-archive-oci"); // the Docker ≥ 25 layout as source
});

for (const method of ["xdelta3", "bsdiff", "zstd", "layer", "auto"] as const) {
  test(`method ${method} × every compression round-trips to the identical image`, async () => {
    for (const compression of CODECS) {
      const pkg = join(dir, `${method}-${compression}.dpd`);
      const res = await createDelta({ image: v2File, output: pkg, bases: [v1File], method, compression }, r);
      const ships = res.metadata.layers.map((l) => l.ship);
      assert.equal(ships[0], "reused", "shared base layer is not shipped");
      assert.equal(ships[2], "reused", "the empty layer is in the base too");
      if (method === "layer") assert.equal(ships[1], "full");
      else
        assert.equal(ships[1], "delta", `${method}/${compression}: the changed app layer ships as a delta`);
      assert.equal(ships[3], "full", "a new layer with no similar base ships whole");
      if (method === "auto")
        assert.match(
          res.metadata.layers[1].methodReason ?? "",
          /^auto: (bsdiff|xdelta3), /,
          "auto says its choice",
        );
      const out = join(dir, `${method}-${compression}.tar`);
      const applied = await applyDelta({ package: pkg, baseArchives: [v1File], output: out }, r);
      assert.equal(applied.imageId, pair.v2.id);
      await assertSameImage(out, pair.v2);
    }
  });
}

test("a delta package is far smaller than the image, and list/info report it", async () => {
  const pkg = join(dir, "info.dpd");
  const res = await createDelta({ image: v2File, output: pkg, bases: [v1File], measureGzip: true }, r);
  const info = await deltaInfo({ package: pkg });
  assert.equal(info.formatVersion, 1);
  assert.equal(info.source.id, pair.v2.id);
  assert.deepEqual(info.source.repoTags, ["dockpack-test-rt:2"]);
  assert.equal(info.method, "xdelta3");
  assert.equal(info.compression, "zstd");
  assert.deepEqual(info.layers, { total: 4, reused: 2, delta: 1, full: 1, duplicate: 0 });
  assert.equal(info.packageSize, res.packageSize);
  assert.ok(
    info.fractionOfDockerSave < 0.25,
    `package ${info.packageSize} vs docker save ${info.dockerSaveSize}`,
  );
  assert.ok(info.dockerSaveGzipSize && info.fractionOfDockerSaveGzip !== undefined);
  const list = await deltaList({ package: pkg });
  assert.equal(list.layers.length, 4);
  assert.match(list.layers[1].how, /^xdelta3 delta against sha256:/);
  assert.match(list.layers[0].how, /^reused/);
  assert.ok(list.layers[1].packageBytes > 0 && list.layers[1].packageBytes < list.layers[1].size / 4);
});

test("no base: every layer ships whole; repeated layers ship once; rename on apply", async () => {
  const a = await makeLayer([{ path: "a.txt", content: "a" }]);
  const empty = await makeLayer([]);
  const img = makeImage([a, empty, empty, a], ["dockpack-test-dup:1"]);
  const file = join(dir, "dup.tar");
  await writeSynth(img, file);
  const pkg = join(dir, "dup.dpd");
  const res = await createDelta({ image: file, output: pkg }, r);
  assert.deepEqual(
    res.metadata.layers.map((l) => l.ship),
    ["full", "full", "duplicate", "duplicate"],
  );
  const out = join(dir, "dup-out.tar");
  await applyDelta({ package: pkg, output: out, imageName: "dockpack-test-renamed" }, r);
  await assertSameImage(out, img, ["dockpack-test-renamed:latest"]);
});

test("an image with 60 layers against a base sharing 50 of them", async () => {
  const layers: Buffer[] = [];
  for (let i = 0; i < 60; i++)
    layers.push(await makeLayer([{ path: `l${i}/f.txt`, content: `layer ${i}\n`.repeat(50) }]));
  const base = makeImage(layers.slice(0, 50), ["dockpack-test-60:base"]);
  const img = makeImage(layers, ["dockpack-test-60:1"]);
  const baseFile = join(dir, "60-base.tar");
  const file = join(dir, "60.tar");
  await writeSynth(base, baseFile);
  await writeSynth(img, file, "oci-archive");
  const pkg = join(dir, "60.dpd");
  const res = await createDelta(
    { image: `oci-archive:${file}`, output: pkg, bases: [baseFile], method: "auto" },
    r,
  );
  assert.equal(res.metadata.layers.filter((l) => l.ship === "reused").length, 50);
  const out = join(dir, "60-out.tar");
  await applyDelta({ package: pkg, output: out, baseArchives: [baseFile], format: "docker-archive-oci" }, r);
  await assertSameImage(out, img);
});

test("dry run writes nothing and says its sizes are estimates", async () => {
  const pkg = join(dir, "dry.dpd");
  const res = await createDelta({ image: v2File, output: pkg, bases: [v1File], dryRun: true }, r);
  assert.equal(res.dryRun, true);
  assert.equal(res.estimated, true);
  await assert.rejects(deltaInfo({ package: pkg }), (e: any) => e.code === "DELTA_PACKAGE_NOT_FOUND");
  assert.match(res.metadata.layers[1].reason ?? "", /estimate: delta likely/);
});

test("bases as an OCI layout with gzip layers (skopeo) and a zstd OCI archive: decompressed on the fly", async () => {
  const gz = join(dir, "v1-oci-gzip");
  execFileSync("skopeo", [
    "copy",
    "-q",
    "--dest-compress-format",
    "gzip",
    `docker-archive:${v1File}`,
    `oci:${gz}:v1`,
  ]);
  const pkg = join(dir, "oci-base.dpd");
  const res = await createDelta({ image: v2File, output: pkg, bases: [`oci:${gz}:v1`] }, r);
  assert.deepEqual(
    res.metadata.layers.map((l) => l.ship),
    ["reused", "delta", "reused", "full"],
  );
  const zst = join(dir, "v1-oci.zst.tar");
  execFileSync("skopeo", [
    "copy",
    "-q",
    "--dest-compress-format",
    "zstd",
    `docker-archive:${v1File}`,
    `oci-archive:${zst}`,
  ]);
  const out = join(dir, "oci-base.tar");
  await applyDelta({ package: pkg, output: out, baseArchives: [`oci-archive:${zst}`] }, r);
  await assertSameImage(out, pair.v2);
});
