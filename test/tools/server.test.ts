import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { directoryResolver } from "../../src/tools/invoke.js";
import { findTool } from "../../src/tools/manifest.js";
import { type RunningService, serviceConfigFromEnv, startToolServer } from "../../src/tools/server.js";
import { EXAMPLES, FIXTURE_TOOLS, freePort, waitForHttp } from "./helpers.js";

const services: RunningService[] = [];
async function start(id: string, dir: string, config = {}): Promise<string> {
  const tool = await findTool(id, dir);
  const s = await startToolServer(tool, {
    port: 0,
    host: "127.0.0.1",
    resolve: directoryResolver(dir),
    ...config,
  });
  services.push(s);
  return s.url;
}
const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/api/invoke`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
const json = (res: Response): Promise<any> => res.json();

let upper: string;
before(async () => {
  upper = await start("upper", EXAMPLES);
});
after(async () => {
  await Promise.all(services.map((s) => s.close()));
});

test("GET /, /api/health, /api/info, /openapi.json answer as documented", async () => {
  const root = await json(await fetch(`${upper}/`));
  assert.equal(root.tool_id, "upper");
  assert.ok(root.endpoints.includes("POST /api/invoke"));
  assert.deepEqual(await json(await fetch(`${upper}/api/health`)), {
    status: "healthy",
    tool_id: "upper",
    version: "1.0.0",
  });
  const info = await json(await fetch(`${upper}/api/info`));
  assert.equal(info.type, "executable");
  assert.deepEqual(info.input_schema.required, ["text"]);
  assert.ok(info.output_schema.properties.length);
  const api = await json(await fetch(`${upper}/openapi.json`));
  assert.equal(api.openapi, "3.1.0");
  assert.deepEqual(
    api.paths["/api/invoke"].post.requestBody.content["application/json"].schema,
    info.input_schema,
  );
  assert.equal((await fetch(`${upper}/nope`)).status, 404);
});

test("POST /api/invoke: 200 result, 400 not JSON, 422 schema errors, 413 too large", async () => {
  const ok = await post(upper, JSON.stringify({ text: "hey" }));
  assert.equal(ok.status, 200);
  const body = await json(ok);
  assert.equal(body.success, true);
  assert.deepEqual(body.result, { text: "HEY", length: 3 });
  const bad = await post(upper, "{nope");
  assert.equal(bad.status, 400);
  assert.equal((await json(bad)).success, false);
  const invalid = await post(upper, JSON.stringify({ text: 1 }));
  assert.equal(invalid.status, 422);
  assert.deepEqual((await json(invalid)).errors, ["/text: must be string"]);
  const big = await post(upper, JSON.stringify({ text: "x".repeat(1024 * 1024 + 10) }));
  assert.equal(big.status, 413);
});

test("a crashing tool → 500 and the server keeps answering; a hanging tool → 500 timeout", async () => {
  const logged: string[] = [];
  const crash = await start("crash", FIXTURE_TOOLS, { log: (l: string) => logged.push(l) });
  const r = await post(crash, "{}");
  assert.equal(r.status, 500);
  const body = await json(r);
  assert.equal(body.success, false);
  assert.equal(body.code, "TOOL_FAILED");
  // The client gets a code, a short message and a request id; stderr goes to the log only.
  assert.equal(body.error, "Tool 'crash' failed with exit code 3");
  assert.match(body.request_id, /^[0-9a-f-]{36}$/);
  assert.equal(r.headers.get("x-request-id"), body.request_id);
  assert.ok(
    logged.some((l) => l.includes(body.request_id) && /boom/.test(l)),
    logged.join("\n"),
  );
  assert.equal((await fetch(`${crash}/api/health`)).status, 200);
  const hang = await start("hang", FIXTURE_TOOLS);
  const t = Date.now();
  const h = await post(hang, "{}");
  assert.equal(h.status, 500);
  assert.equal((await json(h)).code, "TOOL_TIMEOUT");
  assert.ok(Date.now() - t < 5000);
  assert.equal((await fetch(`${hang}/api/health`)).status, 200);
  const metrics = await (await fetch(`${crash}/metrics`)).text();
  assert.match(metrics, /tool_errors_total\{tool_id="crash"\} 1/);
});

test("a workflow service runs both steps", async () => {
  const url = await start("shout-count", EXAMPLES);
  const r = await json(await post(url, JSON.stringify({ text: "a b c" })));
  assert.deepEqual(r.result, { text: "A B C", words: 3 });
});

test("/metrics is Prometheus text with requests, errors, uptime and a latency histogram", async () => {
  const url = await start("upper", EXAMPLES);
  await post(url, JSON.stringify({ text: "a" }));
  await post(url, "x");
  await (await fetch(`${url}/wp-login.php`)).arrayBuffer();
  const res = await fetch(`${url}/metrics`);
  assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
  const text = await res.text();
  assert.match(text, /# TYPE tool_requests_total counter/);
  assert.match(text, /tool_requests_total\{tool_id="upper",path="\/api\/invoke",status="200"\} 1/);
  assert.match(text, /tool_requests_total\{tool_id="upper",path="\/api\/invoke",status="400"\} 1/);
  assert.match(text, /tool_errors_total\{tool_id="upper"\} 0/);
  assert.match(text, /tool_requests_total\{tool_id="upper",path="\(other\)",status="404"\} 1/);
  assert.match(text, /tool_uptime_seconds\{tool_id="upper"\} \d+\.\d+/);
  assert.match(text, /tool_invoke_duration_seconds_bucket\{tool_id="upper",le="\+Inf"\} 1/);
  assert.match(text, /tool_invoke_duration_seconds_count\{tool_id="upper"\} 1/);
});

test("bearer token, CORS allow-list and rate limit (429)", async () => {
  const url = await start("upper", EXAMPLES, {
    token: "s3cret",
    corsOrigins: ["https://ok.example"],
    rateLimitPerMinute: 2,
  });
  const body = JSON.stringify({ text: "a" });
  assert.equal((await post(url, body)).status, 401);
  assert.equal((await post(url, body, { authorization: "Bearer wrong" })).status, 401);
  assert.equal((await fetch(`${url}/api/info`)).status, 401);
  assert.equal((await fetch(`${url}/api/health`)).status, 200);
  assert.equal((await post(url, body, { authorization: "Bearer s3cret" })).status, 200);
  const cors = await fetch(`${url}/api/health`, { headers: { origin: "https://ok.example" } });
  assert.equal(cors.headers.get("access-control-allow-origin"), "https://ok.example");
  const other = await fetch(`${url}/api/health`, { headers: { origin: "https://evil.example" } });
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  assert.equal((await post(url, body, { authorization: "Bearer s3cret" })).status, 200);
  const limited = await post(url, body, { authorization: "Bearer s3cret" });
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers.get("retry-after")) > 0);
  const noCors = await fetch(`${upper}/api/health`, { headers: { origin: "https://ok.example" } });
  assert.equal(noCors.headers.get("access-control-allow-origin"), null);
});

test("settings come from the environment; bad values are usage errors naming the variable", () => {
  const cfg = serviceConfigFromEnv({
    API_PORT: "9000",
    CORS_ORIGINS: "a, b",
    API_TOKEN: "",
    RATE_LIMIT_PER_MINUTE: "5",
  });
  assert.equal(cfg.port, 9000);
  assert.deepEqual(cfg.corsOrigins, ["a", "b"]);
  assert.equal(cfg.token, undefined);
  assert.equal(cfg.rateLimitPerMinute, 5);
  assert.throws(() => serviceConfigFromEnv({ API_PORT: "http" }), /API_PORT=http/);
});

test("CLI serve: SIGTERM lets the in-flight request finish, then exits 0", async () => {
  const port = await freePort();
  const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      main,
      "tool",
      "serve",
      "sleep",
      "--tools-dir",
      EXAMPLES,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    await waitForHttp(`http://127.0.0.1:${port}/api/health`, 30);
    const inflight = post(`http://127.0.0.1:${port}`, JSON.stringify({ seconds: 1 }));
    await new Promise((r) => setTimeout(r, 300));
    child.kill("SIGTERM");
    const res = await inflight;
    assert.equal(res.status, 200);
    assert.deepEqual((await json(res)).result, { slept: 1 });
    assert.equal(await exited, 0);
    assert.match(stderr, /SIGTERM: finishing in-flight requests/);
    assert.match(stderr, /^POST \/api\/invoke 200 \d+\.\dms$/m);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/api/health`));
  } finally {
    child.kill("SIGKILL");
  }
});

test("a port in use is a clear error naming the address", async () => {
  const port = Number(new URL(upper).port);
  const tool = await findTool("upper", EXAMPLES);
  await assert.rejects(
    startToolServer(tool, { port, host: "127.0.0.1" }),
    (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, "SERVICE_LISTEN_FAILED");
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}: EADDRINUSE`));
      assert.match(e.hint ?? "", /--port/);
      return true;
    },
  );
});

