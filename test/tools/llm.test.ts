/**
 * LLM tools (issue 13 B): the real `openai`, `@anthropic-ai/sdk` and `ollama` SDKs against a local
 * server speaking each provider's wire format (JSON and streaming), invoked, served and compiled
 * (the bundled server.cjs, and the built image), alone and in a workflow with an executable step.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import type { DockpackError } from "../../src/core/errors.js";
import { compileTool } from "../../src/tools/compile.js";
import { directoryResolver, invokeTool } from "../../src/tools/invoke.js";
import { findTool, type Tool } from "../../src/tools/manifest.js";
import { startToolServer } from "../../src/tools/server.js";
import { needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { EXAMPLES } from "./helpers.js";
import { type FakeProvider, startFakeProvider } from "./llm-server.js";

const exec = promisify(execFile);
const KEY = "sk-test-secret-key-0123456789";
const PROVIDERS = ["openai", "anthropic", "ollama"] as const;
let fake: FakeProvider;
let dir: string;

/** The environment a service would read from .env, for `provider` against the fake server. */
function providerEnv(provider: (typeof PROVIDERS)[number]): Record<string, string> {
  return {
    LLM_PROVIDER: provider,
    LLM_MODEL: `test-model-${provider}`,
    // OpenAI-compatible endpoints end in /v1; Anthropic's and ollama's base is the server root.
    LLM_BASE_URL: provider === "openai" ? `${fake.url}/v1` : fake.url,
    OPENAI_API_KEY: KEY,
    ANTHROPIC_API_KEY: KEY,
    LLM_MAX_RETRIES: "2",
  };
}
function useProvider(provider: (typeof PROVIDERS)[number]): void {
  Object.assign(process.env, providerEnv(provider));
}
const withStream = (tool: Tool, stream: boolean): Tool => ({
  ...tool,
  manifest: { ...tool.manifest, llm: { ...(tool.manifest.llm as { prompt: string }), stream } },
});

before(async () => {
  fake = await startFakeProvider();
  dir = await mkdtemp(join(tmpdir(), "dockpack-t13-llm-"));
});
after(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
  for (const k of Object.keys(providerEnv("openai"))) delete process.env[k];
});

test("each provider's SDK, plain and streaming: the prompt, model, key and schema go out; the JSON answer comes back checked", async () => {
  const tool = await findTool("summarize", EXAMPLES);
  for (const provider of PROVIDERS)
    for (const stream of [false, true]) {
      useProvider(provider);
      fake.requests.length = 0;
      const res = await invokeTool({ tool: withStream(tool, stream), input: { text: "hello big world" } });
      assert.deepEqual(res.result, { summary: "HELLO BIG WORLD", words: 3 }, `${provider} stream=${stream}`);
      assert.equal(fake.requests.length, 1);
      const r = fake.requests[0];
      assert.equal(
        r.path,
        { openai: "/v1/chat/completions", anthropic: "/v1/messages", ollama: "/api/chat" }[provider],
      );
      assert.equal(r.body.model, `test-model-${provider}`);
      assert.equal(Boolean(r.body.stream), stream);
      // Both SDKs send the key as a bearer token (@anthropic-ai/sdk 1.x too).
      if (provider !== "ollama") assert.equal(r.headers.authorization, `Bearer ${KEY}`);
      const system = provider === "anthropic" ? r.body.system : r.body.messages[0].content;
      assert.match(system, /one JSON object/);
      assert.match(system, /"words":\{"type":"integer"\}/);
      if (provider === "ollama") assert.deepEqual(r.body.format.required, ["summary", "words"]);
      if (provider === "openai") assert.deepEqual(r.body.response_format, { type: "json_object" });
    }
});

test("429 and 5xx are retried by each SDK; a refused key is LLM_AUTH_FAILED and the key never shows", async () => {
  const tool = await findTool("summarize", EXAMPLES);
  for (const provider of PROVIDERS) {
    useProvider(provider);
    fake.requests.length = 0;
    fake.failNext = [429, 503];
    const res = await invokeTool({ tool, input: { text: "retry me" } });
    assert.deepEqual(res.result, { summary: "RETRY ME", words: 2 }, provider);
    assert.equal(fake.requests.length, 3, provider);
    if (provider === "ollama") continue; // ollama has no keys
    fake.failNext = [401];
    await assert.rejects(invokeTool({ tool, input: { text: "x" } }), (e: DockpackError) => {
      assert.equal(e.code, "LLM_AUTH_FAILED", e.message);
      assert.doesNotMatch(`${e.message} ${e.hint} ${JSON.stringify(e.details ?? {})}`, new RegExp(KEY));
      return true;
    });
  }
  fake.failNext = [];
});

