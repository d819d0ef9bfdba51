/**
 * The attacks of issue 13 A3–A8 against a tool service: each gets its 4xx/5xx and the tool does
 * not run (or stops); the same hardening is checked in the compiled container by container tests.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { DockpackError } from "../../src/core/errors.js";
import { directoryResolver, invokeTool } from "../../src/tools/invoke.js";
import { findTool } from "../../src/tools/manifest.js";
import { type RunningService, serviceConfigFromEnv, startToolServer } from "../../src/tools/server.js";
import { FIXTURE_TOOLS, freePort, waitForHttp } from "./helpers.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
let dir: string;
const services: RunningService[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-t13-sec-"));
});
after(async () => {
  await Promise.all(services.map((s) => s.close(1)));
  await rm(dir, { recursive: true, force: true });
});

async function start(id: string, config = {}): Promise<string> {
  const tool = await findTool(id, FIXTURE_TOOLS);
  const s = await startToolServer(tool, {
    port: 0,
    host: "127.0.0.1",
    resolve: directoryResolver(FIXTURE_TOOLS),
    ...config,
  });
  services.push(s);
  return s.url;
}
const runs = async (file: string) =>
  (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean).length;
/** True while `pid` runs (a zombie waiting for its new parent to reap it counts as dead). */
const alive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("A3: a cross-site text/plain or form POST is refused with 415 and the tool does not run", async () => {
  const mark = join(dir, "a3");
  process.env.DOCKPACK_TEST_MARK_FILE = mark;
  const url = await start("marker");
  for (const type of [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
  ]) {
    const r = await fetch(`${url}/api/invoke`, {
      method: "POST",
      body: "{}",
      headers: { origin: "https://evil.example", ...(type ? { "content-type": type } : {}) },
    });
    assert.equal(r.status, 415, type);
    const body = (await r.json()) as { code: string; request_id: string };
    assert.equal(body.code, "UNSUPPORTED_MEDIA_TYPE");
  }
  assert.equal(await runs(mark), 0, "the tool ran");
  const ok = await fetch(`${url}/api/invoke`, {
    method: "POST",
    body: "{}",
    headers: { "content-type": "application/json; charset=utf-8" },
  });
  assert.equal(ok.status, 200);
  assert.equal(await runs(mark), 1);
});

test("a 100 000-deep input: the service answers 400 JSON_TOO_DEEP and the tool does not run; invoke (CLI, MCP) refuses it as TOOL_INPUT_INVALID", async () => {
  const mark = join(dir, "deep");
  process.env.DOCKPACK_TEST_MARK_FILE = mark;
  const url = await start("marker");
  const depth = 100_000;
  const r = await fetch(`${url}/api/invoke`, {
    method: "POST",
    body: `{"x":${"[".repeat(depth)}${"]".repeat(depth)}}`,
    headers: { "content-type": "application/json" },
  });
  assert.equal(r.status, 400);
  const b = (await r.json()) as { code: string; request_id: string };
  assert.equal(b.code, "JSON_TOO_DEEP");
  assert.ok(b.request_id);
  // The library path refuses a value that deep before anything recurses into it.
  let deep: unknown = 1;
  for (let i = 0; i < depth; i++) deep = [deep];
  await assert.rejects(
    invokeTool({ tool: await findTool("marker", FIXTURE_TOOLS), input: { x: deep } }),
    (e: DockpackError) => e.code === "TOOL_INPUT_INVALID" && /nested deeper than 256/.test(e.message),
  );
  assert.equal(await runs(mark), 0, "the tool ran");
});

test("A4: a Python traceback with absolute paths stays in the log; the client gets code, message, request id", async () => {
  const logged: string[] = [];
  const url = await start("py-trace", { log: (l: string) => logged.push(l) });
  const r = await fetch(`${url}/api/invoke`, {
    method: "POST",
    body: "{}",
    headers: { "content-type": "application/json" },
  });
  assert.equal(r.status, 500);
  const text = await r.text();
  const body = JSON.parse(text) as { code: string; error: string; request_id: string };
  assert.equal(body.code, "TOOL_FAILED");
  assert.doesNotMatch(text, /Traceback|secret detail|\/work\/|fail\.py/);
  assert.ok(
    logged.some((l) => l.includes(body.request_id) && l.includes("Traceback") && l.includes("fail.py")),
  );
});

