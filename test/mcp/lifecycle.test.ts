/**
 * An agent drives dockpack through MCP only (the SDK's client over stdio against a real
 * `dockpack mcp`): create, start, export (with progress notifications), import as another branch,
 * start it, remove both. A cancelled export stops with the same rollback as Ctrl-C (containers
 * running again, no package, no temp folder). Unknown argument keys are refused by name.
 * Real engine, fixture busybox image; ~40 s.
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cleanupPrefix, initAppRepo, inVolume, sh } from "../env/engine-helpers.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { connectMcp, type McpTestClient } from "./client.js";

const project = `dpm${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";
let mcp: McpTestClient | undefined;

const running = (branch: string) =>
  sh("docker", ["ps", "-q", "--filter", `label=com.docker.compose.project=${project}-${branch}`])
    .trim()
    .split("\n")
    .filter(Boolean).length;

before(async () => {
  if (!engineAnswers()) return;
  ({ work, app } = await initAppRepo("dockpack-mcp-life", project));
  mcp = await connectMcp({ cwd: app });
});

after(async () => {
  await mcp?.close();
  if (work) cleanupPrefix(project, work);
});

test("the lifecycle tools are listed with annotations; unknown keys are refused by name", async (t) => {
  if (!needsEngine(t) || !mcp) return;
  const tools = (await mcp.client.listTools()).tools;
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  for (const n of [
    "env_up",
    "env_down",
    "env_remove",
    "env_info",
    "delta_list",
    "delta_inventory",
    "targets_init",
    "targets_add",
    "tool_serve_status",
    "packages_inspect",
    "env_build",
  ])
    assert.ok(byName.has(n), `${n} missing`);
  // every tool says whether it only reads, and describes its structured result
  for (const tool of tools) {
    assert.equal(typeof tool.annotations?.readOnlyHint, "boolean", `${tool.name}: readOnlyHint`);
    if (tool.annotations?.readOnlyHint) assert.notEqual(tool.annotations.destructiveHint, true, tool.name);
    assert.equal(tool.outputSchema?.type, "object", `${tool.name}: outputSchema`);
  }
  for (const n of [
    "env_list",
    "list_packages",
    "validate_package",
    "packages_inspect",
    "import_package",
    "env_remove",
    "tool_list",
    "features_package",
  ])
    assert.ok(
      Object.keys(byName.get(n)?.outputSchema?.properties ?? {}).length > 0,
      `${n}: outputSchema properties`,
    );
  assert.equal(byName.get("env_remove")?.annotations?.destructiveHint, true);
  assert.equal(byName.get("import_package")?.annotations?.destructiveHint, true);
  assert.equal(byName.get("env_list")?.annotations?.readOnlyHint, true);
  assert.equal(byName.get("validate_package")?.annotations?.readOnlyHint, true);
  assert.ok(byName.get("env_info")?.outputSchema, "env_info has an outputSchema");
  assert.equal(byName.get("export_package")?.inputSchema.additionalProperties, false);
  // one naming style: every argument of every tool is camelCase
  for (const tool of tools)
    for (const key of Object.keys((tool.inputSchema.properties as Record<string, unknown>) ?? {}))
      assert.match(key, /^[a-z][a-zA-Z0-9]*$/, `${tool.name}.${key} is not camelCase`);

  const bad = await mcp.call("features_package", { target: "src", output_folder: join(work, "out") });
  assert.equal(bad.isError, true);
  assert.match(bad.text, /output_folder/);
  assert.match(bad.text, /did you mean 'outputFolder'/);
  assert.deepEqual(await readdir(app).then((l) => l.filter((n) => n === "output")), [], "nothing written");
});

test("an agent creates, starts, exports (with progress), imports, starts and removes environments through MCP", async (t) => {
  if (!needsEngine(t) || !mcp) return;
  const created = await mcp.call("env_create", { branch: "one" });
  assert.equal(created.isError, false, created.text);
  const up = await mcp.call("env_up", { branch: "one" });
  assert.equal(up.isError, false, up.text);
  assert.equal(up.value.status, "running");
  inVolume(`${project}-one_media`, "dd if=/dev/urandom of=/data/blob bs=1M count=40 2>/dev/null");

  const out = join(work, "packages");
  const progress: { progress: number; total?: number; message?: string }[] = [];
  const exported = (await mcp.client.callTool(
    { name: "export_package", arguments: { branch: "one", outputDir: out, codec: "gzip" } },
    undefined,
    { onprogress: (p) => progress.push(p), timeout: 120_000 },
  )) as { isError?: boolean; structuredContent?: { package: string; size: number } };
  assert.ok(!exported.isError, JSON.stringify(exported));
  const pkg = exported.structuredContent?.package as string;
  assert.ok(pkg.endsWith(".dockpack.tar"));
  assert.ok(progress.length >= 2, `progress notifications: ${progress.length}`);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i].progress > progress[i - 1].progress);
  assert.ok(
    progress.some((p) => /volume media/.test(p.message ?? "")),
    JSON.stringify(progress.slice(0, 3)),
  );
  assert.equal(running("one"), 2, "the containers run again after the export");
  const inspected = await mcp.call("packages_inspect", { package: pkg });
  assert.equal(inspected.isError, false, inspected.text);
  assert.equal(inspected.value.valid, true);
  assert.ok((inspected.value.composeFiles as string[]).length > 0, inspected.text);
  const built = await mcp.call("env_build", { branch: "one" });
  assert.equal(built.isError, false, built.text);

  const imported = await mcp.call("import_package", { package: pkg, targetBranch: "two" });
  assert.equal(imported.isError, false, imported.text);
  const up2 = await mcp.call("env_up", { branch: "two", offline: true });
  assert.equal(up2.isError, false, up2.text);
  const info = await mcp.call("env_info", { branch: "two" });
  assert.equal(info.value.status, "running");
  assert.equal(
    inVolume(`${project}-two_media`, "wc -c < /data/blob").trim(),
    String(40 * 1024 * 1024),
    "the data came along",
  );

  for (const branch of ["one", "two"]) {
    const removed = await mcp.call("env_remove", { branch, volumes: true, deleteBranch: true, force: true });
    assert.equal(removed.isError, false, removed.text);
  }
  const list = await mcp.call("env_list", {});
  assert.deepEqual(list.value.environments, []);
  assert.equal(running("one") + running("two"), 0);
});

test("a cancelled export leaves the environment running and no package", async (t) => {
  if (!needsEngine(t) || !mcp) return;
  assert.equal((await mcp.call("env_create", { branch: "cancel" })).isError, false);
  assert.equal((await mcp.call("env_up", { branch: "cancel" })).isError, false);
  inVolume(`${project}-cancel_media`, "dd if=/dev/urandom of=/data/blob bs=1M count=300 2>/dev/null");
  const out = join(work, "cancelled");
  const ac = new AbortController();
  let notes = 0;
  const call = mcp.client.callTool(
    { name: "export_package", arguments: { branch: "cancel", outputDir: out, codec: "gzip" } },
    undefined,
    {
      signal: ac.signal,
      timeout: 120_000,
      onprogress: () => {
        notes++;
        if (notes === 3) ac.abort("test cancels");
      },
    },
  );
  await assert.rejects(call, /abort|cancel/i);
  // the server rolls back: containers started again, temp folder removed
  const deadline = Date.now() + 30_000;
  let left: string[] = ["?"];
  while (Date.now() < deadline) {
    left = await readdir(out).catch(() => []);
    if (running("cancel") === 2 && left.length === 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(left, [], "no package and no temp folder");
  assert.equal(running("cancel"), 2, "the containers run again");
  // and nothing is published later
  await new Promise((r) => setTimeout(r, 3000));
  assert.deepEqual(await readdir(out).catch(() => []), []);
  // the server still answers
  const info = await mcp.call("env_info", { branch: "cancel" });
  assert.equal(info.value.status, "running", info.text);
});
