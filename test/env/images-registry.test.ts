/**
 * The images of an environment package through a real registry (issue 16, registry bullet), on
 * the real engine: a package with two images (one built from a Dockerfile, one a re-tagged
 * fixture) is pushed; skopeo (an independent client) and the engine (`docker pull`) read the
 * images as ordinary images; with the test images removed from the engine (only their tags),
 * `packages import REF` + `env up --offline` start the environment with identical image IDs and
 * no pull, fetching only the layers the engine lacks (blob GETs counted by a proxy in front of
 * the registry); a second import when the engine has the previous version's layers fetches only
 * the one layer it lacks; a layer blob changed in the registry's storage is refused
 * (`DIGEST_MISMATCH`) before anything is created or loaded.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { toDockpackError } from "../../src/core/errors.js";
import { createInventory } from "../../src/delta/inventory.js";
import {
  createEnvironment,
  environmentBuild,
  environmentUp,
  exportEnvironment,
  validatePackage,
} from "../../src/env/index.js";
import { listRemotePackages, pullPackage, pushPackage } from "../../src/env/registry.js";
import { importFromRegistry } from "../../src/env/registry-import.js";
import { ENV_IMAGE_MEDIA_TYPE } from "../../src/env/registry-layout.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from "../helpers/registry.js";
import { cleanupPrefix, sh } from "./engine-helpers.js";
import { assertStartedWithoutPull, imageId, rmTag, writeImagesApp } from "./images-app.js";

const project = `dpregimg${Math.random().toString(36).slice(2, 7)}`;
const SIDE = `${project}/side:1`;
const PREV = `${project}/prev:1`;
let work = "";
let app = "";
let reg: TestRegistry | undefined;
let proxy: TestProxy | undefined;
let ref = "";
let appDiffIds: string[] = [];
const ids: Record<string, string> = {};
let pkg = "";
let manifests: string[] = [];
/** Blobs of the package's own image members (delta packages) in the artifact. */
let imageMemberBlobs: string[] = [];

/** Blob GETs the proxy saw for `digests` since the last reset. */
function blobGets(digests: string[]): number {
  const want = new Set(digests);
  return (proxy?.requests ?? []).filter((l) => {
    const m = /^GET \/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})/.exec(l);
    return m !== null && want.has(m[1]);
  }).length;
}

before(async () => {
  if (!engineAnswers()) return;
  const busybox = await ensureFixture("busybox");
  sh("docker", ["tag", busybox, SIDE]);
  work = sh("mktemp", ["-d", "/tmp/dockpack-regimg-XXXXXX"]).trim();
  app = join(work, "app");
  // the previous version has the same first layer; the app build reuses it from the build cache
  const prev = `FROM ${busybox}\nCOPY a.txt /a.txt\n`;
  await writeImagesApp(app, project, SIDE, {
    "Dockerfile.prev": prev,
    Dockerfile: `${prev}COPY hello.txt /hello.txt\nLABEL io.dockpack.test=${project}\n`,
    "a.txt": `first layer of ${project}\n`,
    "hello.txt": `hello from ${project}\n`,
  });
  sh("docker", ["build", "-q", "-t", PREV, "-f", join(app, "svc", "Dockerfile.prev"), join(app, "svc")]);
  sh("docker", ["save", "-o", join(work, "prev.tar"), PREV]);
  reg = await startRegistry();
  proxy = await startProxy(reg);
  ref = `${proxy.host}/${project}/env:main`;
});

after(async () => {
  await proxy?.stop();
  await reg?.stop();
  if (!engineAnswers() || !work) return;
  cleanupPrefix(project, work);
  for (const b of ["src", "dst", "dst2"]) rmTag(`${project}-${b}_app:latest`);
  rmTag(SIDE);
  rmTag(PREV);
  if (reg) rmTag(`${reg.host}/${project}/env:main-image-0`);
});

