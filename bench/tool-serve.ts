/**
 * bench/tool-serve: throughput and latency of `POST /api/invoke` for a trivial tool (examples/
 * tools/upper, one node process per call) at `connections` concurrent calls (loopback only),
 * against running the tool's command directly the same way the service spawns it, with the same
 * harness (a closed loop per connection) and concurrency, printed as overhead. Also measures
 * GET /api/health (autocannon) to show the cost of the HTTP layer alone.
 *
 * The two are measured in alternating rounds (direct, service, direct, service, …) and each
 * figure is the median over the rounds, so a change of machine load hits both alike.
 *
 * Then overloads a second service (tool 'sleep' 2 s, MAX_CONCURRENT_INVOKES = connections,
 * MAX_QUEUED_INVOKES = connections) with 4 × connections clients: the bounded queue answers 503 +
 * Retry-After beyond it.
 *
 * Usage: node --import tsx bench/tool-serve.ts [--seconds 5] [--connections 10] [--rounds 3]
 */
import { spawn } from "node:child_process";
import { Agent, request } from "node:http";
import { type AddressInfo, createServer } from "node:net";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { findTool } from "../src/tools/manifest.js";
import { startToolServer } from "../src/tools/server.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "10" },
    rounds: { type: "string", default: "3" },
  },
});
const seconds = Math.min(60, Math.max(1, Number(values.seconds)));
const connections = Math.min(64, Math.max(1, Number(values.connections)));
const rounds = Math.min(10, Math.max(1, Number(values.rounds)));
const toolsDir = fileURLToPath(new URL("../examples/tools", import.meta.url));
const body = JSON.stringify({ text: "hello benchmark" });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

type Figures = { rps: number; p50: number; p99: number; n: number };

/**
 * The harness both sides share: `connections` loops, each starting its next call when the last
 * one ends, until `seconds` have passed; every call started is awaited and counted, and the rate
 * is calls / time until the last one ended. Latencies in ms.
 */
async function closedLoop(call: () => Promise<unknown>): Promise<Figures> {
  const lat: number[] = [];
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await call();
        lat.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: lat.length / elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99), n: lat.length };
}

/**
 * One direct run of the tool: spawned the way the service's runner does it (node:child_process,
 * detached into its own process group — on Linux a new session also gets its own scheduler
 * autogroup, which matters on a loaded machine —, stdin written and closed, stdout and stderr
 * collected).
 */
async function directCall(): Promise<() => Promise<string>> {
  const tool = await findTool("upper", toolsDir);
  const argv = (tool.manifest.command ?? []).map((a) => a.replaceAll("{tool_dir}", tool.dir));
  const program = argv[0] === "node" ? process.execPath : argv[0];
  return () =>
    new Promise<string>((resolve, reject) => {
      const p = spawn(program, argv.slice(1), { cwd: tool.dir, detached: true, stdio: "pipe" });
      const out: Buffer[] = [];
      p.stdout.on("data", (b: Buffer) => out.push(b));
      p.stderr.on("data", () => {});
      p.stdin.on("error", () => {});
      p.stdin.end(body);
      p.once("error", reject);
      p.once("close", (code) =>
        code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new Error(`exit ${code}`)),
      );
    });
}

/**
 * One round of `POST /api/invoke` calls over keep-alive connections (node:http, as light a
 * client as it gets); the connections are closed after the round (the server closes idle ones
 * after 5 s, and a direct round lasts longer).
 */
async function invokeRound(url: string): Promise<Figures> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  try {
    return await closedLoop(invokeCall(url, agent));
  } finally {
    agent.destroy();
  }
}

