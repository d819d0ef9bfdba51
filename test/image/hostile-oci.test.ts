/**
 * Hostile OCI image layouts: a gzip layer blob corrupted inside its deflate data is a named error
 * of the consumer's own stream — piped or in a pipeline — never an unhandled 'error' event that
 * kills the process with a stack trace (it did in `delta create` measuring a reused layer); blobs
 * that are links out of the layout (/etc/passwd, /dev/zero), fifos or folders are refused before
 * any read; index.json / manifest entries of the wrong JSON type or with forged digests are named
 * IMAGE_MANIFEST_INVALID errors (were INTERNAL_ERROR, or messages without the file).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { silentReporter } from "../../src/core/output.js";
import { createDelta } from "../../src/delta/index.js";
import { openImage } from "../../src/image/open.js";
import { makeImage, makeLayer, pseudoRandom, sha } from "./synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-corrupt-layer-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes an OCI image layout of `layers` (gzip blobs) to `path`; returns the blob path of layer 0. */
function writeLayout(path: string, layers: Buffer[]): string {
  const img = makeImage(layers, []);
  const blobs = join(path, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    writeFileSync(join(blobs, sha(b).slice(7)), b);
    return { digest: sha(b), size: b.length };
  };
  const gz = layers.map((l) => gzipSync(l));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...put(img.config) },
      layers: gz.map((g) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...put(g) })),
    }),
  );
  const m = put(manifest);
  writeFileSync(
    join(path, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...m }],
    }),
  );
  writeFileSync(join(path, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  return join(blobs, sha(gz[0]).slice(7));
}

test("a corrupt gzip layer fails the stream it is piped into, naming the image and layer", async () => {
  const base = await makeLayer([{ path: "bin/big", size: 300_000, seed: 5 }]);
  const app = await makeLayer([{ path: "srv/app", content: pseudoRandom(50_000, 9).toString("hex") }]);
  const good = join(dir, "good");
  const bad = join(dir, "bad");
  writeLayout(good, [base]);
  const blob = writeLayout(bad, [base, app]);
  const bytes = readFileSync(blob);
  for (let i = 100; i < 140; i++) bytes[i] ^= 0x55; // inside the deflate data
  writeFileSync(blob, bytes);

  const img = await openImage(`oci:${bad}`);
  try {
    const sink = new PassThrough();
    (await img.openLayer(0)).pipe(sink);
    sink.resume();
    const [err] = (await once(sink, "error").catch((e) => [e])) as [any];
    assert.equal(err.code, "CODEC_DECOMPRESS_FAILED");
    assert.ok(err.message.includes(bad) && err.message.includes("layer 0"), err.message);
  } finally {
    await img.close();
  }

  // delta create measures the reused layer 0 in the background by piping it: a named error
  const copy = join(dir, "bad-copy");
  cpSync(bad, copy, { recursive: true });
  await assert.rejects(
    createDelta(
      { image: `oci:${copy}`, output: join(dir, "out.dpd"), bases: [`oci:${good}`] },
      silentReporter(),
    ),
    (e: any) => {
      assert.notEqual(e.code, "INTERNAL_ERROR", e.message);
      return true;
    },
  );
});

test("blobs linked out of the layout, fifos and folders are refused before any read", async () => {
  const layer = await makeLayer([{ path: "etc/x", content: "x" }]);
  for (const [name, make] of [
    ["passwd", (b: string) => symlinkSync("/etc/passwd", b)],
    ["devzero", (b: string) => symlinkSync("/dev/zero", b)],
    ["relative", (b: string) => symlinkSync("../../../../../../../../etc/hostname", b)],
    ["fifo", (b: string) => execFileSync("mkfifo", [b])],
    ["folder", (b: string) => mkdirSync(b)],
  ] as const) {
    const layout = join(dir, `blob-${name}`);
    const blob = writeLayout(layout, [layer]);
    unlinkSync(blob);
    make(blob);
    await assert.rejects(
      (async () => {
        const img = await openImage(`oci:${layout}`);
        try {
          for await (const _ of await img.openLayer(0)) {
            // drain
          }
        } finally {
          await img.close();
        }
      })(),
      (e: any) => {
        assert.equal(e.code, "IMAGE_MEMBER_INVALID", `${name}: ${e.message}`);
        assert.ok(e.message.includes(layout), e.message);
        return true;
      },
    );
  }
  // a link to another blob of the same layout stays readable
  const layout = join(dir, "blob-inside");
  const blob = writeLayout(layout, [layer]);
  cpSync(blob, join(layout, "copy"));
  unlinkSync(blob);
  symlinkSync("../../copy", blob);
  const img = await openImage(`oci:${layout}`);
  await img.close();
});

test("index.json and manifest entries of the wrong type or with forged digests are named errors", async () => {
  const layer = await makeLayer([{ path: "etc/y", content: "y" }]);
  const edits: [string, (index: any) => void][] = [
    ["null entry", (i) => (i.manifests = [null])],
    ["string entry", (i) => (i.manifests = ["sha256:abc"])],
    ["number ref name", (i) => (i.manifests[0].annotations = { "org.opencontainers.image.ref.name": 5 })],
    ["digest with ..", (i) => (i.manifests[0].digest = "sha256:../../../../etc/passwd")],
    ["digest object", (i) => (i.manifests[0].digest = { a: 1 })],
    ["no digest", (i) => delete i.manifests[0].digest],
  ];
  for (const [name, edit] of edits) {
    const layout = join(dir, `index-${name.replace(/\W+/g, "-")}`);
    writeLayout(layout, [layer]);
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
    edit(index);
    writeFileSync(join(layout, "index.json"), JSON.stringify(index));
    const open = async () => (await openImage(`oci:${layout}`)).close();
    if (name === "number ref name") {
      await open(); // a non-string annotation is ignored, as unknown annotations are
      continue;
    }
    await assert.rejects(open(), (e: any) => {
      assert.equal(e.code, "IMAGE_MANIFEST_INVALID", `${name}: ${e.message}`);
      assert.ok(e.message.includes(layout), e.message);
      return true;
    });
  }
});
