/**
 * Issue 14 A4: the delta and targets MCP tools declare real `outputSchema`s (not a bare object),
 * and what they return validates against them through the SDK client (which checks every
 * structuredContent against the listed outputSchema), declaring every top-level field returned.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { register as registerDelta } from "../../src/mcp/delta.js";
import { register as registerTargets } from "../../src/mcp/targets.js";
import { versionPair, writeSynth } from "../image/synthetic.js";
import { makeSampleProject } from "../targets/sample.js";

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
}

test("delta and targets tools: outputSchemas describe their results; structuredContent validates", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dockpack-mcp-output-"));
  const root = makeSampleProject();
  const server = new McpServer({ name: "t", version: "0" });
  registerDelta(server);
  registerTargets(server);
  const [a, b] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "c", version: "0" });
  await Promise.all([server.connect(a), client.connect(b)]);
  try {
    const tools = new Map((await client.listTools()).tools.map((t) => [t.name, t]));
    const schemaOf = (name: string) => tools.get(name)?.outputSchema as JsonSchema;
    for (const name of tools.keys()) {
      const s = schemaOf(name);
      assert.equal(s.type, "object", name);
      assert.ok(Object.keys(s.properties ?? {}).length >= 2, `${name}: outputSchema declares its fields`);
      assert.ok((s.required ?? []).length > 0, `${name}: outputSchema has required fields`);
    }
    // The client validates structuredContent against the outputSchema (it throws when it does not
    // match); also every top-level field returned must be declared.
    const call = async (name: string, args: Record<string, unknown>) => {
      const r = await client.callTool({ name, arguments: args });
      assert.ok(!r.isError, `${name}: ${JSON.stringify(r.content)}`);
      const s = r.structuredContent as Record<string, unknown>;
      const declared = Object.keys(schemaOf(name).properties ?? {});
      for (const k of Object.keys(s))
        assert.ok(declared.includes(k), `${name}: '${k}' is not in its outputSchema`);
      for (const k of schemaOf(name).required ?? []) assert.ok(k in s, `${name}: required '${k}' missing`);
      return s;
    };

    // delta: create, info, list, apply, inventory on synthetic archives (no engine needed)
    const { v1, v2 } = await versionPair("dockpack-test-mcp-output");
    const f1 = join(dir, "v1.tar");
    const f2 = join(dir, "v2.tar");
    await writeSynth(v1, f1);
    await writeSynth(v2, f2);
    const pkg = join(dir, "p.dpd");
    const created = await call("delta_create", { image: f2, output: pkg, bases: [f1], method: "zstd" });
    assert.equal((created.metadata as { format: string }).format, "dockpack-delta");
    const info = await call("delta_info", { package: pkg });
    assert.equal((info.layerCounts as { total: number }).total, (info.layers as unknown[]).length);
    const list = await call("delta_list", { package: pkg });
    assert.equal((list.layers as { ship: string }[])[1].ship, "delta");
    const applied = await call("delta_apply", {
      package: pkg,
      baseArchives: [f1],
      output: join(dir, "out.tar"),
    });
    assert.equal(applied.imageId, v2.id);
    const inv = await call("delta_inventory", { images: [f1], output: join(dir, "inv.json") });
    assert.equal(inv.images, 1);

    // targets: init, add, list, verify, build (dry run)
    const init = await call("targets_init", { root });
    assert.ok((init.created as string[]).length > 0);
    const added = await call("targets_add", { root, type: "service", id: "web", module: "services/web" });
    assert.equal((added.target as { id: string }).id, "web");
    mkdirSync(join(root, "jobs"), { recursive: true });
    const listed = await call("targets_list", { root });
    assert.deepEqual(
      (listed.targets as { id: string }[]).map((t) => t.id),
      ["web"],
    );
    const verified = await call("targets_verify", { root });
    assert.equal(verified.ok, true, JSON.stringify(verified));
    const plan = await call("targets_build", { root, target: "web", dryRun: true });
    assert.equal((plan.plan as { target: string }).target, "web");
  } finally {
    await client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
});
