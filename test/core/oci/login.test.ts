/** `dockpack login/logout` against a TLS + htpasswd registry, writing a temporary DOCKER_CONFIG. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runCli } from "../../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";

let reg: TestRegistry;
let cfg: string;
before(async () => {
  reg = await startRegistry({ tls: true, users: { alice: "s3cret" } });
  cfg = await mkdtemp(join(tmpdir(), "dockpack-login-"));
});
after(async () => {
  await rm(cfg, { recursive: true, force: true });
  await reg?.stop();
});

test("login refuses a wrong password and stores nothing; a right one lands in config.json; logout erases", () => {
  const env = { DOCKER_CONFIG: cfg };
  const bad = runCli(
    ["--json", "login", reg.host, "-u", "alice", "--password-stdin", "--ca-file", reg.caFile as string],
    {
      env,
      input: "wrong\n",
    },
  );
  assert.equal(bad.code, 1, bad.stderr);
  assert.equal(JSON.parse(bad.stdout).error.code, "OCI_UNAUTHORIZED");
  assert.equal(existsSync(join(cfg, "config.json")), false);
  // NODE_EXTRA_CA_CERTS works as well as --ca-file
  const ok = runCli(["--json", "login", reg.host, "-u", "alice", "--password-stdin"], {
    env: { ...env, NODE_EXTRA_CA_CERTS: reg.caFile },
    input: "s3cret\n",
  });
  assert.equal(ok.code, 0, ok.stderr);
  return readFile(join(cfg, "config.json"), "utf8").then((text) => {
    assert.equal(JSON.parse(text).auths[reg.host].auth, Buffer.from("alice:s3cret").toString("base64"));
    const out = runCli(["--json", "logout", reg.host], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout).removed, true);
  });
});
