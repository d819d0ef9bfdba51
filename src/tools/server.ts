/**
 * The HTTP API of a tool service (hono on @hono/node-server): `GET /`, `GET /api/health`,
 * `GET /api/info`, `POST /api/invoke`, `GET /openapi.json`, `GET /metrics`.
 *
 * Hardening: `POST /api/invoke` takes `application/json` only (415 otherwise, so a cross-site form
 * or `text/plain` fetch cannot run the tool); body size limit; optional bearer token; CORS
 * allow-list; per-client rate limit; a bounded queue (503 + Retry-After when full); an invoke
 * whose client goes away leaves the queue or has its tool killed; error bodies carry a code, a
 * short message and a request id (details such as tracebacks go to the log only); header and
 * request timeouts; a shutdown deadline.
 */
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { DockpackError, isDockpackError } from "../core/errors.js";
import { jsonNestingDepth, MAX_JSON_DEPTH, tooDeepMessage } from "../core/json.js";
import { type InvokeOptions, invokeTool, type ToolResolver } from "./invoke.js";
import type { Tool } from "./manifest.js";
import { ServiceMetrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";
import { InvokeQueue } from "./queue.js";
import { enableWatchdog, signalAllGroups } from "./reaper.js";
import { closureWith, missingPrograms } from "./runtimes.js";
import {
  DEFAULT_SERVICE_CONFIG,
  isLoopback,
  LOG_LEVELS,
  type LogLevel,
  type ServiceConfig,
} from "./service-config.js";

export {
  DEFAULT_SERVICE_CONFIG,
  type LogLevel,
  type ServiceConfig,
  serviceConfigFromEnv,
} from "./service-config.js";

/** {@link ServiceConfig} plus what only a library caller can pass. */
export type ServiceOptions = Partial<ServiceConfig> & {
  /** Finds workflow steps' tools (default: the tools folder). */
  resolve?: ToolResolver;
  toolsDir?: string;
  /** Receives one access-log line per request: `METHOD /path STATUS 12.3ms`. */
  accessLog?: (line: string) => void;
  /** Receives error, warning and debug lines (filtered by `logLevel`). */
  log?: (line: string) => void;
  /** The hint given when the port is taken (default names --port and API_PORT). */
  portHint?: string;
};

/** What {@link createToolApp} returns. */
export interface ToolApp {
  app: Hono;
  metrics: ServiceMetrics;
  /** Stops every running invoke (its tool is killed) — the shutdown deadline. */
  abortAll(): void;
}

const ROUTES = new Set(["/", "/api/health", "/api/info", "/api/invoke", "/openapi.json", "/metrics"]);
const ABS_PATH = /(?<![\w.])\/(?:[\w.@+-]+\/)+[\w.@+-]*/g;

/**
 * The message a client sees for a failed invoke: the first line of the error, without absolute
 * paths (the full text, stderr and tracebacks are logged with the request id instead).
 */
export function publicMessage(err: DockpackError): string {
  const first = err.message.split("\n")[0].replace(/:\s*$/, "");
  const step =
    typeof err.details?.step === "string" && !first.includes("(step ") ? ` (step '${err.details.step}')` : "";
  return `${first.replace(ABS_PATH, "<path>")}${step}`.slice(0, 300);
}

function statusOf(code: string): 422 | 500 | 503 {
  if (code === "TOOL_INPUT_INVALID") return 422;
  if (code === "SERVICE_BUSY") return 503;
  return 500;
}

/**
 * Builds the hono app serving `tool` (no socket; `app.fetch` answers Requests).
 * @param config settings; `resolve` finds workflow steps' tools
 */
export function createToolApp(tool: Tool, config: ServiceOptions = {}): ToolApp {
  const cfg = { ...DEFAULT_SERVICE_CONFIG, ...config };
  const m = tool.manifest;
  const metrics = new ServiceMetrics(m.id);
  const app = new Hono<{ Variables: { requestId: string } }>();
  const window = new Map<string, { start: number; count: number }>();
  const queue = new InvokeQueue(cfg.maxConcurrent, cfg.maxQueued, (r, q) => metrics.inFlight(r, q));
  const running = new Set<AbortController>();
  const level = LOG_LEVELS.indexOf(cfg.logLevel);
  const debug = LOG_LEVELS.indexOf("debug") <= level && Boolean(config.log);
  const log = (at: LogLevel, line: string) => {
    if (LOG_LEVELS.indexOf(at) <= level) config.log?.(`${at}: ${line}`);
  };
  const fail = (
    c: Context,
    status: 400 | 401 | 413 | 415 | 422 | 429 | 500 | 503,
    error: string,
    extra = {},
  ) => c.json({ success: false, error, request_id: c.get("requestId"), ...extra }, status);
  let closure: Promise<Tool[]> | undefined;

  app.use("*", async (c, next) => {
    const t = performance.now();
    c.set("requestId", randomUUID());
    c.header("X-Request-Id", c.get("requestId"));
    await next();
    // Unknown paths share one label, so scanners cannot grow the metric without bound.
    const path = c.req.path;
    metrics.request(ROUTES.has(path) ? path : "(other)", c.res.status);
    config.accessLog?.(`${c.req.method} ${path} ${c.res.status} ${(performance.now() - t).toFixed(1)}ms`);
  });
  if (cfg.corsOrigins.length)
    app.use("*", cors({ origin: cfg.corsOrigins, allowHeaders: ["Content-Type", "Authorization"] }));
  const guard = async (c: Context, next: () => Promise<void>) => {
    if (cfg.token && c.req.header("authorization") !== `Bearer ${cfg.token}`)
      return fail(c, 401, "missing or wrong bearer token");
    await next();
  };
  app.use("/api/invoke", guard);
  app.use("/api/info", guard);

  app.get("/", (c) =>
    c.json({
      service: `dockpack tool service: ${m.name}`,
      tool_id: m.id,
      version: m.version,
      endpoints: [
        "GET /",
        "GET /api/health",
        "GET /api/info",
        "POST /api/invoke",
        "GET /openapi.json",
        "GET /metrics",
      ],
    }),
  );
  app.get("/api/health", async (c) => {
    // Healthy only when every program the tool (and its workflow steps) starts is installed.
    closure ??= closureWith(tool, config.resolve ?? (async () => tool)).catch(() => [tool]);
    const missing = missingPrograms(await closure);
    if (missing.length)
      return c.json(
        { status: "unhealthy", tool_id: m.id, version: m.version, missing_programs: missing },
        503,
      );
    return c.json({ status: "healthy", tool_id: m.id, version: m.version });
  });
  app.get("/api/info", (c) =>
    c.json({
      tool_id: m.id,
      name: m.name,
      type: m.type,
      version: m.version,
      description: m.description,
      input_schema: m.input_schema,
      output_schema: m.output_schema,
      timeout_seconds: m.timeout_seconds,
    }),
  );
  app.get("/openapi.json", (c) => c.json(openApiDocument(tool, { auth: Boolean(cfg.token) })));
  app.get("/metrics", (c) => c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }));
  app.post(
    "/api/invoke",
    async (c, next) => {
      // A JSON content type makes a cross-site request need a CORS preflight the browser
      // cannot pass: forms and text/plain fetches are refused before the tool runs.
      const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
      if (type !== "application/json" && !/^application\/[\w.+-]*\+json$/.test(type))
        return fail(c, 415, "Content-Type must be application/json", { code: "UNSUPPORTED_MEDIA_TYPE" });
      await next();
    },
    bodyLimit({
      maxSize: cfg.maxBodyBytes,
      onError: (c) => fail(c, 413, `request body larger than ${cfg.maxBodyBytes} bytes`),
    }),
    async (c) => {
      if (cfg.rateLimitPerMinute > 0) {
        const ip = (c.env as { incoming?: { socket?: { remoteAddress?: string } } })?.incoming?.socket
          ?.remoteAddress;
        const key = ip ?? "?";
        const now = Date.now();
        const w = window.get(key);
        if (!w || now - w.start >= 60_000) {
          if (window.size >= 10_000)
            for (const [k, v] of window) if (now - v.start >= 60_000) window.delete(k);
          window.set(key, { start: now, count: 1 });
        } else if (++w.count > cfg.rateLimitPerMinute) {
          c.header("Retry-After", String(Math.ceil((w.start + 60_000 - now) / 1000)));
          return fail(c, 429, `rate limit of ${cfg.rateLimitPerMinute} requests per minute exceeded`);
        }
      }
      let input: unknown;
      let body: string;
      try {
        body = await c.req.text();
      } catch {
        return clientGone(c);
      }
      // JSON.parse copes with any depth, the validation and logging after it do not (issue 12 A13).
      const depth = jsonNestingDepth(body);
      if (depth > MAX_JSON_DEPTH)
        return fail(c, 400, `request body: ${tooDeepMessage(depth)}`, { code: "JSON_TOO_DEEP" });
      try {
        input = JSON.parse(body);
      } catch {
        return fail(c, 400, "request body is not valid JSON");
      }
      // The seed's clients wrap the input: {"input_data": {...}} (unless the schema has that field).
      input = unwrapInputData(tool, input);
      // Aborted when the client goes away or at the shutdown deadline (abortAll).
      const own = new AbortController();
      const signal = own.signal;
      const clientSignal = c.req.raw.signal;
      const onClientGone = () => own.abort();
      if (clientSignal.aborted) own.abort();
      else clientSignal.addEventListener("abort", onClientGone, { once: true });
      let started = 0;
      try {
        await queue.acquire(signal);
      } catch (e) {
        clientSignal.removeEventListener("abort", onClientGone);
        const err = e as DockpackError;
        if (err.code === "SERVICE_BUSY") {
          c.header("Retry-After", "1");
          return fail(c, 503, err.message, { code: err.code });
        }
        return clientGone(c);
      }
      running.add(own);
      try {
        started = performance.now();
        const options: InvokeOptions = {
          tool,
          input,
          resolve: config.resolve,
          toolsDir: config.toolsDir,
          signal,
          onStderr: debug
            ? (id, stderr) => {
                if (stderr.trim())
                  log("debug", `[${c.get("requestId")}] stderr of '${id}':\n${stderr.trimEnd()}`);
              }
            : undefined,
        };
        if (debug)
          log(
            "debug",
            `[${c.get("requestId")}] invoke '${m.id}' (${JSON.stringify(input).length} bytes of input)`,
          );
        const out = await invokeTool(options);
        metrics.observe((performance.now() - started) / 1000);
        return c.json({
          success: true,
          tool_id: m.id,
          result: out.result,
          duration_seconds: out.duration_seconds,
        });
      } catch (e) {
        if (clientSignal.aborted) return clientGone(c);
        const err = isDockpackError(e) ? e : new DockpackError("INTERNAL_ERROR", String(e));
        const status = statusOf(err.code);
        if (status === 500) {
          metrics.observe((performance.now() - started) / 1000);
          const stderr = typeof err.details?.stderr === "string" ? `\n${err.details.stderr.trimEnd()}` : "";
          log(
            "error",
            `[${c.get("requestId")}] ${err.code}: ${err.message}${stderr && !err.message.includes(stderr.trim()) ? stderr : ""}`,
          );
        }
        const errors = status === 422 ? { errors: (err.details?.errors as string[]) ?? [] } : {};
        const message = status === 422 ? err.message : publicMessage(err);
        return fail(c, status, message, { code: err.code, ...errors });
      } finally {
        clientSignal.removeEventListener("abort", onClientGone);
        running.delete(own);
        queue.release();
      }
    },
  );
  app.notFound((c) => c.json({ success: false, error: `no route ${c.req.method} ${c.req.path}` }, 404));
  return {
    app: app as unknown as Hono,
    metrics,
    abortAll: () => {
      for (const ac of running) ac.abort();
    },
  };
}

