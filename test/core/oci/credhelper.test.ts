/**
 * Credentials through docker credential helpers (`credsStore`, `credHelpers`): a fake
 * `docker-credential-test` on PATH speaking the docker-credential-helpers protocol (get/store/erase
 * on stdin, "credentials not found in native keychain" on stdout with exit 1), against a TLS +
 * htpasswd registry.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runCli } from "../../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";
import { fakeStore, installFakeCredHelper } from "./fake-cred-helper.js";
import { writeTwoVolumePackage } from "./synthetic-package.js";

let reg: TestRegistry;
let dir: string;
let pkg: string;
let env: NodeJS.ProcessEnv;
before(async () => {
  reg = await startRegistry({ tls: true, users: { alice: "s3cret" } });
  dir = await mkdtemp(join(tmpdir(), "dockpack-credhelper-"));
  const { bin } = await installFakeCredHelper(dir);
  pkg = join(dir, "synth-main-c.dockpack.tar");
  await writeTwoVolumePackage(pkg, { db: randomBytes(20_000), cache: randomBytes(1000) });
  env = {
    PATH: `${bin}:${process.env.PATH}`,
    FAKE_CRED_DIR: join(dir, "store"),
    DOCKER_CONFIG: join(dir, "docker"),
    NODE_EXTRA_CA_CERTS: reg.caFile,
  };
  await mkdir(join(dir, "docker"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await reg?.stop();
});

const config = (c: object) => writeFile(join(dir, "docker", "config.json"), JSON.stringify(c));
const calls = async () => (await readFile(join(dir, "store", "calls.log"), "utf8")).trim().split("\n");

test("credsStore: login stores through the helper (not in config.json), push reads it back, logout erases", async () => {
  await config({ credsStore: "test" });
  const login = runCli(["--json", "login", reg.host, "-u", "alice", "--password-stdin"], {
    env,
    input: "s3cret\n",
  });
  assert.equal(login.code, 0, login.stderr);
  const saved = JSON.parse(await readFile(join(dir, "docker", "config.json"), "utf8"));
  assert.deepEqual(saved.auths[reg.host], {}, "no secret in config.json");
  assert.equal(saved.credsStore, "test");
  const push = runCli(["--json", "packages", "push", pkg, `${reg.host}/cred/env:store`], { env });
  assert.equal(push.code, 0, push.stderr);
  assert.ok((await calls()).includes(`get ${reg.host}`));
  const out = runCli(["--json", "logout", reg.host], { env });
  assert.equal(out.code, 0, out.stderr);
  assert.equal(JSON.parse(out.stdout).removed, true);
  assert.deepEqual(
    (await readdir(join(dir, "store"))).filter((f) => f.endsWith(".json")),
    [],
  );
  // nothing stored any more: the registry answers 401, a named error
  const denied = runCli(["--json", "packages", "list", `${reg.host}/cred/env`], { env });
  assert.equal(denied.code, 1);
  assert.equal(JSON.parse(denied.stdout).error.code, "OCI_UNAUTHORIZED");
});

test("credHelpers per registry win over auths; a wrong secret from the helper is OCI_UNAUTHORIZED", async () => {
  const store = (secret: string) => fakeStore(join(dir, "store"), reg.host, "alice", secret);
  await store("s3cret");
  await config({
    credHelpers: { [reg.host]: "test" },
    auths: { [reg.host]: { auth: Buffer.from("alice:wrong").toString("base64") } },
  });
  const ok = runCli(["--json", "packages", "push", pkg, `${reg.host}/cred/env:helper`], { env });
  assert.equal(ok.code, 0, ok.stderr);
  await store("wrong");
  const bad = runCli(["--json", "packages", "push", pkg, `${reg.host}/cred/env:bad`], { env });
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(bad.stdout).error.code, "OCI_UNAUTHORIZED");
  await store("s3cret");
  const again = runCli(["--json", "packages", "list", `${reg.host}/cred/env`], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(
    JSON.parse(again.stdout).packages.map((p: { tag: string }) => p.tag),
    ["helper", "store"],
    "nothing tagged by the refused push",
  );
});

test("a helper that is not installed or that fails: named errors", async () => {
  await config({ credsStore: "nope" });
  const missing = runCli(["--json", "packages", "list", `${reg.host}/cred/env`], { env });
  assert.equal(missing.code, 1);
  assert.equal(JSON.parse(missing.stdout).error.code, "OCI_CREDENTIAL_HELPER_MISSING");
  await writeFile(join(dir, "store", `${Buffer.from(reg.host).toString("hex")}.json`), "not json");
  await config({ credsStore: "test" });
  const broken = runCli(["--json", "packages", "list", `${reg.host}/cred/env`], { env });
  assert.equal(broken.code, 1);
  assert.equal(JSON.parse(broken.stdout).error.code, "OCI_CREDENTIAL_HELPER_FAILED");
  assert.equal(existsSync(join(dir, "docker", "config.json")), true);
});
