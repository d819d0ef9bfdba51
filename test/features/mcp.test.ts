/** The MCP tool `features_package`, through the SDK client over a real stdio connection to `dockpack mcp`. */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { connectMcp } from "../mcp/client.js";
import { metaFor, tempDir, writeFeature } from "./helpers.js";

test("MCP features_package: schema, result object, tool error with code and nothing written", async () => {
  const { dir, cleanup } = await tempDir();
  const mcp = await connectMcp({ cwd: dir });
  try {
    await writeFeature(join(dir, "src"), "one");
    await writeFeature(join(dir, "src"), "two");
    const { tools } = await mcp.client.listTools();
    const tool = tools.find((t) => t.name === "features_package");
    assert.ok(tool, "features_package is listed");
    const props = Object.keys(
      (tool.inputSchema as { properties: Record<string, unknown> }).properties,
    ).sort();
    assert.deepEqual(props, [
      "concurrency",
      "forceCleanOutputFolder",
      "outputFolder",
      "sourceDateEpoch",
      "target",
    ]);

    const ok = await mcp.call("features_package", { target: "src", outputFolder: "dist" });
    assert.equal(ok.isError, false, ok.text);
    assert.equal(ok.value.count, 2);
    assert.equal(ok.value.outputDir, join(dir, "dist"));
    assert.deepEqual(
      (ok.value.features as { id: string }[]).map((f) => f.id),
      ["one", "two"],
    );
    assert.deepEqual((await readdir(join(dir, "dist"))).sort(), [
      "devcontainer-collection.json",
      "devcontainer-feature-one.tgz",
      "devcontainer-feature-two.tgz",
    ]);

    await writeFeature(join(dir, "src"), "two", { meta: metaFor("two", { version: "2" }) });
    const bad = await mcp.call("features_package", { target: "src", outputFolder: "dist2" });
    assert.equal(bad.isError, true);
    assert.match(bad.text, /"code": "FEATURES_INVALID"/);
    assert.match(bad.text, /the version '2' is not a semantic version/);
    assert.deepEqual((await readdir(dir)).sort(), ["dist", "src"]);
  } finally {
    await mcp.close();
    await cleanup();
  }
});
