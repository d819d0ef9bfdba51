/**
 * `tool compile --push REF`: the compiled folder is built through the engine, tagged REF and
 * pushed (engine push, dockpack's credential lookup) to a test registry on 127.0.0.1 over plain
 * HTTP; skopeo, an independent client, reads the manifest back: its config digest is the engine's
 * image ID and its digest is the one dockpack printed.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runCli, runCliAsync } from "../../helpers/cli.js";
import { ensureFixture } from "../../helpers/fixtures.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";
import { EXAMPLES } from "../../tools/helpers.js";

let reg: TestRegistry;
let dir: string;
const refs: string[] = [];
before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), "dockpack-compile-push-"));
});
after(async () => {
  for (const r of refs) execFileSync("docker", ["rmi", r], { stdio: "ignore" });
  await rm(dir, { recursive: true, force: true });
  await reg?.stop();
});

test("tool compile --push builds the folder, pushes REF; the registry's manifest matches the engine's image", async () => {
  const base = await ensureFixture("node");
  const ref = `${reg.host}/compilepush/upper:${process.pid}-${Date.now().toString(36)}`;
  refs.push(ref);
  const out = join(dir, "pkg");
  const env = { DOCKER_CONFIG: dir };
  const res = await runCliAsync(
    ["--json", "tool", "compile", "upper", out, "--tools-dir", EXAMPLES, "--base-image", base, "--push", ref],
    { env },
  );
  assert.equal(res.code, 0, res.stderr);
  const { pushed } = JSON.parse(res.stdout) as {
    pushed: { reference: string; digest: string; imageId: string };
  };
  assert.equal(pushed.reference, ref);
  assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
  const imageId = execFileSync("docker", ["image", "inspect", "-f", "{{.Id}}", ref]).toString().trim();
  assert.equal(pushed.imageId, imageId);

  const raw = execFileSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`]);
  const manifest = JSON.parse(raw.toString()) as { config: { digest: string }; layers: unknown[] };
  assert.equal(manifest.config.digest, imageId, "the pushed config is the engine's image");
  assert.equal(`sha256:${createHash("sha256").update(raw).digest("hex")}`, pushed.digest);
  assert.ok(manifest.layers.length >= 1);
});

test("tool compile --push is refused for the exe target and for a digest reference (usage, nothing written)", () => {
  for (const [target, ref, code] of [
    ["exe", `${reg.host}/x/y:1`, "COMPILE_OPTION_INVALID"],
    ["docker", `${reg.host}/x/y@sha256:${"0".repeat(64)}`, "OCI_REFERENCE_INVALID"],
  ]) {
    const out = join(dir, `bad-${target}`);
    const res = runCli([
      "--json",
      "tool",
      "compile",
      "upper",
      out,
      target,
      "--tools-dir",
      EXAMPLES,
      "--push",
      ref,
    ]);
    assert.equal(res.code, 2, res.stderr);
    assert.equal((JSON.parse(res.stdout) as { error: { code: string } }).error.code, code);
    assert.throws(() => execFileSync("ls", [out], { stdio: "ignore" }));
  }
});