test("MAX_CONCURRENT_INVOKES: requests past the limit wait their turn (gauges in /metrics)", async () => {
  const url = await start("sleep", EXAMPLES, { maxConcurrent: 1 });
  const body = JSON.stringify({ seconds: 0.6 });
  const t = Date.now();
  const both = Promise.all([post(url, body), post(url, body)]);
  await new Promise((r) => setTimeout(r, 300));
  const during = await (await fetch(`${url}/metrics`)).text();
  assert.match(during, /tool_invokes_in_flight\{tool_id="sleep"\} 1/);
  assert.match(during, /tool_invokes_queued\{tool_id="sleep"\} 1/);
  const answers = await both;
  assert.deepEqual(
    answers.map((r) => r.status),
    [200, 200],
  );
  assert.ok(Date.now() - t >= 1200, `two 0.6 s runs one after the other took ${Date.now() - t} ms`);
  assert.match(await (await fetch(`${url}/metrics`)).text(), /tool_invokes_in_flight\{tool_id="sleep"\} 0/);
  assert.equal(serviceConfigFromEnv({ MAX_CONCURRENT_INVOKES: "3" }).maxConcurrent, 3);
});

test("LOG_LEVEL=debug (or the seed's FLASK_DEBUG=1) logs each invoke; info does not", async () => {
  assert.equal(serviceConfigFromEnv({ LOG_LEVEL: "debug" }).logLevel, "debug");
  assert.equal(serviceConfigFromEnv({ FLASK_DEBUG: "1" }).logLevel, "debug");
  assert.equal(serviceConfigFromEnv({}).logLevel, "info");
  assert.throws(() => serviceConfigFromEnv({ LOG_LEVEL: "loud" }), /LOG_LEVEL=loud/);
  const debug: string[] = [];
  const info: string[] = [];
  const d = await start("upper", EXAMPLES, { logLevel: "debug", log: (l: string) => debug.push(l) });
  const i = await start("upper", EXAMPLES, { log: (l: string) => info.push(l) });
  for (const url of [d, i]) assert.equal((await post(url, JSON.stringify({ text: "x" }))).status, 200);
  assert.ok(
    debug.some((l) => /^debug: \[[0-9a-f-]+\] invoke 'upper'/.test(l)),
    debug.join("\n"),
  );
  assert.deepEqual(info, []);
});
