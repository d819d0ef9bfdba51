/**
 * Image pushes through the engine (`targets build --push` uses targets/engine-stream pushImage)
 * carry X-Registry-Auth from dockpack's credential lookup: here a `credHelpers` entry served by a
 * fake docker-credential-test, against a registry behind a Bearer-token proxy. skopeo, an
 * independent client, reads the pushed image back.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { getDocker } from "../../../src/core/docker/client.js";
import { pushImage } from "../../../src/targets/engine-stream.js";
import { ensureFixture } from "../../helpers/fixtures.js";
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from "../../helpers/registry.js";
import { fakeStore, installFakeCredHelper } from "./fake-cred-helper.js";

let reg: TestRegistry;
let proxy: TestProxy;
let dir: string;
const saved = {
  PATH: process.env.PATH,
  DOCKER_CONFIG: process.env.DOCKER_CONFIG,
  FAKE: process.env.FAKE_CRED_DIR,
};
const tags: string[] = [];
before(async () => {
  reg = await startRegistry();
  proxy = await startProxy(reg, { tokenUsers: { carol: "pw" } });
  dir = await mkdtemp(join(tmpdir(), "dockpack-engine-push-"));
  const { bin, store } = await installFakeCredHelper(dir);
  process.env.PATH = `${bin}:${process.env.PATH}`;
  process.env.FAKE_CRED_DIR = store;
  process.env.DOCKER_CONFIG = dir;
  await writeFile(join(dir, "config.json"), JSON.stringify({ credHelpers: { [proxy.host]: "test" } }));
  await ensureFixture("busybox");
});
after(async () => {
  for (const t of tags) execFileSync("docker", ["rmi", t], { stdio: "ignore" });
  process.env.PATH = saved.PATH;
  process.env.DOCKER_CONFIG = saved.DOCKER_CONFIG;
  process.env.FAKE_CRED_DIR = saved.FAKE;
  await rm(dir, { recursive: true, force: true });
  await proxy?.stop();
  await reg?.stop();
});

test("engine push with credentials from a credential helper; a wrong secret fails TARGET_PUSH_FAILED", async () => {
  const ref = `${proxy.host}/enginepush/busybox:${Math.random().toString(36).slice(2, 8)}`;
  execFileSync("docker", ["tag", "dockpack-fixture/busybox:1", ref]);
  tags.push(ref);
  const docker = getDocker();
  await fakeStore(process.env.FAKE_CRED_DIR as string, proxy.host, "carol", "wrong");
  await assert.rejects(
    pushImage(docker, ref, () => undefined),
    (e: { code: string }) => e.code === "TARGET_PUSH_FAILED",
  );
  await fakeStore(process.env.FAKE_CRED_DIR as string, proxy.host, "carol", "pw");
  const lines: string[] = [];
  await pushImage(docker, ref, (l) => lines.push(l));
  assert.ok(
    proxy.requests.some((r) => r.startsWith("GET /token?")),
    "the engine fetched a token",
  );
  // skopeo reads it back from the registry itself (no auth there)
  const inspected = JSON.parse(
    execFileSync("skopeo", [
      "inspect",
      "--tls-verify=false",
      `docker://${ref.replace(proxy.host, reg.host)}`,
    ]).toString(),
  ) as { Digest: string; Layers: string[] };
  assert.match(inspected.Digest, /^sha256:/);
  assert.ok(inspected.Layers.length >= 1);
});
