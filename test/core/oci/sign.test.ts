/** Package signatures: push --sign with an SSH key, pull --verify-key accepts it; unsigned or another key is refused. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openRepository } from "../../../src/core/oci/client.js";
import { pullPackage, pushPackage } from "../../../src/env/registry.js";
import { SIGNATURE_ARTIFACT_TYPE } from "../../../src/env/registry-sign.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";
import { writeTwoVolumePackage } from "./synthetic-package.js";

let reg: TestRegistry;
let dir: string;
let pkg: string;
before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), "dockpack-oci-sign-"));
  for (const k of ["alice", "mallory"])
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", k, "-f", join(dir, k)]);
  pkg = join(dir, "synth-main-s.dockpack.tar");
  await writeTwoVolumePackage(pkg, { db: randomBytes(2000), cache: randomBytes(2000) });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await reg?.stop();
});

test("signed push verifies with the signer's key only; unsigned is refused under --verify-key", async () => {
  const signed = await pushPackage({
    package: pkg,
    reference: `${reg.host}/sig/env:signed`,
    sign: join(dir, "alice"),
  });
  assert.match(signed.signature ?? "", /^sha256:/);
  const { repo } = await openRepository(`${reg.host}/sig/env`, { credentials: null });
  assert.equal((await repo.referrers(signed.digest, SIGNATURE_ARTIFACT_TYPE)).length, 1);
  await repo.transport.close();

  const ok = await pullPackage({
    reference: `${reg.host}/sig/env:signed`,
    outputDir: join(dir, "ok"),
    verifyKey: join(dir, "alice.pub"),
  });
  assert.ok((await readFile(ok.package)).equals(await readFile(pkg)));

  const bad = join(dir, "bad");
  await assert.rejects(
    pullPackage({
      reference: `${reg.host}/sig/env:signed`,
      outputDir: bad,
      verifyKey: join(dir, "mallory.pub"),
    }),
    (e: { code: string }) => e.code === "PACKAGE_SIGNATURE_INVALID",
  );
  await pushPackage({ package: pkg, reference: `${reg.host}/sig/plain:v1` });
  await assert.rejects(
    pullPackage({ reference: `${reg.host}/sig/plain:v1`, outputDir: bad, verifyKey: join(dir, "alice.pub") }),
    (e: { code: string }) => e.code === "PACKAGE_SIGNATURE_MISSING",
  );
  assert.deepEqual(await readdir(dir).then((f) => f.includes("bad")), false);
});