function invokeCall(url: string, agent: Agent): () => Promise<string> {
  const target = new URL("/api/invoke", url);
  return () =>
    new Promise<string>((resolve, reject) => {
      const req = request(
        target,
        { method: "POST", agent, headers: { "content-type": "application/json" } },
        (res) => {
          const out: Buffer[] = [];
          res.on("data", (b: Buffer) => out.push(b));
          res.on("end", () =>
            res.statusCode === 200
              ? resolve(Buffer.concat(out).toString())
              : reject(new Error(`POST /api/invoke: ${res.statusCode}`)),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
}

type Cannon = (opts: Record<string, unknown>) => Promise<{
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}>;

/**
 * Overload: `4 × connections` clients (fetch, each sending its next request as soon as the last
 * is answered) against a queue of `connections` running + `connections` waiting.
 */
async function overload(): Promise<{ ok: number; busy: number; other: number }> {
  // A tool that takes 2 s (examples/tools/sleep), so the clients outpace it.
  const t = await findTool("sleep", toolsDir);
  const s = await startToolServer(t, {
    port: 0,
    host: "127.0.0.1",
    maxConcurrent: connections,
    maxQueued: connections,
  });
  const counts = { ok: 0, busy: 0, other: 0 };
  const end = performance.now() + seconds * 1000;
  try {
    await Promise.all(
      Array.from({ length: connections * 4 }, async () => {
        while (performance.now() < end) {
          const r = await fetch(`${s.url}/api/invoke`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ seconds: 2 }),
          }).catch(() => undefined);
          await r?.arrayBuffer();
          if (r?.status === 200) counts.ok++;
          else if (r?.status === 503 && r.headers.get("retry-after")) {
            counts.busy++;
            await new Promise((w) => setTimeout(w, 100)); // a polite client backs off a little
          } else counts.other++;
        }
      }),
    );
    return counts;
  } finally {
    await s.close();
  }
}

/** autocannon against `url` for `seconds` (the HTTP layer alone: GET /api/health). */
async function load(url: string, method: "GET" | "POST") {
  const name = "autocannon"; // no type declarations ship with it
  const autocannon = (await import(name)).default as Cannon;
  const r = await autocannon({
    url,
    method,
    connections,
    duration: seconds,
    headers: { "content-type": "application/json" },
    ...(method === "POST" ? { body } : {}),
  });
  if (r.non2xx || r.errors) throw new Error(`${url}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
  return { rps: r.requests.total / seconds, p50: r.latency.p50, p99: r.latency.p99, n: r.requests.total };
}

// The service runs in its own process, as deployed (`dockpack tool serve`), with as many tool
// runs at once as the direct runner has (the default, 4 per CPU, may be fewer).
const port = await new Promise<number>((resolve) => {
  const srv = createServer().listen(0, "127.0.0.1", () => {
    const p = (srv.address() as AddressInfo).port;
    srv.close(() => resolve(p));
  });
});
const main = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const child = spawn(
  process.execPath,
  ["--import", "tsx", main, "tool", "serve", "upper", "--tools-dir", toolsDir, "--port", String(port)],
  {
    stdio: "ignore",
    env: { ...process.env, MAX_CONCURRENT_INVOKES: String(connections), LOG_LEVEL: "error" },
  },
);
const service = {
  url: `http://127.0.0.1:${port}`,
  close: async () => {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  },
};
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${service.url}/api/health`)).ok) break;
  } catch {
    if (i > 300) throw new Error("the service did not start");
  }
  await new Promise((r) => setTimeout(r, 100));
}
try {
  const load0 = loadavg();
  process.stderr.write(
    `bench: ${rounds} rounds of ${seconds} s each, ${connections} connections, tool 'upper', ${service.url}\n`,
  );
  const directRuns: Figures[] = [];
  const invokeRuns: Figures[] = [];
  const runDirect = await directCall();
  for (let i = 0; i < rounds; i++) {
    directRuns.push(await closedLoop(runDirect));
    invokeRuns.push(await invokeRound(service.url));
  }
  const load1 = loadavg();
  const health = await load(`${service.url}/api/health`, "GET");
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const combine = (runs: Figures[]): Figures => ({
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    n: runs.reduce((a, r) => a + r.n, 0),
  });
  const base = combine(directRuns);
  const invoke = combine(invokeRuns);
  const row = (label: string, r: Figures) =>
    `${label.padEnd(30)} ${r.rps.toFixed(1).padStart(9)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${String(r.n).padStart(7)}`;
  console.log(
    `${"".padEnd(30)} ${"req/s".padStart(9)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"count".padStart(7)}`,
  );
  console.log(row("direct: node upper.mjs", base));
  console.log(row("POST /api/invoke", invoke));
  console.log(row("GET /api/health (HTTP only)", health));
  console.log(
    `overhead of the service per call (medians of ${rounds} rounds): p50 ${(invoke.p50 - base.p50).toFixed(1)} ms, ` +
      `p99 ${(invoke.p99 - base.p99).toFixed(1)} ms; throughput ${((invoke.rps / base.rps) * 100).toFixed(0)}% of direct`,
  );
  // Pooled: all calls of a side over all its time; the median of the rounds' ratios.
  const pooled = (runs: Figures[]) =>
    runs.reduce((a, r) => a + r.n, 0) / runs.reduce((a, r) => a + r.n / r.rps, 0);
  const ratios = invokeRuns.map((r, i) => r.rps / directRuns[i].rps);
  console.log(
    `service / direct throughput: pooled ${((pooled(invokeRuns) / pooled(directRuns)) * 100).toFixed(0)}%, ` +
      `median of the rounds' ratios ${(median(ratios) * 100).toFixed(0)}%`,
  );
  console.log(
    `per round (service / direct req/s): ${ratios.map((x) => x.toFixed(2)).join(", ")}; ` +
      `load average (1 min) ${load0[0].toFixed(1)} at the start, ${load1[0].toFixed(1)} at the end, on ${availableParallelism()} CPUs`,
  );
  const o = await overload();
  console.log(
    `overload ('sleep' 2 s, ${connections * 4} clients, ${connections} running + ${connections} queued): ${o.ok} answered 200, ` +
      `${o.busy} answered 503 (Retry-After), ${o.other} other`,
  );
} finally {
  await service.close();
}