/** 499 (client closed request, nginx's code): nobody reads it, but the access log and metrics do. */
function clientGone(c: Context): Response {
  return c.body(null, 499 as 200);
}

/**
 * Unwraps the seed's request shape `{"input_data": {...}}` unless the tool's input schema itself
 * has an `input_data` property.
 */
export function unwrapInputData(tool: Tool, input: unknown): unknown {
  const props = (tool.manifest.input_schema as { properties?: Record<string, unknown> }).properties ?? {};
  if (
    input !== null &&
    typeof input === "object" &&
    !Array.isArray(input) &&
    Object.keys(input).length === 1 &&
    "input_data" in input &&
    !("input_data" in props)
  )
    return (input as { input_data: unknown }).input_data;
  return input;
}

/** A running tool service. */
export interface RunningService {
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  /** The port bound (useful with port 0). */
  port: number;
  /**
   * Stops accepting connections and lets in-flight requests finish; after `deadlineSeconds`
   * (default: the config's shutdown timeout) running tools are killed and connections closed.
   */
  close(deadlineSeconds?: number): Promise<void>;
}

/**
 * Starts serving `tool` over HTTP. Warns (through `log`) when it listens beyond loopback
 * without `API_TOKEN`.
 * @throws DockpackError `SERVICE_LISTEN_FAILED` (port in use, address not available)
 */
