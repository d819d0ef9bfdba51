import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { register } from "../../src/mcp/tools.js";
import { EXAMPLES } from "./helpers.js";

let client: Client;
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-t7-mcp-"));
  const server = new McpServer({ name: "dockpack-test", version: "0.0.0" });
  register(server);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  client = new Client({ name: "test", version: "0.0.0" });
  await client.connect(b);
});
after(async () => {
  await client.close();
  await rm(dir, { recursive: true, force: true });
});

type Result = { isError?: boolean; structuredContent?: Record<string, unknown>; content: { text: string }[] };

test("tool_list, tool_invoke and tool_compile are listed with input schemas", async () => {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, [
    "tool_compile",
    "tool_invoke",
    "tool_list",
    "tool_serve",
    "tool_serve_status",
    "tool_serve_stop",
  ]);
  const invoke = tools.find((t) => t.name === "tool_invoke");
  assert.deepEqual(invoke?.inputSchema.required, ["id", "input"]);
});

test("tool_list and tool_invoke return the library results", async () => {
  const list = (await client.callTool({ name: "tool_list", arguments: { toolsDir: EXAMPLES } })) as Result;
  assert.ok(!list.isError);
  const ids = ((list.structuredContent?.tools ?? []) as { id: string }[]).map((t) => t.id);
  assert.ok(ids.includes("upper") && ids.includes("shout-count"));
  const inv = (await client.callTool({
    name: "tool_invoke",
    arguments: { id: "shout-count", input: { text: "m c p" }, toolsDir: EXAMPLES },
  })) as Result;
  assert.ok(!inv.isError, inv.content[0]?.text);
  assert.deepEqual(inv.structuredContent?.result, { text: "M C P", words: 3 });
  const bad = (await client.callTool({
    name: "tool_invoke",
    arguments: { id: "upper", input: { nope: 1 }, toolsDir: EXAMPLES },
  })) as Result;
  assert.equal(bad.isError, true);
  assert.equal(JSON.parse(bad.content[0].text).error.code, "TOOL_INPUT_INVALID");
});

test("tool_compile writes the docker package; a non-empty output needs force", async () => {
  const out = join(dir, "pkg");
  const args = { id: "upper", output: out, toolsDir: EXAMPLES, baseImage: "dockpack-fixture/node:20" };
  const r = (await client.callTool({ name: "tool_compile", arguments: args })) as Result;
  assert.ok(!r.isError, r.content[0]?.text);
  assert.equal(r.structuredContent?.image, "dockpack-tool-upper:1.0.0");
  assert.ok((await readdir(out)).includes("Dockerfile"));
  const again = (await client.callTool({ name: "tool_compile", arguments: args })) as Result;
  assert.equal(again.isError, true);
  assert.equal(JSON.parse(again.content[0].text).error.code, "OUTPUT_EXISTS");
});
