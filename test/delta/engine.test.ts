/**
 * Delta with the real engine: images built offline from the Debian fixture (v2 upgrades a
 * "package" and changes app modules), created from the daemon, applied back with the base
 * layers taken from the engine, loaded with the identical image ID; skopeo and docker load
 * accept the written docker-archive; inventories as bases; tag guard.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta, createInventory } from "../../src/delta/index.js";
import { needsEngine } from "../helpers/engine.js";
import { makeImage, makeLayer, writeSynth } from "../image/synthetic.js";

const SCRIPT = fileURLToPath(new URL("../../scripts/delta-fixtures.sh", import.meta.url));
const V1 = "dockpack-test/delta-small:1";
const V2 = "dockpack-test/delta-small:2";
const r = silentReporter();
const docker = (...args: string[]) => execFileSync("docker", args, { stdio: "pipe" }).toString().trim();
const idOf = (ref: string) => docker("image", "inspect", "-f", "{{.Id}}", ref);

test("daemon images: create against the old version, rebuild from engine bases, load with the same ID", async (t) => {
  if (!needsEngine(t)) return;
  execFileSync("bash", [SCRIPT, "small"], { stdio: ["ignore", "ignore", "inherit"] });
  const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-engine-"));
  try {
    const v2id = idOf(V2);
    const pkg = join(dir, "v2.dpd");
    const res = await createDelta(
      { image: V2, output: pkg, bases: [`docker-daemon:${V1}`], measureGzip: true },
      r,
    );
    const ships = res.metadata.layers.map((l) => l.ship);
    assert.deepEqual(
      ships,
      ["reused", "reused", "delta", "delta"],
      "Debian base and the cached layer are reused; the package and app layers ship as deltas",
    );
    assert.equal(res.metadata.source.id, v2id);
    assert.ok(
      res.packageSize < res.metadata.totals.dockerSaveGzipSize! * 0.05,
      `package ${res.packageSize} ≤ 5% of docker save | gzip ${res.metadata.totals.dockerSaveGzipSize}`,
    );

    // Written to a file: skopeo and docker load accept it.
    const out = join(dir, "v2.tar");
    const written = await applyDelta({ package: pkg, output: out }, r);
    assert.equal(written.imageId, v2id);
    assert.equal(written.layers.fromBase, 2);
    const inspected = JSON.parse(execFileSync("skopeo", ["inspect", `docker-archive:${out}`]).toString());
    assert.equal(inspected.Labels["org.example.version"], "2");
    assert.equal(inspected.Layers.length, 4);
    assert.match(docker("load", "-i", out), /Loaded image: dockpack-test\/delta-small:2/);

    // The real thing: the target lacks v2 entirely; apply loads it with the identical ID.
    docker("rmi", V2);
    const loaded = await applyDelta({ package: pkg }, r);
    assert.equal(loaded.loaded, true);
    assert.equal(idOf(V2), v2id);
    assert.equal(docker("run", "--rm", V2), "app 2");

    // A tag naming another image is not moved without force.
    await assert.rejects(
      applyDelta({ package: pkg, imageName: V1 }, r),
      (e: any) => e.code === "DELTA_TAG_EXISTS",
    );
    // An inventory written "on the target" lets create skip layers without the target's bytes.
    const inv = join(dir, "target.json");
    const ir = await createInventory({ images: [V1], output: inv }, r);
    assert.equal(ir.layers, 4);
    const pkg2 = join(dir, "inv.dpd");
    const res2 = await createDelta({ image: V2, output: pkg2, bases: [inv], measureGzip: false }, r);
    assert.deepEqual(
      res2.metadata.layers.map((l) => l.ship),
      ["reused", "reused", "full", "full"],
    );
    // -m layer needs no base bytes: the engine base is inspected, not saved, and its entry is
    // what a save would have given; the package still rebuilds the identical image.
    const pkg3 = join(dir, "layer.dpd");
    const res3 = await createDelta({ image: V2, output: pkg3, bases: [V1], method: "layer" }, r);
    assert.deepEqual(
      res3.metadata.layers.map((l) => l.ship),
      ["reused", "reused", "full", "full"],
    );
    assert.deepEqual(
      { ...res3.metadata.bases[0] },
      { ref: V1, kind: "image", id: idOf(V1), repoTags: [V1], diffIds: res.metadata.bases[0].diffIds },
    );
    const out3 = join(dir, "layer.tar");
    assert.equal((await applyDelta({ package: pkg3, output: out3 }, r)).imageId, v2id);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a 60-layer image with an empty and a repeated layer loads from a package with the same ID", async (t) => {
  if (!needsEngine(t)) return;
  const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-engine60-"));
  const tag = "dockpack-test/delta-60:1";
  try {
    const layers: Buffer[] = [];
    for (let i = 0; i < 58; i++)
      layers.push(await makeLayer([{ path: `l${i}/f.txt`, content: `layer ${i}\n`.repeat(20) }]));
    layers.splice(10, 0, await makeLayer([]));
    layers.push(layers[3]);
    const image = makeImage(layers, [tag]);
    assert.equal(layers.length, 60);
    const file = join(dir, "img.tar");
    await writeSynth(image, file);
    const pkg = join(dir, "img.dpd");
    const res = await createDelta({ image: `docker-archive:${file}`, output: pkg }, r);
    assert.equal(res.metadata.layers.filter((l) => l.ship === "duplicate").length, 1);
    const loaded = await applyDelta({ package: pkg }, r);
    assert.equal(loaded.imageId, image.id);
    assert.equal(idOf(tag), image.id);
    assert.equal(JSON.parse(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", tag)).length, 60);
  } finally {
    execFileSync("docker", ["rmi", tag], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the engine's save stream: the docker CLI's failure is an IMAGE_FAILED naming the image, not a cut tar", async (t) => {
  if (!needsEngine(t)) return;
  const { startSave } = await import("../../src/image/save-stream.js");
  const save = await startSave(["dockpack-test/no-such-image-17:0"]);
  save.stream.resume();
  await assert.rejects(
    save.done(),
    (e: { code?: string; message?: string }) =>
      e.code === "IMAGE_FAILED" && /no-such-image-17/.test(e.message ?? ""),
  );
});