test("A5: invokes whose clients gave up do not run; the queue is bounded (503 + Retry-After)", async () => {
  const mark = join(dir, "a5");
  process.env.DOCKPACK_TEST_MARK_FILE = mark;
  const url = await start("marker", { maxConcurrent: 2, maxQueued: 30 });
  // 20 clients give up after 0.3 s; each tool would mark after 1 s.
  await Promise.all(
    Array.from({ length: 20 }, () =>
      fetch(`${url}/api/invoke`, {
        method: "POST",
        body: JSON.stringify({ delay: 1 }),
        headers: { "content-type": "application/json" },
        signal: AbortSignal.timeout(300),
      }).catch(() => undefined),
    ),
  );
  await sleep(1500);
  assert.equal(await runs(mark), 0, "abandoned invokes ran to completion");
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.doesNotMatch(metrics, /path="\/api\/invoke",status="200"/);
  assert.match(metrics, /tool_invokes_in_flight\{tool_id="marker"\} 0/);
  assert.match(metrics, /tool_invokes_queued\{tool_id="marker"\} 0/);

  const small = await start("marker", { maxConcurrent: 1, maxQueued: 1 });
  const send = () =>
    fetch(`${small}/api/invoke`, {
      method: "POST",
      body: JSON.stringify({ delay: 0.5 }),
      headers: { "content-type": "application/json" },
    });
  const first = [send(), send()];
  await sleep(150);
  const third = await send();
  assert.equal(third.status, 503);
  assert.equal(third.headers.get("retry-after"), "1");
  assert.equal(((await third.json()) as { code: string }).code, "SERVICE_BUSY");
  assert.deepEqual(
    (await Promise.all(first)).map((r) => r.status),
    [200, 200],
  );
  assert.equal(serviceConfigFromEnv({ MAX_QUEUED_INVOKES: "7" }).maxQueued, 7);
});

test("A6: a tool's background children die when its invoke ends", async () => {
  const url = await start("orphan");
  const r = await fetch(`${url}/api/invoke`, {
    method: "POST",
    body: "{}",
    headers: { "content-type": "application/json" },
  });
  assert.equal(r.status, 200);
  const { pid } = ((await r.json()) as { result: { pid: number } }).result;
  await sleep(200);
  assert.equal(alive(pid), false, `sleep 120 (pid ${pid}) outlived the invoke`);
});

function serveCli(id: string, port: number, env: Record<string, string> = {}): ChildProcess {
  return spawn(
    process.execPath,
    ["--import", "tsx", MAIN, "tool", "serve", id, "--tools-dir", FIXTURE_TOOLS, "--port", String(port)],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NO_COLOR: "1", ...env } },
  );
}

for (const how of ["SIGKILL", "two SIGTERMs"] as const)
  test(`A6: ${how} to the server kills the running tool`, async () => {
    const port = await freePort();
    const pidFile = join(dir, `a6-${how.length}.pid`);
    const child = serveCli("pidfile", port, { DOCKPACK_TEST_PID_FILE: pidFile });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/api/health`, 30);
      const req = fetch(`http://127.0.0.1:${port}/api/invoke`, {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" },
      }).catch(() => undefined);
      let pid = 0;
      for (let i = 0; i < 150 && !pid; i++) {
        await sleep(100);
        pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
      }
      assert.ok(pid > 0 && alive(pid), "the tool did not start");
      if (how === "SIGKILL")
        child.kill("SIGKILL"); // the watchdog kills the tool
      else {
        child.kill("SIGTERM"); // waits for the in-flight request…
        await sleep(300);
        child.kill("SIGTERM"); // …the second one exits at once, killing the tool on exit
      }
      await req;
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
      assert.equal(alive(pid), false, "the tool outlived the SIGKILLed server");
    } finally {
      child.kill("SIGKILL");
    }
  });

test("A7: slow-header clients do not hold up shutdown; A8: serve binds 127.0.0.1 by default", async () => {
  const port = await freePort();
  const child = serveCli("marker", port, { SHUTDOWN_TIMEOUT_SECONDS: "2", API_HOST: "" });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const sockets: Socket[] = [];
  try {
    await waitForHttp(`http://127.0.0.1:${port}/api/health`, 30);
    assert.match(stderr, new RegExp(`on http://127\\.0\\.0\\.1:${port}`));
    assert.doesNotMatch(stderr, /without API_TOKEN/);
    for (let i = 0; i < 20; i++) {
      const s = connect(port, "127.0.0.1");
      s.on("error", () => {});
      s.write("POST /api/invoke HTTP/1.1\r\nHost: x\r\n"); // headers never finish
      sockets.push(s);
    }
    await sleep(300);
    const t = Date.now();
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.ok(Date.now() - t < 6000, `shutdown took ${Date.now() - t} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    child.kill("SIGKILL");
  }
});

test("A8: listening beyond loopback without API_TOKEN logs a warning", async () => {
  const logged: string[] = [];
  const tool = await findTool("marker", FIXTURE_TOOLS);
  const s = await startToolServer(tool, { port: 0, host: "0.0.0.0", log: (l) => logged.push(l) });
  services.push(s);
  assert.ok(logged.some((l) => /warn: listening on 0\.0\.0\.0 without API_TOKEN/.test(l)));
  assert.equal(serviceConfigFromEnv({}).host, "127.0.0.1");
});
