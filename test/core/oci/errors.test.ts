/**
 * Failures through a real registry behind a fault-injecting proxy: token auth (wrong password,
 * expired tokens), a 500 on one blob, a corrupt blob — each a named error, nothing tagged,
 * nothing written.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openRepository } from "../../../src/core/oci/client.js";
import { pullPackage, pushPackage } from "../../../src/env/registry.js";
import { startProxy, startRegistry, type TestRegistry } from "../../helpers/registry.js";
import { writeTwoVolumePackage } from "./synthetic-package.js";

let reg: TestRegistry;
let dir: string;
let pkg: string;
let dbDigest: string;
before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), "dockpack-oci-err-"));
  pkg = join(dir, "synth-main-e.dockpack.tar");
  const meta = await writeTwoVolumePackage(pkg, { db: randomBytes(300_000), cache: randomBytes(1000) });
  dbDigest = meta.volumes[0].sha256;
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await reg?.stop();
});

async function tags(host: string, repo: string): Promise<string[]> {
  const { repo: r } = await openRepository(`${host}/${repo}`, { credentials: null });
  try {
    return await r.listTags();
  } finally {
    await r.transport.close();
  }
}

test("Bearer token auth: right password pushes; wrong password is OCI_UNAUTHORIZED; expired tokens OCI_TOKEN_REJECTED", async () => {
  const proxy = await startProxy(reg, { tokenUsers: { bob: "pw" } });
  try {
    const ok = await pushPackage({
      package: pkg,
      reference: `${proxy.host}/tok/ok:v1`,
      credentials: { username: "bob", password: "pw" },
    });
    assert.match(ok.digest, /^sha256:/);
    assert.ok(proxy.requests.some((r) => r.startsWith("GET /token?")));
    await assert.rejects(
      pushPackage({
        package: pkg,
        reference: `${proxy.host}/tok/bad:v1`,
        credentials: { username: "bob", password: "nope" },
      }),
      (e: { code: string }) => e.code === "OCI_UNAUTHORIZED",
    );
    assert.deepEqual(await tags(reg.host, "tok/bad"), []);
  } finally {
    await proxy.stop();
  }
  const expiring = await startProxy(reg, { tokenUsers: { bob: "pw" }, tokenLifetime: 0 });
  try {
    await assert.rejects(
      pushPackage({
        package: pkg,
        reference: `${expiring.host}/tok/exp:v1`,
        credentials: { username: "bob", password: "pw" },
      }),
      (e: { code: string }) => e.code === "OCI_TOKEN_REJECTED",
    );
    assert.deepEqual(await tags(reg.host, "tok/exp"), []);
  } finally {
    await expiring.stop();
  }
});

test("a 500 on one blob: OCI_SERVER_ERROR after retries, nothing tagged; on pull nothing written", async () => {
  const proxy = await startProxy(reg, { failPath: dbDigest });
  try {
    await assert.rejects(
      pushPackage({ package: pkg, reference: `${proxy.host}/fail/push:v1`, retries: 1 }),
      (e: { code: string }) => e.code === "OCI_SERVER_ERROR",
    );
    assert.deepEqual(await tags(reg.host, "fail/push"), []);
    await pushPackage({ package: pkg, reference: `${reg.host}/fail/pull:v1` });
    const out = join(dir, "out500");
    await assert.rejects(
      pullPackage({ reference: `${proxy.host}/fail/pull:v1`, outputDir: out, retries: 1 }),
      (e: { code: string }) => e.code === "OCI_SERVER_ERROR",
    );
    assert.equal((await readdir(out)).filter((f) => f.endsWith(".dockpack.tar")).length, 0);
  } finally {
    await proxy.stop();
  }
});

test("a blob whose bytes do not match its digest: DIGEST_MISMATCH, no package written", async () => {
  await pushPackage({ package: pkg, reference: `${reg.host}/corrupt/pkg:v1` });
  const hex = dbDigest.slice(7);
  const data = join(reg.dir, "storage/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
  await writeFile(data, randomBytes(300_000));
  const out = join(dir, "outbad");
  await assert.rejects(
    pullPackage({ reference: `${reg.host}/corrupt/pkg:v1`, outputDir: out }),
    (e: { code: string }) => e.code === "DIGEST_MISMATCH",
  );
  assert.equal((await readdir(out)).filter((f) => f.endsWith(".dockpack.tar")).length, 0);
});
