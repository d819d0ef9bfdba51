/**
 * The env domain's MCP tools through a real client over stdio: tools listed with input schemas,
 * list_packages / validate_package / env_list answer with structured JSON, and a failing call is
 * a tool error carrying code and hint.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cleanupPrefix, commitAll, makeAppRepo } from "../env/engine-helpers.js";
import { writeSyntheticPackage } from "../env/synthetic.js";
import { runCli } from "../helpers/cli.js";
import { needsEngine } from "../helpers/engine.js";
import { connectMcp, type McpTestClient } from "./client.js";

let dir: string;
let mcp: McpTestClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-mcp-"));
  await mkdir(join(dir, "packages"));
  await writeSyntheticPackage(join(dir, "packages", "synth.dockpack.tar"));
  await writeFile(join(dir, "packages", "broken.dockpack.tar"), "not a package");
  // a repository with a config but no environments
  execFileSync("git", ["init", "-q", dir]);
  await writeFile(join(dir, "docker-compose.yml"), "services:\n  web:\n    image: x\n");
  await mkdir(join(dir, ".dockpack"));
  await writeFile(
    join(dir, ".dockpack", "config.yml"),
    "version: 1\nproject: mcptest\ncompose_files: [docker-compose.yml]\nvolumes: []\n",
  );
  mcp = await connectMcp({ cwd: dir, env: { DOCKPACK_PASSPHRASE: "" } });
});
after(async () => {
  await mcp?.close();
  await rm(dir, { recursive: true, force: true });
});

test("the server lists the env tools with input schemas", async () => {
  const names = await mcp.toolNames();
  for (const n of [
    "env_create",
    "env_list",
    "export_package",
    "import_package",
    "list_packages",
    "validate_package",
  ])
    assert.ok(names.includes(n), `${n} missing from ${names.join(", ")}`);
  const tools = (await mcp.client.listTools()).tools;
  const exp = tools.find((t) => t.name === "export_package");
  assert.deepEqual(exp?.inputSchema.required, ["branch"]);
  assert.ok((exp?.inputSchema.properties as Record<string, unknown> | undefined)?.codec);
  // the CLI's encryption and offline inputs, camelCase; a passphrase is never an argument
  const props = (name: string) =>
    Object.keys(tools.find((t) => t.name === name)?.inputSchema.properties ?? {});
  for (const key of ["encryptTo", "encryptPassphrase", "encryptAll"])
    assert.ok(props("export_package").includes(key), key);
  assert.ok(props("import_package").includes("identity"));
  assert.ok(props("env_up").includes("offline"));
  for (const name of ["export_package", "import_package"])
    assert.ok(!props(name).includes("passphrase"), name);
});

test("encryption and offline inputs stay strict; encryptPassphrase needs the server's DOCKPACK_PASSPHRASE", async () => {
  const wrong = await mcp.call("export_package", { branch: "main", cwd: dir, encrypt_to: ["age1x"] });
  assert.equal(wrong.isError, true);
  assert.match(wrong.text, /did you mean 'encryptTo'/);
  const up = await mcp.call("env_up", { branch: "main", cwd: dir, offline: true, pull: false });
  assert.equal(up.isError, true);
  assert.match(up.text, /'pull'/);
  const secret = await mcp.call("import_package", { package: "x", cwd: dir, passphrase: "hunter2" });
  assert.equal(secret.isError, true);
  assert.match(secret.text, /unknown argument 'passphrase'/);
  const noEnv = await mcp.call("export_package", { branch: "main", cwd: dir, encryptPassphrase: true });
  assert.equal(noEnv.isError, true);
  assert.equal((noEnv.value as { error: { code: string } }).error.code, "ENCRYPTION_OPTIONS_INVALID");
  assert.match(noEnv.text, /DOCKPACK_PASSPHRASE/);
});

test("list_packages returns rows, with an error row for a damaged file", async () => {
  const res = await mcp.call("list_packages", { packageDir: join(dir, "packages") });
  assert.equal(res.isError, false, res.text);
  const rows = res.value.packages as {
    file: string;
    branch: string | null;
    error: { code: string } | null;
  }[];
  assert.equal(rows.length, 2);
  assert.equal(rows.find((r) => r.file === "synth.dockpack.tar")?.branch, "feature/x");
  assert.equal(rows.find((r) => r.file === "broken.dockpack.tar")?.error?.code, "PACKAGE_NOT_A_PACKAGE");
});

test("validate_package reports valid and invalid packages", async () => {
  const ok = await mcp.call("validate_package", { package: join(dir, "packages", "synth.dockpack.tar") });
  assert.equal(ok.isError, false, ok.text);
  assert.equal(ok.value.valid, true);
  const bad = await mcp.call("validate_package", { package: join(dir, "packages", "broken.dockpack.tar") });
  assert.equal(bad.value.valid, false);
  assert.ok((bad.value.problems as unknown[]).length >= 1);
});

test("env_list answers for a repository without environments", async () => {
  const res = await mcp.call("env_list", { cwd: dir });
  assert.equal(res.isError, false, res.text);
  assert.deepEqual(res.value.environments, []);
});

test("a failing call is a tool error with code, message and hint", async () => {
  const res = await mcp.call("import_package", {
    package: join(dir, "packages", "missing.dockpack.tar"),
    cwd: dir,
  });
  assert.equal(res.isError, true);
  const error = (res.value as { error: { code: string; message: string; hint?: string } }).error;
  assert.equal(error.code, "PACKAGE_NOT_FOUND");
  assert.match(error.message, /missing\.dockpack\.tar/);
  assert.ok(error.hint);
  const env = await mcp.call("env_list", { cwd: tmpdir() });
  assert.equal(env.isError, true);
  assert.equal((env.value as { error: { code: string } }).error.code, "ENV_NOT_A_REPO");
});

test("env_create over MCP creates an environment on the real engine", async (t) => {
  if (!needsEngine(t)) return;
  const project = `dpm${Math.random().toString(36).slice(2, 7)}`;
  const { work, app } = makeAppRepo("dockpack-mcp-env");
  const client = await connectMcp({ cwd: app });
  try {
    const init = runCli(["env", "init", "--project", project], { cwd: app });
    assert.equal(init.code, 0, init.stderr);
    commitAll(app, "config");
    const res = await client.call("env_create", { branch: "feature/mcp" });
    assert.equal(res.isError, false, res.text);
    assert.equal(res.value.composeProject, `${project}-feature-mcp`);
    assert.match(String(res.value.url), /^http:\/\/localhost:\d+\/$/);
    const list = await client.call("env_list", {});
    assert.equal((list.value.environments as unknown[]).length, 1);
    const again = await client.call("env_create", { branch: "feature/mcp" });
    assert.equal(again.isError, true);
    assert.equal((again.value as { error: { code: string } }).error.code, "ENV_EXISTS");
  } finally {
    await client.close();
    cleanupPrefix(project, work);
  }
});
