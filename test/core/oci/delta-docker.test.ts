/**
 * `delta create` / `delta apply` with `docker://REF` source and bases (skopeo's transport syntax):
 * images pushed to the test registry by skopeo (the independent client) are read through
 * dockpack's OCI client; the package and the rebuilt image match the ones made from the files.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { silentReporter } from "../../../src/core/output.js";
import { applyDelta, createDelta, deltaInfo } from "../../../src/delta/index.js";
import { openImage } from "../../../src/image/open.js";
import { runCli } from "../../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";
import { versionPair, writeSynth } from "../../image/synthetic.js";

let reg: TestRegistry;
let dir: string;
const r = silentReporter();
before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), "dockpack-delta-docker-"));
  const pair = await versionPair("dockpack-test-deltadocker");
  await writeSynth(pair.v1, join(dir, "v1.tar"));
  await writeSynth(pair.v2, join(dir, "v2.tar"));
  for (const v of ["v1", "v2"])
    execFileSync("skopeo", [
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      `docker-archive:${join(dir, `${v}.tar`)}`,
      `docker://${reg.host}/app:${v}`,
    ]);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await reg?.stop();
});

test("docker://REF opens as an image with the same ID and diff_ids as the archive", async () => {
  const remote = await openImage(`docker://${reg.host}/app:v2`);
  const local = await openImage(join(dir, "v2.tar"));
  try {
    assert.equal(remote.configDigest, local.configDigest);
    assert.deepEqual(
      remote.layers.map((l) => l.diffId),
      local.layers.map((l) => l.diffId),
    );
    assert.deepEqual(remote.repoTags, [`${reg.host}/app:v2`]);
  } finally {
    await remote.close();
    await local.close();
  }
  await assert.rejects(openImage(`docker://${reg.host}/app:nope`), (e: { code: string }) =>
    /^OCI_/.test(e.code),
  );
});

test("delta create from docker:// source and base, apply with a docker:// base: the identical image", async () => {
  const pkg = join(dir, "remote.dpd");
  await createDelta(
    { image: `docker://${reg.host}/app:v2`, output: pkg, bases: [`docker://${reg.host}/app:v1`] },
    r,
  );
  const info = await deltaInfo({ package: pkg });
  const fromFiles = join(dir, "local.dpd");
  await createDelta({ image: join(dir, "v2.tar"), output: fromFiles, bases: [join(dir, "v1.tar")] }, r);
  const local = await deltaInfo({ package: fromFiles });
  assert.equal(info.source.id, local.source.id);
  assert.deepEqual(info.layers, local.layers);
  assert.ok(info.layers.reused + info.layers.delta > 0, JSON.stringify(info.layers));
  // the CLI takes the same references
  const cli = runCli([
    "--json",
    "delta",
    "create",
    "--base",
    `docker://${reg.host}/app:v1`,
    `docker://${reg.host}/app:v2`,
    join(dir, "cli.dpd"),
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  const out = join(dir, "rebuilt.tar");
  await applyDelta(
    { package: pkg, baseArchives: [`docker://${reg.host}/app:v1`], output: out, noEngine: true },
    r,
  );
  const rebuilt = await openImage(out);
  try {
    assert.equal(rebuilt.configDigest, local.source.id);
  } finally {
    await rebuilt.close();
  }
});
