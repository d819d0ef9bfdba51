/**
 * features publish/info against real registries, checked with the official devcontainer CLI
 * (dev dependency): it reads what dockpack publishes, dockpack reads what it publishes, and both
 * set the same tags and collection layout for the same 10-feature collection.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { openRepository } from "../../../src/core/oci/client.js";
import type { ImageManifest } from "../../../src/core/oci/media-types.js";
import { silentReporter } from "../../../src/core/output.js";
import { featureInfo, publishFeatures, tagsToPublish } from "../../../src/features/publish.js";
import { metaFor, writeFeature } from "../../features/helpers.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";

const DEVCONTAINER = createRequire(import.meta.url).resolve("@devcontainers/cli/devcontainer.js");
const run = promisify(execFile);
const devcontainer = (args: string[]) =>
  run(process.execPath, [DEVCONTAINER, ...args], { maxBuffer: 16 * 1024 * 1024 });

let ours: TestRegistry;
let theirs: TestRegistry;
let dir: string;
const IDS = Array.from({ length: 10 }, (_, i) => `feat${i}`);

before(async () => {
  [ours, theirs] = await Promise.all([startRegistry(), startRegistry()]);
  dir = await mkdtemp(join(tmpdir(), "dockpack-publish-"));
  const src = join(dir, "src");
  await mkdir(src);
  for (const [i, id] of IDS.entries())
    await writeFeature(src, id, {
      meta: metaFor(id, { version: `1.${i}.0`, ...(i === 3 ? { legacyIds: ["old3"] } : {}) }),
    });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await Promise.all([ours?.stop(), theirs?.stop()]);
});

test("tags move only forward (as the devcontainer CLI computes them)", () => {
  assert.deepEqual(tagsToPublish("1.2.3", []), ["1", "1.2", "1.2.3", "latest"]);
  assert.deepEqual(tagsToPublish("1.5.0", ["2", "2.0", "2.0.0", "latest"]), ["1", "1.5", "1.5.0"]);
  assert.deepEqual(tagsToPublish("2.0.1", ["2", "2.0", "2.0.0", "2.1.0", "latest"]), ["2.0", "2.0.1"]);
  assert.equal(tagsToPublish("2.0.0", ["2.0.0"]), undefined);
});

test("publish 10 features: same tags and layout as the official CLI; each reads the other's", async () => {
  const res = await publishFeatures(
    { target: join(dir, "src"), registry: ours.host, namespace: "acme/features" },
    silentReporter(),
  );
  assert.equal(res.features.length, 10);
  // the official CLI publishes the same collection to the second registry (http only for "localhost")
  const theirsHost = `localhost:${theirs.port}`;
  await devcontainer([
    "features",
    "publish",
    join(dir, "src"),
    "--registry",
    theirsHost,
    "--namespace",
    "acme/features",
    "--log-level",
    "info",
  ]);
  for (const id of [...IDS, "old3"]) {
    const a = await openRepository(`${ours.host}/acme/features/${id}`, { credentials: null });
    const b = await openRepository(`${theirs.host}/acme/features/${id}`, { credentials: null });
    assert.deepEqual((await a.repo.listTags()).sort(), (await b.repo.listTags()).sort(), id);
    const ma = (await a.repo.getManifest("latest")).json as unknown as ImageManifest;
    const mb = (await b.repo.getManifest("latest")).json as unknown as ImageManifest;
    assert.deepEqual(ma.config, mb.config);
    assert.equal(ma.layers[0].mediaType, mb.layers[0].mediaType);
    assert.deepEqual(ma.layers[0].annotations, mb.layers[0].annotations);
    const aa = ma.annotations ?? {};
    const ab = mb.annotations ?? {};
    assert.deepEqual(Object.keys(aa).sort(), Object.keys(ab).sort());
    assert.deepEqual(JSON.parse(aa["dev.containers.metadata"]), JSON.parse(ab["dev.containers.metadata"]));
    await Promise.all([a.repo.transport.close(), b.repo.transport.close()]);
  }
  const ca = await openRepository(`${ours.host}/acme/features`, { credentials: null });
  const cb = await openRepository(`${theirs.host}/acme/features`, { credentials: null });
  assert.deepEqual(await ca.repo.listTags(), await cb.repo.listTags());
  const ma = (await ca.repo.getManifest("latest")).json as unknown as ImageManifest;
  const mb = (await cb.repo.getManifest("latest")).json as unknown as ImageManifest;
  assert.deepEqual(ma.config, mb.config);
  assert.deepEqual(ma.layers[0].mediaType, mb.layers[0].mediaType);
  assert.deepEqual(ma.layers[0].annotations, mb.layers[0].annotations);

  // the official CLI reads ours
  const oursHost = `localhost:${ours.port}`;
  const info = await devcontainer([
    "features",
    "info",
    "manifest",
    `${oursHost}/acme/features/feat2:1`,
    "--output-format",
    "json",
  ]);
  const parsed = JSON.parse(info.stdout);
  assert.equal(
    parsed.manifest.layers[0].annotations["org.opencontainers.image.title"],
    "devcontainer-feature-feat2.tgz",
  );
  assert.match(parsed.canonicalId, /acme\/features\/feat2@sha256:/);
  const tags = JSON.parse(
    (
      await devcontainer([
        "features",
        "info",
        "tags",
        `${oursHost}/acme/features/feat2`,
        "--output-format",
        "json",
      ])
    ).stdout,
  );
  assert.deepEqual(tags.publishedTags.sort(), ["1", "1.2", "1.2.0", "latest"]);
  // and dockpack reads theirs
  const back = await featureInfo({ reference: `${theirs.host}/acme/features/feat2:1.2` });
  assert.equal(back.metadata?.id, "feat2");
  assert.deepEqual(back.publishedTags.sort(), ["1", "1.2", "1.2.0", "latest"]);

  // publishing the same versions again sets no tag
  const again = await publishFeatures(
    { target: join(dir, "src", "feat0"), registry: ours.host, namespace: "acme/features" },
    silentReporter(),
  );
  assert.deepEqual(again.features[0].publishedTags, []);
});
