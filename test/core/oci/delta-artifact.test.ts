/** `delta push FILE REF` / `delta pull REF -o FILE`: a delta package as a one-layer OCI artifact. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openRepository } from "../../../src/core/oci/client.js";
import { silentReporter } from "../../../src/core/output.js";
import { createDelta } from "../../../src/delta/index.js";
import { runCli } from "../../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";
import { versionPair, writeSynth } from "../../image/synthetic.js";

let reg: TestRegistry;
let dir: string;
let pkg: string;
before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), "dockpack-oci-delta-"));
  const pair = await versionPair("dockpack-test-ocidelta");
  await writeSynth(pair.v1, join(dir, "v1.tar"));
  await writeSynth(pair.v2, join(dir, "v2.tar"));
  pkg = join(dir, "app-1-to-2.dpd");
  await createDelta(
    { image: join(dir, "v2.tar"), output: pkg, bases: [join(dir, "v1.tar")] },
    silentReporter(),
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await reg?.stop();
});

async function tags(repo: string): Promise<string[]> {
  const { repo: r } = await openRepository(`${reg.host}/${repo}`, { credentials: null });
  try {
    return await r.listTags().catch(() => []);
  } finally {
    await r.transport.close();
  }
}

test("delta push then pull gives the identical file; its manifest is an artifact of dockpack's type", async () => {
  const ref = `${reg.host}/app/delta:1-to-2`;
  const push = runCli(["--json", "delta", "push", pkg, ref]);
  assert.equal(push.code, 0, push.stderr);
  const pushed = JSON.parse(push.stdout);
  assert.equal(pushed.size, (await readFile(pkg)).length);
  const out = join(dir, "pulled.dpd");
  const pull = runCli(["--json", "delta", "pull", ref, "-o", out]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.ok((await readFile(out)).equals(await readFile(pkg)));
  assert.equal(JSON.parse(pull.stdout).digest, pushed.digest);
  const { repo } = await openRepository(ref, { credentials: null });
  try {
    const m = (await repo.getManifest("1-to-2")).json as { artifactType: string; layers: unknown[] };
    assert.equal(m.artifactType, "application/vnd.dockpack.delta.package.v1");
    assert.equal(m.layers.length, 1);
  } finally {
    await repo.transport.close();
  }
  // pulling over an existing file is refused; --force replaces it
  const again = runCli(["--json", "delta", "pull", ref, "-o", out]);
  assert.equal(again.code, 1);
  assert.equal(JSON.parse(again.stdout).error.code, "FS_EXISTS");
  assert.equal(runCli(["--json", "delta", "pull", ref, "-o", out, "--force"]).code, 0);
});

test("a file that is not a delta package is not pushed; a non-delta artifact is not pulled", async () => {
  const bogus = join(dir, "bogus.dpd");
  await writeFile(bogus, "not a tar at all\n".repeat(100));
  const push = runCli(["--json", "delta", "push", bogus, `${reg.host}/app/bogus:1`]);
  assert.equal(push.code, 1);
  assert.match(JSON.parse(push.stdout).error.code, /^DELTA_/);
  assert.deepEqual(await tags("app/bogus"), []);
  // an environment-package-like artifact under another type: refused, no file written
  const { pushFileArtifact } = await import("../../../src/core/oci/file-artifact.js");
  await pushFileArtifact({
    file: bogus,
    reference: `${reg.host}/app/other:1`,
    artifactType: "application/vnd.example.other",
    layerMediaType: "application/octet-stream",
  });
  const out = join(dir, "other.dpd");
  const pull = runCli(["--json", "delta", "pull", `${reg.host}/app/other:1`, "-o", out]);
  assert.equal(pull.code, 1);
  assert.equal(JSON.parse(pull.stdout).error.code, "OCI_NOT_AN_ARTIFACT");
  assert.equal(existsSync(out), false);
  // the right type but bytes the delta reader refuses: nothing appears under the name
  await pushFileArtifact({
    file: bogus,
    reference: `${reg.host}/app/forged:1`,
    artifactType: "application/vnd.dockpack.delta.package.v1",
    layerMediaType: "application/vnd.dockpack.delta.package.v1.tar",
  });
  const forged = runCli(["--json", "delta", "pull", `${reg.host}/app/forged:1`, "-o", out]);
  assert.equal(forged.code, 1);
  assert.match(JSON.parse(forged.stdout).error.code, /^DELTA_/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(
    (await import("node:fs")).readdirSync(dir).filter((f) => f.includes(".part-")),
    [],
  );
});
