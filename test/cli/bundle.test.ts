/**
 * The installed command is the esbuild bundle `dist/bin/dockpack.js` (scripts/bundle-cli.mjs,
 * issue 14 C18): it must run every group, reach the engine, serve MCP and be what `npm pack`
 * ships, while the library (`dist/index.js`) stays the tsc build. Needs `npm run build` (setup.sh).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { connectMcp } from "../mcp/client.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  bin: Record<string, string>;
  main: string;
};
const BIN = join(ROOT, pkg.bin.dockpack);

function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("package.json bin is the bundle, the library stays the tsc build", () => {
  assert.equal(pkg.bin.dockpack, "dist/bin/dockpack.js");
  assert.equal(pkg.main, "dist/index.js");
  assert.ok(existsSync(BIN), `${BIN} is missing: run npm run build`);
  assert.match(readFileSync(BIN, "utf8"), /^#!\/usr\/bin\/env node\n/);
  // Self-contained: no chunk imports the tsc build (two copies of a module would break instanceof).
  for (const f of readdirSync(join(ROOT, "dist/bin")))
    assert.doesNotMatch(readFileSync(join(ROOT, "dist/bin", f), "utf8"), /(from\s*|require\()["']\.\.\//, f);
});

test("the bundle prints its version and every group's help", () => {
  const v = run(["--version"]);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), pkg.version);
  for (const g of [
    "env",
    "packages",
    "delta",
    "features",
    "targets",
    "tool",
    "mcp",
    "login",
    "logout",
    "completion",
  ]) {
    const r = run([g, "--help"]);
    assert.equal(r.code, 0, `${g} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: dockpack ${g}`));
  }
});

test("the bundle lists tools and environments (engine reachable and not)", () => {
  const tools = run(["--json", "tool", "list", "--tools-dir", join(ROOT, "examples/tools")]);
  assert.equal(tools.code, 0, tools.stderr);
  assert.ok((JSON.parse(tools.stdout) as { tools: unknown[] }).tools.length >= 5);

  const repo = mkdtempSync(join(tmpdir(), "dockpack-bundle-"));
  try {
    cpSync(join(ROOT, "examples/compose-app"), repo, { recursive: true });
    const git = (...a: string[]) => spawnSync("git", a, { cwd: repo, encoding: "utf8" });
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "i");
    const init = run(["env", "init"], { cwd: repo });
    assert.equal(init.code, 0, init.stderr);
    const list = run(["--json", "env", "list"], { cwd: repo });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), { environments: [] });
    // No engine: the list of a repository without environments needs none.
    const off = run(["--json", "env", "list"], {
      cwd: repo,
      env: { DOCKER_HOST: `unix://${join(repo, "no-engine.sock")}` },
    });
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual(JSON.parse(off.stdout), { environments: [] });
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});

test("the bundle serves MCP over stdio", async () => {
  const mcp = await connectMcp({ main: BIN });
  try {
    const names = await mcp.toolNames();
    for (const n of ["export_package", "env_list", "delta_info", "targets_list"])
      assert.ok(names.includes(n), n);
  } finally {
    await mcp.close();
  }
});

test("npm pack ships the bundle and the library", () => {
  const r = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
  assert.ok(files.includes("dist/bin/dockpack.js"));
  assert.ok(files.includes("dist/index.js"));
  assert.ok(files.some((f) => /^dist\/bin\/chunk-\w+\.js$/.test(f)));
});
