/**
 * The HTTP API of a tool service (hono on @hono/node-server): `GET /`, `GET /api/health`,
 * `GET /api/info`, `POST /api/invoke`, `GET /openapi.json`, `GET /metrics`; body size limit,
 * optional bearer token, CORS allow-list, optional per-client rate limit, graceful shutdown.
 */
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { serve } from "@hono/node-server";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { DockpackError, isDockpackError } from "../core/errors.js";
import { type InvokeOptions, invokeTool, type ToolResolver } from "./invoke.js";
import type { Tool } from "./manifest.js";
import { ServiceMetrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";

/** Settings of a tool service. Each has an environment variable (see {@link serviceConfigFromEnv}). */
export interface ServiceConfig {
  /** Listen port (`API_PORT`, default 8080). */
  port: number;
  /** Listen address (`API_HOST`, default 0.0.0.0). */
  host: string;
  /** Bearer token required on /api/invoke and /api/info (`API_TOKEN`); unset = open. */
  token?: string;
  /** Origins allowed by CORS (`CORS_ORIGINS`, comma-separated); empty = no CORS headers. */
  corsOrigins: string[];
  /** Invokes per client IP per minute (`RATE_LIMIT_PER_MINUTE`); 0 = no limit. */
  rateLimitPerMinute: number;
  /** Largest request body, in bytes (`MAX_BODY_BYTES`, default 1 MiB). */
  maxBodyBytes: number;
  /** Tool runs at once (`MAX_CONCURRENT_INVOKES`, default 4 × CPUs); more requests wait their turn. */
  maxConcurrent: number;
}

/** {@link ServiceConfig} plus what only a library caller can pass. */
export type ServiceOptions = Partial<ServiceConfig> & {
  /** Finds workflow steps' tools (default: the tools folder). */
  resolve?: ToolResolver;
  toolsDir?: string;
  /** Receives one access-log line per request: `METHOD /path STATUS 12.3ms`. */
  accessLog?: (line: string) => void;
};

/** Defaults of {@link ServiceConfig}. */
export const DEFAULT_SERVICE_CONFIG: ServiceConfig = {
  port: 8080,
  host: "0.0.0.0",
  corsOrigins: [],
  rateLimitPerMinute: 0,
  maxBodyBytes: 1024 * 1024,
  maxConcurrent: 4 * availableParallelism(),
};

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new DockpackError(
      "SERVICE_CONFIG_INVALID",
      `${name}=${raw} is not an integer from ${min} to ${max}.`,
      {
        hint: `Fix ${name} in the environment or .env.`,
        usage: true,
      },
    );
  return n;
}

/**
 * Reads a {@link ServiceConfig} from environment variables API_PORT, API_HOST, API_TOKEN,
 * CORS_ORIGINS, RATE_LIMIT_PER_MINUTE, MAX_BODY_BYTES, MAX_CONCURRENT_INVOKES (empty values count
 * as unset).
 * @throws DockpackError `SERVICE_CONFIG_INVALID` (usage) naming the variable
 */
export function serviceConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  return {
    port: intEnv(env, "API_PORT", DEFAULT_SERVICE_CONFIG.port, 0, 65535),
    host: env.API_HOST?.trim() || DEFAULT_SERVICE_CONFIG.host,
    token: env.API_TOKEN?.trim() || undefined,
    corsOrigins: (env.CORS_ORIGINS ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    rateLimitPerMinute: intEnv(env, "RATE_LIMIT_PER_MINUTE", 0, 0, 1_000_000),
    maxBodyBytes: intEnv(env, "MAX_BODY_BYTES", DEFAULT_SERVICE_CONFIG.maxBodyBytes, 1, 1024 ** 3),
    maxConcurrent: intEnv(env, "MAX_CONCURRENT_INVOKES", DEFAULT_SERVICE_CONFIG.maxConcurrent, 1, 10_000),
  };
}

/** A counting semaphore: at most `size` tool runs at once, the rest wait in arrival order. */
class Slots {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(
    private readonly size: number,
    private readonly metrics: ServiceMetrics,
  ) {}
  async acquire(): Promise<void> {
    if (this.busy >= this.size) {
      const turn = new Promise<void>((go) => this.waiting.push(go));
      this.metrics.inFlight(this.busy, this.waiting.length);
      await turn; // release() hands its slot over: busy stays the same
    } else this.busy++;
    this.metrics.inFlight(this.busy, this.waiting.length);
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy--;
    this.metrics.inFlight(this.busy, this.waiting.length);
  }
}