test("a wrong answer shape is TOOL_OUTPUT_INVALID; no model or no key are clear errors", async () => {
  const tool = await findTool("summarize", EXAMPLES);
  useProvider("openai");
  fake.answer = () => '```json\n{"summary": 3}\n```';
  try {
    await assert.rejects(invokeTool({ tool, input: { text: "x" } }), /TOOL_OUTPUT_INVALID|output_schema/);
  } finally {
    fake.answer = (await import("./llm-server.js")).defaultAnswer;
  }
  delete process.env.LLM_MODEL;
  await assert.rejects(invokeTool({ tool, input: { text: "x" } }), /set LLM_MODEL/);
  process.env.LLM_MODEL = "m";
  delete process.env.LLM_BASE_URL;
  delete process.env.OPENAI_API_KEY;
  await assert.rejects(
    invokeTool({ tool, input: { text: "x" } }),
    (e: DockpackError) => e.code === "TOOL_ENV_MISSING",
  );
});

test("served: a workflow chaining an executable and an LLM step answers through each provider", async () => {
  const tool = await findTool("shout-summarize", EXAMPLES);
  const s = await startToolServer(tool, { port: 0, resolve: directoryResolver(EXAMPLES) });
  try {
    for (const provider of PROVIDERS) {
      useProvider(provider);
      const r = await fetch(`${s.url}/api/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input_data: { text: "quiet words" } }),
      });
      assert.equal(r.status, 200, provider);
      assert.deepEqual(((await r.json()) as { result: unknown }).result, {
        shouted: "QUIET WORDS",
        summary: "QUIET WORDS",
        words: 2,
      });
    }
  } finally {
    await s.close(1);
  }
});

test("compiled: the bundled server.cjs (and the built image) carry the SDKs; .env.example lists the LLM settings", async (t) => {
  const out = join(dir, "pkg");
  await compileTool({ id: "shout-summarize", toolsDir: EXAMPLES, output: out });
  const envExample = await readFile(join(out, ".env.example"), "utf8");
  for (const k of ["LLM_PROVIDER=", "LLM_MODEL=", "LLM_BASE_URL=", "OPENAI_API_KEY=", "ANTHROPIC_API_KEY="])
    assert.ok(envExample.includes(k), k);
  const input = JSON.stringify({ text: "packed up" });
  // The providers are independent: their runs overlap.
  await Promise.all(
    PROVIDERS.map(async (provider) => {
      const r = await exec(process.execPath, [join(out, "server.cjs"), "--input", input], {
        env: { PATH: process.env.PATH, ...providerEnv(provider) },
      });
      assert.deepEqual(
        JSON.parse(r.stdout),
        { shouted: "PACKED UP", summary: "PACKED UP", words: 2 },
        provider,
      );
    }),
  );
  if (!needsEngine(t)) return;
  const base = await ensureFixture("node");
  const image = `dockpack-t13test/llm:${process.pid}-${Date.now().toString(36)}`;
  try {
    await exec(join(out, "build.sh"), [], { env: { ...process.env, IMAGE: image, BASE_IMAGE: base } });
    await Promise.all(
      PROVIDERS.map(async (provider) => {
        const envArgs = Object.entries(providerEnv(provider)).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
        // host networking: the container reaches the provider server on the host's 127.0.0.1
        const r = await exec("docker", [
          "run",
          "--rm",
          "--network",
          "host",
          ...envArgs,
          image,
          "node",
          "/app/server.cjs",
          "--input",
          input,
        ]);
        assert.deepEqual(
          JSON.parse(r.stdout),
          { shouted: "PACKED UP", summary: "PACKED UP", words: 2 },
          provider,
        );
      }),
    );
  } finally {
    await exec("docker", ["rmi", "-f", image]).catch(() => {});
  }
});
