/** MCP tools targets_list, targets_verify, targets_build through the SDK's in-memory client. */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { silentReporter } from "../../src/core/output.js";
import { register } from "../../src/mcp/targets.js";
import { addTarget, initTargets } from "../../src/targets/index.js";
import { makeSampleProject } from "./sample.js";

const root = makeSampleProject();
after(() => rmSync(root, { recursive: true, force: true }));

test("targets tools list, verify and plan a build; errors are tool errors with a code", async () => {
  await initTargets({ root }, silentReporter());
  await addTarget({ root, type: "service", id: "web", module: "services/web" }, silentReporter());
  const server = new McpServer({ name: "dockpack-test", version: "0" });
  register(server);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "test", version: "0" });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  try {
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(tools, [
      "targets_add",
      "targets_build",
      "targets_init",
      "targets_list",
      "targets_verify",
    ]);
    const build = (await client.listTools()).tools.find((t) => t.name === "targets_build");
    assert.deepEqual((build?.inputSchema.required ?? []).sort(), ["root", "target"]);

    const list = await client.callTool({ name: "targets_list", arguments: { root } });
    assert.equal(list.isError, undefined);
    const targets = (list.structuredContent as { targets: { id: string; image: string }[] }).targets;
    assert.deepEqual(
      targets.map((t) => t.id),
      ["web"],
    );

    const verify = await client.callTool({ name: "targets_verify", arguments: { root, strict: true } });
    const v = verify.structuredContent as { ok: boolean; errors: unknown[]; warnings: unknown[] };
    assert.equal(v.ok, true, JSON.stringify(v));

    const plan = await client.callTool({
      name: "targets_build",
      arguments: {
        root,
        target: "web",
        tags: ["2.0.0"],
        registry: "ghcr.io/acme",
        buildArgs: { BASE_IMAGE: "local/node:20" },
        dryRun: true,
      },
    });
    const p = plan.structuredContent as {
      dryRun: boolean;
      plan: { tags: string[]; buildArgs: Record<string, string> };
    };
    assert.equal(p.dryRun, true);
    assert.deepEqual(p.plan.tags, ["ghcr.io/acme/web:2.0.0"]);
    assert.deepEqual(p.plan.buildArgs, { BASE_IMAGE: "local/node:20" });

    const bad = await client.callTool({
      name: "targets_build",
      arguments: { root, target: "nope", dryRun: true },
    });
    assert.equal(bad.isError, true);
    const text = (bad.content as { type: string; text: string }[])[0].text;
    assert.equal(JSON.parse(text).error.code, "TARGET_NOT_FOUND");
  } finally {
    await client.close();
    await server.close();
  }
});