export async function startToolServer(tool: Tool, config: ServiceOptions = {}): Promise<RunningService> {
  const cfg = { ...DEFAULT_SERVICE_CONFIG, ...config };
  const { app, abortAll } = createToolApp(tool, config);
  enableWatchdog();
  return new Promise((resolvePromise, reject) => {
    const server = serve(
      {
        fetch: app.fetch,
        port: cfg.port,
        hostname: cfg.host,
        serverOptions: {
          headersTimeout: cfg.headersTimeoutSeconds * 1000,
          requestTimeout: cfg.requestTimeoutSeconds * 1000,
          keepAliveTimeout: 5000,
          connectionsCheckingInterval: 1000,
        },
      },
      (info: AddressInfo) => {
        const host =
          cfg.host === "0.0.0.0" || cfg.host === "::"
            ? "127.0.0.1"
            : cfg.host.includes(":")
              ? `[${cfg.host}]`
              : cfg.host;
        if (!isLoopback(cfg.host) && !cfg.token)
          config.log?.(
            `warn: listening on ${cfg.host} without API_TOKEN: anyone who can reach this port can run the tool (set API_TOKEN, or API_HOST=127.0.0.1)`,
          );
        const s = server as unknown as { closeIdleConnections?(): void; closeAllConnections?(): void };
        resolvePromise({
          url: `http://${host}:${info.port}`,
          port: info.port,
          close: (deadlineSeconds = cfg.shutdownTimeoutSeconds) =>
            new Promise<void>((done) => {
              const timer = setTimeout(() => {
                abortAll();
                signalAllGroups("SIGKILL");
                s.closeAllConnections?.();
              }, deadlineSeconds * 1000);
              // Keep-alive connections become idle when their request finishes: close them then.
              const idle = setInterval(() => s.closeIdleConnections?.(), 100);
              server.close(() => {
                clearTimeout(timer);
                clearInterval(idle);
                done();
              });
              s.closeIdleConnections?.();
            }),
        });
      },
    );
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new DockpackError(
          "SERVICE_LISTEN_FAILED",
          `Cannot listen on ${cfg.host}:${cfg.port}: ${e.code ?? e.message}.`,
          {
            hint:
              e.code === "EADDRINUSE"
                ? (config.portHint ?? "Choose another port with --port (or API_PORT).")
                : undefined,
            cause: e,
          },
        ),
      ),
    );
  });
}