test("push with images: ordinary images skopeo and the engine read; import REF fetches only missing layers; same IDs, no pull", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(reg && proxy);
  await createEnvironment({ cwd: app, branch: "src" });
  await environmentBuild({ cwd: app, branch: "src" });
  ids.app = imageId(`${project}-src_app:latest`) as string;
  ids.side = imageId(SIDE) as string;
  appDiffIds = JSON.parse(
    sh("docker", ["image", "inspect", "-f", "{{json .RootFS.Layers}}", ids.app]),
  ) as string[];
  const prevDiffIds = JSON.parse(
    sh("docker", ["image", "inspect", "-f", "{{json .RootFS.Layers}}", PREV]),
  ) as string[];
  assert.equal(appDiffIds.length, prevDiffIds.length + 1);
  assert.deepEqual(appDiffIds.slice(0, -1), prevDiffIds, "the app build reused the previous layers");

  const exp = await exportEnvironment({
    cwd: app,
    branch: "src",
    outputDir: join(work, "packages"),
    images: { mode: "all" },
  });
  const pushed = await pushPackage({ package: exp.package, reference: ref });
  const images = pushed.images?.images ?? [];
  pkg = exp.package;
  manifests = images.map((i) => i.manifest);
  assert.deepEqual(
    images.map((i) => [i.id, i.tag]),
    [
      [ids.app, "main-image-0"],
      [ids.side, "main-image-1"],
    ],
  );
  assert.deepEqual(pushed.images?.skipped, []);

  // an independent client reads them as ordinary images: manifest, config = the image ID, layers = diff_ids
  const skopeo = (args: string[]) => sh("skopeo", [...args, "--tls-verify=false"]);
  for (const [n, id] of [ids.app, ids.side].entries()) {
    const target = `docker://${reg.host}/${project}/env:main-image-${n}`;
    const raw = JSON.parse(skopeo(["inspect", "--raw", target])) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    assert.equal(raw.config.digest, id);
    const info = JSON.parse(skopeo(["inspect", target])) as { Layers: string[]; Digest: string };
    assert.equal(info.Digest, images[n].manifest);
    assert.deepEqual(
      info.Layers,
      JSON.parse(sh("docker", ["image", "inspect", "-f", "{{json .RootFS.Layers}}", id])),
    );
  }
  // the package's own image members are layers of their own in the artifact
  const artifact = JSON.parse(skopeo(["inspect", "--raw", `docker://${reg.host}/${project}/env:main`])) as {
    layers: { mediaType: string; digest: string; annotations?: Record<string, string> }[];
    annotations: Record<string, string>;
  };
  assert.deepEqual(
    artifact.layers
      .filter((l) => l.mediaType === ENV_IMAGE_MEDIA_TYPE)
      .map((l) => l.annotations?.["org.opencontainers.image.title"]),
    (exp.metadata.images ?? []).map((i) => i.member),
  );
  assert.equal(artifact.annotations["dev.dockpack.images"], "main-image-0,main-image-1");
  imageMemberBlobs = artifact.layers.filter((l) => l.mediaType === ENV_IMAGE_MEDIA_TYPE).map((l) => l.digest);
  // `packages list` shows the package, not its image tags
  const list = await listRemotePackages({ repository: `${reg.host}/${project}/env` });
  assert.deepEqual(
    list.packages.map((p) => p.tag),
    ["main"],
  );
  // `packages pull` still gives the identical, valid package file (image section included)
  const pulled = await pullPackage({ reference: ref, outputDir: join(work, "pulled") });
  assert.ok(readFileSync(pulled.package).equals(readFileSync(exp.package)), "pull gives the identical file");
  assert.equal((await validatePackage({ package: pulled.package })).valid, true);
  // (the CLI runs synchronously, so it goes to the registry itself, not through this process's proxy)
  const cli = runCli(["--json", "packages", "push", exp.package, `${reg.host}/${project}/env:main`]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(
    JSON.parse(cli.stdout).images?.uploadedBytes,
    0,
    `a second push sends no image blob: ${cli.stdout}`,
  );

  // only this test's tags leave the engine: the built image and its previous version go, the
  // fixture (the side image and the shared base layer) stays
  rmTag(`${project}-src_app:latest`);
  rmTag(PREV);
  assert.equal(imageId(ids.app), null);
  proxy.requests.length = 0;
  const since = Math.floor(Date.now() / 1000) - 1;
  const res = await importFromRegistry({ cwd: app, reference: ref, targetBranch: "dst" });
  assert.deepEqual(
    (res.registryImages ?? []).map((r) => [r.id, r.loaded, r.fetchedLayers, r.presentLayers]),
    [
      [ids.app, true, 2, appDiffIds.length - 2],
      [ids.side, false, 0, 0],
    ],
  );
  assert.equal(blobGets(appDiffIds.slice(0, -2)), 0, "the base layer the engine has is not fetched");
  assert.equal(blobGets(appDiffIds.slice(-2)), 2, "each missing layer is fetched once");
  assert.equal(imageMemberBlobs.length, 2);
  assert.equal(blobGets(imageMemberBlobs), 0, "the package's own image section is not downloaded");
  assert.deepEqual(
    (res.images ?? []).map((i) => [i.id, i.loaded]),
    [
      [ids.app, false],
      [ids.side, false],
    ],
    "the import found both images in the engine: nothing rebuilt from the package's deltas",
  );
  assert.equal(imageId(`${project}-dst_app:latest`), ids.app);
  await environmentUp({ cwd: app, branch: "dst", offline: true });
  assertStartedWithoutPull(`${project}-dst`, ids, project, since);
  cleanupPrefix(`${project}-dst`);
});

