/** src/image: read and write docker-archive (Docker < 25 and ≥ 25 layouts), OCI layout and OCI archive. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { digestStream } from "../../src/core/digest.js";
import { openImage, parseImageRef } from "../../src/image/open.js";
import { needsEngine } from "../helpers/engine.js";
import { sha, versionPair, writeSynth } from "./synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-image-test-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function checkRoundTrip(ref: string, expectId: string | null, expectLayers: Buffer[]) {
  const image = await openImage(ref);
  try {
    // skopeo rewrites the config when it converts to OCI (null: only the layers must match).
    if (expectId) assert.equal(image.configDigest, expectId);
    assert.deepEqual(
      image.layers.map((l) => l.diffId),
      expectLayers.map((l) => sha(l)),
    );
    for (const l of image.layers) {
      const d = await digestStream(await image.openLayer(l.index));
      assert.equal(d.digest, l.diffId, `layer ${l.index} bytes match diff_id`);
    }
  } finally {
    await image.close();
  }
}

test("docker-archive (Docker < 25 layout) round-trips config bytes, tags and layers, also gzip/zstd-compressed", async () => {
  const { v2 } = await versionPair("dockpack-test-img");
  const file = join(dir, "legacy.tar");
  await writeSynth(v2, file, "docker-archive");
  await checkRoundTrip(`docker-archive:${file}`, v2.id, v2.layers);
  await checkRoundTrip(file, v2.id, v2.layers);
  // `docker save | gzip` and `| zstd` files are read too (decompressed to a temp file first).
  execFileSync("sh", ["-c", `gzip -c ${file} > ${file}.gz && zstd -q -c ${file} > ${file}.zst`]);
  await checkRoundTrip(`${file}.gz`, v2.id, v2.layers);
  await checkRoundTrip(`docker-archive:${file}.zst`, v2.id, v2.layers);
  const image = await openImage(file);
  assert.deepEqual(image.repoTags, ["dockpack-test-img:2"]);
  assert.equal(image.format, "docker-archive");
  await image.close();
});

test("Docker ≥ 25 layout (OCI layout + manifest.json) and OCI archive are read", async () => {
  const { v2 } = await versionPair("dockpack-test-img");
  const d25 = join(dir, "d25.tar");
  await writeSynth(v2, d25, "docker-archive-oci");
  await checkRoundTrip(`docker-archive:${d25}`, v2.id, v2.layers);
  const oci = join(dir, "oci.tar");
  await writeSynth(v2, oci, "oci-archive");
  await checkRoundTrip(`oci-archive:${oci}`, v2.id, v2.layers);
  await checkRoundTrip(oci, v2.id, v2.layers); // detected without prefix
});

test("skopeo reads what we write and we read skopeo's OCI layouts with gzip and zstd layers", async () => {
  const { v1 } = await versionPair("dockpack-test-img");
  const file = join(dir, "for-skopeo.tar");
  await writeSynth(v1, file, "docker-archive");
  const info = JSON.parse(
    execFileSync("skopeo", ["inspect", "--raw", "--config", `docker-archive:${file}`]).toString(),
  );
  assert.equal(info.config.Labels["org.example.version"], "v1");
  execFileSync("skopeo", ["inspect", `docker-archive:${file}`], { stdio: "pipe" });
  const gz = join(dir, "oci-gzip");
  execFileSync("skopeo", [
    "copy",
    "-q",
    "--dest-compress-format",
    "gzip",
    `docker-archive:${file}`,
    `oci:${gz}:latest`,
  ]);
  await checkRoundTrip(`oci:${gz}:latest`, null, v1.layers);
  const image = await openImage(`oci:${gz}`);
  assert.ok(image.layers.some((l) => l.codec === "gzip"));
  await image.close();
  const zst = join(dir, "oci-zstd.tar");
  execFileSync("skopeo", [
    "copy",
    "-q",
    "--dest-compress-format",
    "zstd",
    `docker-archive:${file}`,
    `oci-archive:${zst}:v1`,
  ]);
  await checkRoundTrip(`oci-archive:${zst}`, null, v1.layers);
});

test("bad input: a truncated archive, a missing file, a file that is no image", async () => {
  const { v1 } = await versionPair("dockpack-test-img");
  const file = join(dir, "trunc.tar");
  await writeSynth(v1, file, "docker-archive");
  truncateSync(file, Math.floor(statSync(file).size / 2));
  await assert.rejects(
    openImage(file),
    (e: any) => e.code === "ARCHIVE_TRUNCATED" && e.message.includes(file),
  );
  await assert.rejects(openImage(join(dir, "nope.tar")), (e: any) => e.code === "IMAGE_NOT_FOUND");
  await assert.rejects(openImage(`oci:${join(dir, "nodir")}`), (e: any) => e.code === "IMAGE_NOT_FOUND");
  const notImage = join(dir, "plain.tar");
  execFileSync("tar", ["-cf", notImage, "-C", dir, "trunc.tar"]);
  await assert.rejects(openImage(notImage), (e: any) => e.code === "IMAGE_FORMAT_UNKNOWN");
});

test("references: transports and selection", async () => {
  assert.deepEqual(await parseImageRef("docker-daemon:busybox:1"), {
    transport: "docker-daemon",
    path: "busybox:1",
    raw: "docker-daemon:busybox:1",
  });
  assert.equal((await parseImageRef("alpine:3")).transport, "docker-daemon");
  const r = await parseImageRef(`oci:${dir}:latest`);
  assert.equal(r.path, dir);
  assert.equal(r.select, "latest");
});

test("what we write loads into the engine with the same image ID, and reads back from the daemon", async (t) => {
  if (!needsEngine(t)) return;
  const { v1 } = await versionPair("dockpack-test-imgload");
  const file = join(dir, "load.tar");
  await writeSynth(v1, file, "docker-archive");
  try {
    execFileSync("docker", ["load", "-i", file], { stdio: "pipe" });
    const id = execFileSync("docker", ["image", "inspect", "-f", "{{.Id}}", "dockpack-test-imgload:1"])
      .toString()
      .trim();
    assert.equal(id, v1.id);
    await checkRoundTrip("docker-daemon:dockpack-test-imgload:1", v1.id, v1.layers);
  } finally {
    execFileSync("docker", ["rmi", "-f", "dockpack-test-imgload:1"], { stdio: "pipe" });
  }
});
