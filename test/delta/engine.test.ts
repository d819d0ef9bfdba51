/**
 * Delta with the real engine: images built offline from the Debian fixture (v2 upgrades a
 * "package" and changes app modules), created from the daemon, applied back with the base
 * layers taken from the engine, loaded with the identical image ID; skopeo and docker load
 * accept the written docker-archive; inventories as bases; tag guard.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta, createInventory } from "../../src/delta/index.js";
import { CLI_ARGS } from "../helpers/cli.js";
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
    // Assembled in place (package-in-place.ts): metadata first, then the layers as the save
    // streamed them, then the config; the same bytes as the copying writer would have shipped.
    const names3 = execFileSync("tar", ["-tf", pkg3]).toString().trim().split("\n");
    assert.equal(names3[0], "dockpack-delta.json");
    assert.equal(names3.at(-1), "config.json");
    assert.equal(names3.length, 4);
    // Into standard output the package is written by the copying writer: the same members.
    const bytes = execFileSync(
      process.execPath,
      [...CLI_ARGS, "delta", "create", "--base", V1, "-m", "layer", V2, "-"],
      {
        maxBuffer: 1 << 28,
      },
    );
    const viaStdout = execFileSync("tar", ["-tf", "-"], { input: bytes }).toString().trim().split("\n");
    assert.deepEqual([...viaStdout].sort(), [...names3].sort());
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
    // -m layer from the engine assembles the package in place. The engine saves the repeated
    // layer as a symlink to its first copy (read by name). Against a target that has the lower
    // 30 layers, the layers the save streams before their parent cannot be dropped on the way,
    // so they are compressed but not shipped, and the package is written again without them:
    // every member is one the metadata names, and it rebuilds the image.
    const inv = join(dir, "lower.json");
    const diffIds = JSON.parse(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", tag)) as string[];
    writeFileSync(
      inv,
      JSON.stringify({
        format: "dockpack-layer-inventory",
        formatVersion: 1,
        created: new Date().toISOString(),
        images: [
          { ref: "lower", id: `sha256:${"1".repeat(64)}`, repoTags: [], diffIds: diffIds.slice(0, 30) },
        ],
      }),
    );
    const pkg2 = join(dir, "engine.dpd");
    const said: string[] = [];
    const res2 = await createDelta(
      { image: tag, output: pkg2, method: "layer", bases: [inv] },
      { ...r, debug: (m: string) => said.push(m) },
    );
    // the lower 30 and the repeat of layer 3
    assert.equal(res2.metadata.layers.filter((l) => l.ship === "reused").length, 31);
    assert.ok(
      said.some((m) => m.includes("writing the package again")),
      "some lower layers came before their parent in the save",
    );
    const names = execFileSync("tar", ["-tf", pkg2]).toString().trim().split("\n");
    const named = res2.metadata.layers.flatMap((l) => (l.member ? [l.member] : []));
    assert.deepEqual([...names].sort(), ["config.json", "dockpack-delta.json", ...named].sort());
    assert.equal(names[0], "dockpack-delta.json");
    // And with nothing on the target, in place (no layer is left out).
    const pkg3 = join(dir, "engine-all.dpd");
    const res3 = await createDelta({ image: tag, output: pkg3, method: "layer" }, r);
    assert.equal(res3.metadata.layers.filter((l) => l.ship === "duplicate").length, 1);
    assert.equal(execFileSync("tar", ["-tf", pkg3]).toString().trim().split("\n").at(-1), "config.json");
    assert.equal((await applyDelta({ package: pkg3, output: join(dir, "all.tar") }, r)).imageId, image.id);
    const two = { package: pkg2, baseArchives: [`docker-archive:${join(dir, "all.tar")}`], noEngine: true };
    assert.equal((await applyDelta({ ...two, output: join(dir, "two.tar") }, r)).imageId, image.id);
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