test("a second import when the engine has the previous version's layers fetches only the missing one", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(proxy && ids.app, "needs the first test");
  rmTag(`${project}-dst_app:latest`);
  assert.equal(imageId(ids.app), null);
  sh("docker", ["load", "-q", "-i", join(work, "prev.tar")]);
  proxy.requests.length = 0;
  const res = await importFromRegistry({ cwd: app, reference: ref, targetBranch: "dst2" });
  assert.deepEqual(
    (res.registryImages ?? []).map((r) => [r.id, r.loaded, r.fetchedLayers]),
    [
      [ids.app, true, 1],
      [ids.side, false, 0],
    ],
  );
  assert.equal(blobGets(appDiffIds.slice(0, -1)), 0);
  assert.equal(blobGets(appDiffIds.slice(-1)), 1);
  assert.equal(blobGets(imageMemberBlobs), 0);
  assert.equal(imageId(`${project}-dst2_app:latest`), ids.app);

  // the engine itself pulls the pushed image as an ordinary image, with the same ID (from the
  // registry directly: `sh` blocks this process, and with it the proxy)
  assert.ok(reg);
  const tag = `${reg.host}/${project}/env:main-image-0`;
  sh("docker", ["pull", "-q", tag]);
  assert.equal(imageId(tag), ids.app);
  rmTag(tag);
});

test("a missing-from package whose bases only the receiver has: that image is not pushed, and the push says so", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(reg && ids.app, "needs the first tests");
  // the receiver has the previous version (base + first layer): the package ships the top layer only
  const inventory = join(work, "receiver.json");
  await createInventory({ images: [PREV, SIDE], output: inventory });
  sh("docker", ["tag", ids.app, `${project}-src_app:latest`]);
  const exp = await exportEnvironment({
    cwd: app,
    branch: "src",
    outputDir: join(work, "packages-inv"),
    images: { mode: "missing-from", inventory },
  });
  // now this engine lacks the app image and its first layer
  rmTag(`${project}-src_app:latest`);
  rmTag(`${project}-dst2_app:latest`);
  rmTag(PREV);
  assert.equal(imageId(ids.app), null);
  const pushed = await pushPackage({ package: exp.package, reference: `${reg.host}/${project}/env:inv` });
  assert.deepEqual(
    pushed.images?.skipped.map((x) => x.id),
    [ids.app],
  );
  assert.match(pushed.images?.skipped[0].reason ?? "", /base/i);
  assert.deepEqual(
    pushed.images?.images.map((i) => [i.id, i.tag]),
    [[ids.side, "inv-image-1"]],
  );
});

test("a push from an engine without the image rebuilds it from the package: the same image manifest", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(reg && pkg, "needs the first test");
  rmTag(`${project}-dst2_app:latest`);
  assert.equal(imageId(ids.app), null);
  const again = await pushPackage({ package: pkg, reference: `${reg.host}/${project}/env:rebuilt` });
  assert.deepEqual(
    again.images?.images.map((i) => [i.tag, i.manifest]),
    [
      ["rebuilt-image-0", manifests[0]],
      ["rebuilt-image-1", manifests[1]],
    ],
  );
  assert.equal(again.images?.uploadedBytes, 0, "every blob was there");
  assert.equal(imageId(ids.app), null, "the rebuild did not load anything into the engine");
});

test("a registry layer whose bytes were changed is refused before anything is created or loaded", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(reg && ids.app, "needs the first test");
  assert.equal(imageId(ids.app), null);
  // flip one byte of the top layer's blob in the registry's own storage (it serves it as is)
  const hex = (appDiffIds.at(-1) as string).slice(7);
  const blob = join(reg.dir, "storage/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
  const bytes = readFileSync(blob);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(blob, bytes);
  await assert.rejects(importFromRegistry({ cwd: app, reference: ref, targetBranch: "dst3" }), (e) => {
    assert.equal(toDockpackError(e).code, "DIGEST_MISMATCH");
    return true;
  });
  assert.equal(imageId(ids.app), null, "nothing loaded");
  assert.equal(sh("git", ["branch", "--list", "dst3"], app).trim(), "", "no branch created");
  assert.equal(sh("docker", ["volume", "ls", "-q", "--filter", `name=${project}-dst3`]).trim(), "");
});
