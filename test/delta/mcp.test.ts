/** MCP tools delta_create, delta_apply, delta_info through the SDK's in-memory transport. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { register } from "../../src/mcp/delta.js";
import { versionPair, writeSynth } from "../image/synthetic.js";

test("delta tools create, describe and apply a package; errors come back as tool errors", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-mcp-"));
  const server = new McpServer({ name: "t", version: "0" });
  register(server);
  const [a, b] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "c", version: "0" });
  await Promise.all([server.connect(a), client.connect(b)]);
  try {
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ["delta_apply", "delta_create", "delta_info", "delta_inventory", "delta_list"]);
    const { v1, v2 } = await versionPair("dockpack-test-mcp");
    const f1 = join(dir, "v1.tar");
    const f2 = join(dir, "v2.tar");
    await writeSynth(v1, f1);
    await writeSynth(v2, f2);
    const pkg = join(dir, "p.dpd");
    const c = await client.callTool({
      name: "delta_create",
      arguments: { image: f2, output: pkg, bases: [f1], method: "zstd" },
    });
    assert.ok(!c.isError, JSON.stringify(c.content));
    const info = await client.callTool({ name: "delta_info", arguments: { package: pkg } });
    const s = info.structuredContent as any;
    assert.equal(s.source.id, v2.id);
    assert.equal(s.layers[1].ship, "delta");
    const out = join(dir, "out.tar");
    const ap = await client.callTool({
      name: "delta_apply",
      arguments: { package: pkg, baseArchives: [f1], output: out },
    });
    assert.equal((ap.structuredContent as any).imageId, v2.id);
    const bad = await client.callTool({ name: "delta_info", arguments: { package: join(dir, "none.dpd") } });
    assert.equal(bad.isError, true);
    assert.match(JSON.stringify(bad.content), /DELTA_PACKAGE_NOT_FOUND/);
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