/** What {@link createToolApp} returns. */
export interface ToolApp {
  app: Hono;
  metrics: ServiceMetrics;
}

const HTTP_STATUS: Record<string, 400 | 422 | 500> = { TOOL_INPUT_INVALID: 422 };
const ROUTES = new Set(["/", "/api/health", "/api/info", "/api/invoke", "/openapi.json", "/metrics"]);

/**
 * Builds the hono app serving `tool` (no socket; `app.fetch` answers Requests).
 * @param resolve finds workflow steps' tools
 */
export function createToolApp(tool: Tool, config: ServiceOptions = {}): ToolApp {
  const cfg = { ...DEFAULT_SERVICE_CONFIG, ...config };
  const m = tool.manifest;
  const metrics = new ServiceMetrics(m.id);
  const app = new Hono();
  const service = `dockpack tool service: ${m.name}`;
  const window = new Map<string, { start: number; count: number }>();
  const slots = new Slots(cfg.maxConcurrent, metrics);
  const fail = (c: Context, status: 400 | 401 | 413 | 422 | 429 | 500, error: string, extra = {}) =>
    c.json({ success: false, error, ...extra }, status);

  app.use("*", async (c, next) => {
    const t = performance.now();
    await next();
    // Unknown paths share one label, so scanners cannot grow the metric without bound.
    const path = new URL(c.req.url).pathname;
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
      service,
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
  app.get("/api/health", (c) => c.json({ status: "healthy", tool_id: m.id, version: m.version }));
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
      try {
        input = JSON.parse(await c.req.text());
      } catch {
        return fail(c, 400, "request body is not valid JSON");
      }
      await slots.acquire();
      const started = performance.now();
      try {
        const options: InvokeOptions = { tool, input, resolve: config.resolve, toolsDir: config.toolsDir };
        const out = await invokeTool(options);
        metrics.observe((performance.now() - started) / 1000);
        return c.json({
          success: true,
          tool_id: m.id,
          result: out.result,
          duration_seconds: out.duration_seconds,
        });
      } catch (e) {
        const err = isDockpackError(e) ? e : new DockpackError("INTERNAL_ERROR", String(e));
        const status = HTTP_STATUS[err.code] ?? 500;
        if (status === 500) metrics.observe((performance.now() - started) / 1000);
        const errors = status === 422 ? { errors: (err.details?.errors as string[]) ?? [] } : {};
        return fail(c, status, err.message, { code: err.code, ...errors });
      } finally {
        slots.release();
      }
    },
  );
  app.notFound((c) =>
    c.json({ success: false, error: `no route ${c.req.method} ${new URL(c.req.url).pathname}` }, 404),
  );
  return { app, metrics };
}

/** A running tool service. */
export interface RunningService {
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  /** The port bound (useful with port 0). */
  port: number;
  /** Stops accepting connections, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
}

/**
 * Starts serving `tool` over HTTP.
 * @throws DockpackError `SERVICE_LISTEN_FAILED` (port in use, address not available)
 */
export async function startToolServer(tool: Tool, config: ServiceOptions = {}): Promise<RunningService> {
  const cfg = { ...DEFAULT_SERVICE_CONFIG, ...config };
  const { app } = createToolApp(tool, config);
  return new Promise((resolvePromise, reject) => {
    const server = serve({ fetch: app.fetch, port: cfg.port, hostname: cfg.host }, (info: AddressInfo) => {
      const host = cfg.host === "0.0.0.0" ? "127.0.0.1" : cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host;
      resolvePromise({
        url: `http://${host}:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
          }),
      });
    });
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new DockpackError(
          "SERVICE_LISTEN_FAILED",
          `Cannot listen on ${cfg.host}:${cfg.port}: ${e.code ?? e.message}.`,
          {
            hint: e.code === "EADDRINUSE" ? "Choose another port with --port (or API_PORT)." : undefined,
            cause: e,
          },
        ),
      ),
    );
  });
}

/**
 * Serves until SIGTERM or SIGINT, then shuts down gracefully (in-flight requests finish).
 * @param log receives one line per event (listening, shutting down)
 */
export async function serveUntilSignal(
  tool: Tool,
  config: ServiceOptions,
  log: (line: string) => void,
): Promise<{ url: string }> {
  const running = await startToolServer(tool, config);
  log(`serving tool '${tool.manifest.id}' on ${running.url} (POST /api/invoke)`);
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
