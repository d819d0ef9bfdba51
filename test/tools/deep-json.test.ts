/**
 * Issue 12 A13: a 100 000-deep JSON request body is a named input error (400, the depth named),
 * not a stack overflow answered as INTERNAL_ERROR; the tool does not run and the server stays up.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { jsonNestingDepth, MAX_JSON_DEPTH } from "../../src/core/json.js";
import { directoryResolver } from "../../src/tools/invoke.js";
import { findTool } from "../../src/tools/manifest.js";
import { type RunningService, startToolServer } from "../../src/tools/server.js";
import { FIXTURE_TOOLS } from "./helpers.js";

const services: RunningService[] = [];
after(async () => {
  await Promise.all(services.map((s) => s.close(1)));
});

test("jsonNestingDepth: linear, strings and comments skipped", () => {
  assert.equal(jsonNestingDepth('{"a":[1,{"b":"[[[{{{"}]}'), 3);
  assert.equal(jsonNestingDepth('{ // [[[\n "a": /* {{{ */ [] }'), 2);
  assert.equal(jsonNestingDepth('"\\"[["'), 0);
  const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
  assert.equal(jsonNestingDepth(deep), 100_000);
});

test("tool server: a 100 000-deep body is a 400 naming the depth; the server still answers", async () => {
  const tool = await findTool("marker", FIXTURE_TOOLS);
  const s = await startToolServer(tool, {
    port: 0,
    host: "127.0.0.1",
    resolve: directoryResolver(FIXTURE_TOOLS),
  });
  services.push(s);
  for (const body of [
    `{"delay":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
    `{"input_data":${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}}`,
    `${"[".repeat(MAX_JSON_DEPTH + 1)}${"]".repeat(MAX_JSON_DEPTH + 1)}`,
  ]) {
    const r = await fetch(`${s.url}/api/invoke`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    const answer = (await r.json()) as { success: boolean; error?: string; code?: string };
    assert.equal(r.status, 400, JSON.stringify(answer));
    assert.equal(answer.success, false);
    assert.match(JSON.stringify(answer), /levels deep, more than the 256 allowed/);
    assert.doesNotMatch(JSON.stringify(answer), /INTERNAL_ERROR|Maximum call stack/);
  }
  const ok = await fetch(`${s.url}/api/health`);
  assert.equal(ok.status, 200);
});
