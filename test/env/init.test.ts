/** `env init` in a repository (no engine needed): detection, refusals, config written and validated. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runCli } from "../helpers/cli.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-init-"));
  execFileSync("git", ["init", "-q", dir]);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("init outside a repository and without a compose file are refused with a clear error", async () => {
  const outside = await mkdtemp(join(tmpdir(), "dockpack-norepo-"));
  try {
    const r = runCli(["--json", "env", "init"], { cwd: outside });
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.code, "ENV_NOT_A_REPO");
  } finally {
    await rm(outside, { recursive: true, force: true });
  }
  const r = runCli(["--json", "env", "init"], { cwd: dir });
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).error.code, "COMPOSE_MISSING");
});

test("init detects compose file, named volumes and web port; refuses to overwrite without --force", async () => {
  await writeFile(
    join(dir, "docker-compose.yml"),
    'services:\n  web:\n    image: x\n    ports: ["8080:80"]\n  db:\n    image: y\n    volumes: ["data:/d"]\nvolumes:\n  data: {}\n  ext: { external: true }\n',
  );
  const r = runCli(["--json", "env", "init", "--project", "shop"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual(doc.config.volumes, ["data"]);
  assert.deepEqual(doc.config.web, { service: "web", port: 80, scheme: "http" });
  assert.match(await readFile(join(dir, ".dockpack/config.yml"), "utf8"), /project: shop/);
  assert.match(await readFile(join(dir, ".git/info/exclude"), "utf8"), /\/worktrees\//);
  const again = runCli(["env", "init"], { cwd: dir });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
  assert.match(again.stderr, /hint: .*--force/);
  assert.equal(runCli(["env", "init", "--force", "--project", "shop"], { cwd: dir }).code, 0);
  const badVol = runCli(["env", "init", "--force", "--volume", "nope"], { cwd: dir });
  assert.equal(badVol.code, 2);
  assert.match(badVol.stderr, /nope/);
});

test("a mistyped key in the config is an error naming its path", async () => {
  await writeFile(
    join(dir, ".dockpack/config.yml"),
    "version: 1\nproject: shop\ncompose_files: [docker-compose.yml]\nvolumes: [data]\nweb: { service: web, prot: 80 }\n",
  );
  const r = runCli(["--json", "env", "list"], { cwd: dir });
  assert.equal(r.code, 1);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "ENV_CONFIG_INVALID");
  assert.match(err.message, /web\.prot: unknown key/);
});

test("env help lists every command and ends with examples", () => {
  for (const group of ["env", "packages"]) {
    const r = runCli([group, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:\n {2}\$ dockpack/);
  }
  const r = runCli(["packages", "import", "--help"]);
  for (const flag of ["--target-branch", "--no-data", "--force", "--standalone"])
    assert.match(r.stdout, new RegExp(flag));
  assert.match(runCli(["mcp", "--help"]).stdout, /Examples:/);
});
