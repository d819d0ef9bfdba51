/** Environment packages through a real registry: push, dedup on the second push, pull byte-identical, list. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { listRemotePackages, pullPackage, pushPackage } from "../../../src/env/registry.js";
import { runCli } from "../../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";
import { writeTwoVolumePackage } from "./synthetic-package.js";

let reg: TestRegistry;
let dir: string;
before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), "dockpack-oci-pkg-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await reg?.stop();
});

test("push, second push sends only what changed, pull gives the same bytes, list shows both", async () => {
  const db = randomBytes(2 * 1024 * 1024);
  const cache = randomBytes(512 * 1024);
  const a = join(dir, "synth-main-a.dockpack.tar");
  const b = join(dir, "synth-main-b.dockpack.tar");
  await writeTwoVolumePackage(a, { db, cache }, { mtime: 1_700_000_000 });
  await writeTwoVolumePackage(
    b,
    { db, cache: randomBytes(512 * 1024) },
    { mtime: 1_700_000_100, env: "DB_NAME=other\n" },
  );
  const first = await pushPackage({
    package: a,
    reference: `${reg.host}/synth/env:a`,
    chunkSize: 1024 * 1024,
  });
  assert.ok(first.uploadedBytes >= first.totalBytes * 0.99, JSON.stringify(first));
  const second = await pushPackage({
    package: b,
    reference: `${reg.host}/synth/env:b`,
    chunkSize: 1024 * 1024,
  });
  // db (2 MiB) is not sent again; the changed cache volume and the small segments are
  assert.ok(second.uploadedBytes < 700 * 1024, JSON.stringify(second));
  assert.ok(second.existing >= 1);
  const out = join(dir, "pulled");
  const pulled = await pullPackage({ reference: `${reg.host}/synth/env:b`, outputDir: out });
  assert.equal(pulled.package, join(out, "synth-main-b.dockpack.tar"));
  assert.ok((await readFile(pulled.package)).equals(await readFile(b)));
  assert.deepEqual(await readdir(out), ["synth-main-b.dockpack.tar"]);
  const list = await listRemotePackages({ repository: `${reg.host}/synth/env` });
  assert.deepEqual(
    list.packages.map((p) => [p.tag, p.project, p.branch, p.volumes]),
    [
      ["a", "synth", "main", ["db", "cache"]],
      ["b", "synth", "main", ["db", "cache"]],
    ],
  );
});

test("CLI: packages push / pull / list --json; pulling over an existing file is refused", async () => {
  const pkg = join(dir, "synth-main-cli.dockpack.tar");
  await writeTwoVolumePackage(
    pkg,
    { db: randomBytes(4096), cache: randomBytes(4096) },
    { mtime: 1_700_000_200 },
  );
  const push = runCli(["--json", "packages", "push", pkg, `${reg.host}/synth/cli:v1`]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(JSON.parse(push.stdout).digest, /^sha256:/);
  const out = join(dir, "cli-out");
  const pull = runCli(["--json", "packages", "pull", `${reg.host}/synth/cli:v1`, "-o", out]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.ok((await readFile(JSON.parse(pull.stdout).package)).equals(await readFile(pkg)));
  await assert.rejects(
    pullPackage({ reference: `${reg.host}/synth/cli:v1`, outputDir: out }),
    (e: { code: string }) => e.code === "FS_EXISTS",
  );
  const list = runCli(["--json", "packages", "list", `${reg.host}/synth/cli`]);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(JSON.parse(list.stdout).packages[0].tag, "v1");
  await assert.rejects(
    pullPackage({ reference: `${reg.host}/synth/cli:nope`, outputDir: out }),
    (e: { code: string }) => e.code === "OCI_NOT_FOUND",
  );
  assert.deepEqual((await readdir(out)).sort(), ["synth-main-cli.dockpack.tar"]);
});