/**
 * Serves until `signal` aborts (the CLI aborts it on SIGTERM/SIGINT; the reason names the signal),
 * then shuts down gracefully: in-flight requests finish within the shutdown deadline. Without a
 * signal — only the compiled executable's own entry point, which owns its process — it listens to
 * SIGTERM/SIGINT itself; a second signal stops at once (running tools are killed on exit).
 * @param log receives one line per event (listening, shutting down, warnings)
 */
export async function serveUntilSignal(
  tool: Tool,
  config: ServiceOptions,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<{ url: string }> {
  const running = await startToolServer(tool, { log, ...config });
  log(`serving tool '${tool.manifest.id}' on ${running.url} (POST /api/invoke)`);
  if (signal) {
    await new Promise<void>((done) => {
      const stop = () => {
        const why = typeof signal.reason === "string" ? signal.reason : "aborted";
        log(`${why}: finishing in-flight requests, then stopping`);
        running.close().then(done);
      };
      if (signal.aborted) stop();
      else signal.addEventListener("abort", stop, { once: true });
    });
    return { url: running.url };
  }
  await new Promise<void>((done) => {
    // The listeners stay installed until the process ends: removing them inside the signal
    // would let signal-exit (used by execa) re-raise the signal and kill in-flight requests.
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log(`${signal} again: stopping now`);
        process.exit(signal === "SIGINT" ? 130 : 143);
      }
      stopping = true;
      log(`${signal}: finishing in-flight requests, then stopping`);
      running.close().then(done);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  return { url: running.url };
}
