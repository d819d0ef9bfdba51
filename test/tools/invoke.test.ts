import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DockpackError } from "../../src/core/errors.js";
import { invokeTool, resolveMapping } from "../../src/tools/invoke.js";
import { findTool, listTools, loadTools } from "../../src/tools/manifest.js";
import { parseManifest } from "../../src/tools/manifest-schema.js";
import { promptInput } from "../../src/tools/prompt.js";
import { EXAMPLES, FIXTURE_TOOLS, FIXTURES } from "./helpers.js";

const rejectsWith = async (p: Promise<unknown>, code: string, message?: RegExp) => {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DockpackError, `expected a DockpackError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
};

test("list finds every example tool, sorted, with type and version", async () => {
  const res = await listTools({ toolsDir: EXAMPLES });
  assert.deepEqual(
    res.tools.map((t) => [t.id, t.type]),
    [
      ["basic_calculator", "executable"],
      ["shout-count", "workflow"],
      ["shout-summarize", "workflow"],
      ["sleep", "executable"],
      ["summarize", "llm"],
      ["upper", "executable"],
      ["word-count", "executable"],
    ],
  );
});

test("an invalid tool.yaml names the file and every bad field", async () => {
  await assert.rejects(loadTools(join(FIXTURES, "invalid")), (e: DockpackError) => {
    assert.equal(e.code, "TOOL_MANIFEST_INVALID");
    assert.match(e.message, /invalid\/bad\/tool\.yaml/);
    for (const field of ["id:", "timeout_seconds:", "colour", "command:"])
      assert.match(e.message, new RegExp(field));
    return true;
  });
  const yamlText = await readFile(join(FIXTURES, "invalid-yaml.yaml"), "utf8");
  assert.throws(() => parseManifest(yamlText, "x/tool.yaml"), /x\/tool\.yaml: not valid YAML/);
});

test("duplicate ids, a missing tools dir and an unknown id are clear errors", async () => {
  await rejectsWith(loadTools(join(FIXTURES, "dup")), "TOOL_ID_DUPLICATE", /'same'/);
  await rejectsWith(loadTools(join(FIXTURES, "no-such-dir")), "TOOLS_DIR_MISSING", /no-such-dir/);
  await assert.rejects(findTool("nope", EXAMPLES), (e: DockpackError) => {
    assert.equal(e.code, "TOOL_NOT_FOUND");
    assert.match(e.hint ?? "", /upper/);
    return true;
  });
});

test("invoke validates input, runs (stdin and argument modes) and validates output", async () => {
  const up = await invokeTool({ id: "upper", toolsDir: EXAMPLES, input: { text: "abc" } });
  assert.deepEqual(up.result, { text: "ABC", length: 3 });
  const wc = await invokeTool({ id: "word-count", toolsDir: EXAMPLES, input: { text: "it's two  words" } });
  assert.deepEqual(wc.result, { words: 3, chars: 15 });
  await assert.rejects(
    invokeTool({ id: "upper", toolsDir: EXAMPLES, input: { text: 5, x: 1 } }),
    (e: DockpackError) => {
      assert.equal(e.code, "TOOL_INPUT_INVALID");
      assert.equal(e.usage, true);
      assert.deepEqual([...((e.details?.errors as string[]) ?? [])].sort(), [
        "/: must NOT have additional properties 'x'",
        "/text: must be string",
      ]);
      return true;
    },
  );
  await rejectsWith(invokeTool({ id: "upper", toolsDir: EXAMPLES, input: [1] }), "TOOL_INPUT_INVALID");
});

test("a two-step workflow maps the first step's output into the second", async () => {
  const res = await invokeTool({ id: "shout-count", toolsDir: EXAMPLES, input: { text: "one two three" } });
  assert.deepEqual(res.result, { text: "ONE TWO THREE", words: 3 });
  assert.deepEqual(res.steps?.shout, { text: "ONE TWO THREE", length: 13 });
  assert.throws(
    () => resolveMapping({ a: "$steps.later.x" }, { input: {}, steps: {} }, "wf"),
    /'\$steps\.later\.x' names no earlier step/,
  );
  assert.deepEqual(resolveMapping({ a: ["$input.t", 1, "lit"] }, { input: { t: "v" }, steps: {} }, "wf"), {
    a: ["v", 1, "lit"],
  });
});

test("a crashing tool fails with its exit code and stderr", async () => {
  await assert.rejects(
    invokeTool({ id: "crash", toolsDir: FIXTURE_TOOLS, input: {} }),
    (e: DockpackError) => {
      assert.equal(e.code, "TOOL_FAILED");
      assert.match(e.message, /exit code 3/);
      assert.match(e.message, /boom: the tool crashed/);
      return true;
    },
  );
});

test("a hanging tool is stopped at its timeout", async () => {
  const started = Date.now();
  await rejectsWith(
    invokeTool({ id: "hang", toolsDir: FIXTURE_TOOLS, input: {} }),
    "TOOL_TIMEOUT",
    /within 1 s/,
  );
  assert.ok(Date.now() - started < 5000);
  await rejectsWith(
    invokeTool({ id: "sleep", toolsDir: EXAMPLES, input: { seconds: 5 }, timeoutSeconds: 0.3 }),
    "TOOL_TIMEOUT",
  );
  // The timeout stops the whole process group: a shell's child holding stdout open does not delay it.
  const shell = Date.now();
  await rejectsWith(invokeTool({ id: "hang-shell", toolsDir: FIXTURE_TOOLS, input: {} }), "TOOL_TIMEOUT");
  assert.ok(Date.now() - shell < 5000, `took ${Date.now() - shell} ms`);
});

test("bad output, non-JSON output, missing env and missing programs are named errors", async () => {
  await rejectsWith(
    invokeTool({ id: "bad-output", toolsDir: FIXTURE_TOOLS, input: {} }),
    "TOOL_OUTPUT_INVALID",
    /\/count: must be integer/,
  );
  await rejectsWith(
    invokeTool({ id: "not-json", toolsDir: FIXTURE_TOOLS, input: {} }),
    "TOOL_OUTPUT_NOT_JSON",
  );
  await rejectsWith(
    invokeTool({ id: "needs-env", toolsDir: FIXTURE_TOOLS, input: {} }),
    "TOOL_ENV_MISSING",
    /DOCKPACK_TEST_KEY/,
  );
  await rejectsWith(
    invokeTool({ id: "prog-missing", toolsDir: FIXTURE_TOOLS, input: {} }),
    "PROGRAM_MISSING",
    /dockpack-no-such-program/,
  );
});

test("--prompt text fills the tool's text property", async () => {
  const tool = await findTool("shout-count", EXAMPLES);
  assert.deepEqual(promptInput(tool, "hi"), { text: "hi" });
  const sleep = await findTool("sleep", EXAMPLES);
  assert.throws(() => promptInput(sleep, "x"), /no string input property/);
});

test("seed workflows: step description and on_error {retry, max_retries} run a failing step again", async () => {
  const dir = await mkdtemp(join(tmpdir(), "dockpack-t13-flaky-"));
  process.env.DOCKPACK_TEST_FLAKY_FILE = join(dir, "ran-once");
  try {
    const res = await invokeTool({ id: "seed-flow", toolsDir: FIXTURE_TOOLS, input: {} });
    assert.deepEqual(res.result, { ok: true });
    await rm(join(dir, "ran-once"));
    const m = (await findTool("seed-flow", FIXTURE_TOOLS)).manifest;
    m.steps = m.steps?.map((s) => ({ ...s, on_error: undefined }));
    await rejectsWith(
      invokeTool({
        tool: { ...(await findTool("seed-flow", FIXTURE_TOOLS)), manifest: m },
        toolsDir: FIXTURE_TOOLS,
        input: {},
      }),
      "TOOL_FAILED",
      /step 'first'/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("one broken tool.yaml does not hide the other tools from list and invoke", async () => {
  const dir = join(FIXTURES, "mixed");
  const res = await listTools({ toolsDir: dir });
  assert.deepEqual(
    res.tools.map((t) => t.id),
    ["good"],
  );
  assert.equal(res.broken.length, 1);
  assert.equal(res.broken[0].code, "TOOL_MANIFEST_INVALID");
  assert.match(res.broken[0].message, /mixed\/bad\/tool\.yaml/);
  assert.deepEqual((await invokeTool({ id: "good", toolsDir: dir, input: {} })).result, { fine: true });
  await rejectsWith(findTool("bad", dir), "TOOL_MANIFEST_INVALID", /colour/);
  await rejectsWith(loadTools(dir), "TOOL_MANIFEST_INVALID");
});
