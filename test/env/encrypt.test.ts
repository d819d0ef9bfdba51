/**
 * Secrets at rest (issue 10 B6) on the real engine: a package holding env files is mode 0600;
 * `--encrypt-to` encrypts the env files with age to X25519 recipients, `--encrypt-passphrase` to
 * a passphrase; validate works without the key; import without the key or with a wrong one is
 * refused before anything changes; with `--identity` (or the passphrase) the env file comes back
 * identical, mode 0600. Also the project match (issue 10 A11, B5): a repository that is not a
 * clone of the package's project is refused, and `--standalone` never takes the source
 * environment's volumes on the same engine.
 */
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createEnvironment, initEnvironments } from "../../src/env/index.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import {
  ageKeys,
  commitAll,
  initAppRepo,
  inVolume,
  sh,
  tearDownAppRepo,
  volumesWithPrefix,
} from "./engine-helpers.js";

const project = `dpe${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";
let state = "";
let key = "";
let other = "";
let recipient = "";
const ENV_TEXT = "DB_NAME=demo\nSECRET=s3cr3t-value\n";

before(async () => {
  if (!engineAnswers()) return;
  ({ work, app, state } = await initAppRepo("dockpack-enc", project, { state: true }));
  const env = await createEnvironment({ cwd: app, branch: "src" });
  writeFileSync(join(env.path, ".env"), ENV_TEXT);
  chmodSync(join(env.path, ".env"), 0o600);
  for (const v of ["db", "media"]) sh("docker", ["volume", "create", `${project}-src_${v}`]);
  inVolume(`${project}-src_db`, "echo rec > /data/r.log");
  ({ key, other, recipient } = await ageKeys(work));
});

after(() => tearDownAppRepo({ work, app, state }, project));

const cli = (args: string[], env: NodeJS.ProcessEnv = {}, cwd = app) =>
  runCli(args, { cwd, env: { DOCKPACK_STATE_DIR: state, ...env } });

function exportPkg(args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = cli(
    ["--json", "packages", "export", "src", "--output-dir", join(work, "out"), "--no-code", ...args],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).package;
}

const nothingFor = (branch: string) => {
  assert.equal(sh("git", ["branch", "--list", branch], app).trim(), "", `branch ${branch} left`);
  assert.deepEqual(volumesWithPrefix(`${project}-${branch}_`), []);
};

test("env files encrypted to an age recipient: 0600 package, validate without the key, import only with it", async (t) => {
  if (!needsEngine(t)) return;
  const plain = exportPkg([]);
  assert.equal(statSync(plain).mode & 0o777, 0o600, "a package with env files is 0600");
  const pkg = exportPkg(["--encrypt-to", recipient]);
  assert.equal(statSync(pkg).mode & 0o777, 0o600);
  const bytes = readFileSync(pkg);
  assert.ok(!bytes.includes(Buffer.from("s3cr3t-value")), "the secret is not in the package in clear");
  assert.ok(bytes.includes(Buffer.from("age-encryption.org/v1")));
  const v = cli(["--json", "packages", "validate", pkg]);
  assert.equal(v.code, 0, v.stdout);
  assert.equal(JSON.parse(v.stdout).valid, true);

  const none = cli(["--json", "packages", "import", pkg, "--target-branch", "enc"]);
  assert.equal(none.code, 1);
  assert.equal(JSON.parse(none.stdout).error.code, "PACKAGE_ENCRYPTED");
  nothingFor("enc");
  const wrong = cli(["--json", "packages", "import", pkg, "--target-branch", "enc", "--identity", other]);
  assert.equal(wrong.code, 1);
  assert.equal(JSON.parse(wrong.stdout).error.code, "PACKAGE_DECRYPT_FAILED");
  nothingFor("enc");

  const ok = cli(["--json", "packages", "import", pkg, "--target-branch", "enc", "--identity", key]);
  assert.equal(ok.code, 0, ok.stderr);
  const wt = JSON.parse(ok.stdout).environment.path;
  assert.equal(readFileSync(join(wt, ".env"), "utf8"), ENV_TEXT);
  assert.equal(statSync(join(wt, ".env")).mode & 0o777, 0o600);
  assert.equal(cli(["env", "remove", "enc", "--volumes", "--delete-branch", "--force"]).code, 0);
});

test("env files encrypted to a passphrase ($DOCKPACK_PASSPHRASE without a terminal)", async (t) => {
  if (!needsEngine(t)) return;
  const pkg = exportPkg(["--encrypt-passphrase"], { DOCKPACK_PASSPHRASE: "correct horse" });
  // (a wrong key is checked with identities above: each scrypt run costs seconds)
  const none = cli(["--json", "packages", "import", pkg, "--target-branch", "pp"]);
  assert.equal(JSON.parse(none.stdout).error.code, "PACKAGE_ENCRYPTED");
  nothingFor("pp");
  const ok = cli(["--json", "packages", "import", pkg, "--target-branch", "pp"], {
    DOCKPACK_PASSPHRASE: "correct horse",
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(readFileSync(join(JSON.parse(ok.stdout).environment.path, ".env"), "utf8"), ENV_TEXT);
  assert.equal(cli(["env", "remove", "pp", "--volumes", "--delete-branch", "--force"]).code, 0);
  const both = cli(["packages", "export", "src", "--encrypt-passphrase", "--encrypt-to", recipient], {
    DOCKPACK_PASSPHRASE: "x",
  });
  assert.equal(both.code, 2, both.stderr);
});

test("project match: refused in a repository that is not the package's project; --standalone never takes the source's volumes", async (t) => {
  if (!needsEngine(t)) return;
  const pkg = exportPkg([]);
  // a git repository without dockpack
  const bare = join(work, "bare");
  sh("git", ["init", "-q", "-b", "main", bare]);
  copyFileSync(join(app, "docker-compose.yml"), join(bare, "docker-compose.yml"));
  commitAll(bare, "compose file only");
  const r1 = cli(["--json", "packages", "import", pkg], {}, bare);
  assert.equal(r1.code, 1);
  assert.equal(JSON.parse(r1.stdout).error.code, "IMPORT_NOT_INITIALISED");
  assert.equal(sh("git", ["branch", "--list"], bare).trim(), "* main");
  // a repository of another project
  await initEnvironments({ cwd: bare, project: `${project}x` });
  const r2 = cli(["--json", "packages", "import", pkg], {}, bare);
  assert.equal(JSON.parse(r2.stdout).error.code, "IMPORT_PROJECT_MISMATCH");
  assert.match(JSON.parse(r2.stdout).error.hint, /--standalone/);
  assert.ok(!existsSync(join(bare, "worktrees")));
  // --standalone with the source's own project on the same engine: refused, even with --force
  const dir = join(work, "alone");
  const r3 = cli(
    ["--json", "packages", "import", pkg, "--standalone", dir, "--project", project, "--force"],
    {},
    work,
  );
  assert.equal(r3.code, 1);
  assert.equal(JSON.parse(r3.stdout).error.code, "IMPORT_CONFLICT");
  assert.match(JSON.parse(r3.stdout).error.hint, /--project/);
  assert.ok(!existsSync(dir));
  assert.match(inVolume(`${project}-src_db`, "cat /data/r.log", true), /^rec$/m, "source data untouched");
});
