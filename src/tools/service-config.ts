/**
 * Settings of a tool service and how they are read from the environment (`.env` of a compiled
 * service, or the shell for `dockpack tool serve`).
 */
import { availableParallelism } from "node:os";
import { DockpackError } from "../core/errors.js";

/** Log levels of a tool service, least to most verbose. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Settings of a tool service. Each has an environment variable (see {@link serviceConfigFromEnv}). */
export interface ServiceConfig {
  /** Listen port (`API_PORT`, default 8080). */
  port: number;
  /** Listen address (`API_HOST`, default 127.0.0.1; a compiled container sets 0.0.0.0). */
  host: string;
  /** Bearer token required on /api/invoke and /api/info (`API_TOKEN`); unset = open. */
  token?: string;
  /** Origins allowed by CORS (`CORS_ORIGINS`, comma-separated); empty = no CORS headers. */
  corsOrigins: string[];
  /** Invokes per client IP per minute (`RATE_LIMIT_PER_MINUTE`); 0 = no limit. */
  rateLimitPerMinute: number;
  /** Largest request body, in bytes (`MAX_BODY_BYTES`, default 1 MiB). */
  maxBodyBytes: number;
  /** Tool runs at once (`MAX_CONCURRENT_INVOKES`, default 4 × CPUs). */
  maxConcurrent: number;
  /** Requests allowed to wait for a slot (`MAX_QUEUED_INVOKES`, default 64); past it 503 + Retry-After. */
  maxQueued: number;
  /** Time a client has to send the request headers, in seconds (`HEADERS_TIMEOUT_SECONDS`, 10). */
  headersTimeoutSeconds: number;
  /** Time a client has to send the whole request, in seconds (`REQUEST_TIMEOUT_SECONDS`, 30). */
  requestTimeoutSeconds: number;
  /**
   * After SIGTERM, how long in-flight requests may still run, in seconds
   * (`SHUTDOWN_TIMEOUT_SECONDS`, 8 — under `docker stop`'s 10); then they are stopped.
   */
  shutdownTimeoutSeconds: number;
  /** `LOG_LEVEL`: error, warn, info (default) or debug (also logs each tool's stderr). */
  logLevel: LogLevel;
}

/** Defaults of {@link ServiceConfig}. */
export const DEFAULT_SERVICE_CONFIG: ServiceConfig = {
  port: 8080,
  host: "127.0.0.1",
  corsOrigins: [],
  rateLimitPerMinute: 0,
  maxBodyBytes: 1024 * 1024,
  maxConcurrent: 4 * availableParallelism(),
  maxQueued: 64,
  headersTimeoutSeconds: 10,
  requestTimeoutSeconds: 30,
  shutdownTimeoutSeconds: 8,
  logLevel: "info",
};

function bad(name: string, raw: string, what: string): DockpackError {
  return new DockpackError("SERVICE_CONFIG_INVALID", `${name}=${raw} is not ${what}.`, {
    hint: `Fix ${name} in the environment or .env.`,
    usage: true,
  });
}

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw bad(name, raw, `an integer from ${min} to ${max}`);
  return n;
}

/**
 * Reads a {@link ServiceConfig} from the environment variables API_PORT, API_HOST, API_TOKEN,
 * CORS_ORIGINS, RATE_LIMIT_PER_MINUTE, MAX_BODY_BYTES, MAX_CONCURRENT_INVOKES,
 * MAX_QUEUED_INVOKES, HEADERS_TIMEOUT_SECONDS, REQUEST_TIMEOUT_SECONDS, SHUTDOWN_TIMEOUT_SECONDS,
 * LOG_LEVEL (empty values count as unset; `FLASK_DEBUG=1` means LOG_LEVEL=debug, as in the seed).
 * @throws DockpackError `SERVICE_CONFIG_INVALID` (usage) naming the variable
 */
export function serviceConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const d = DEFAULT_SERVICE_CONFIG;
  const level = (env.LOG_LEVEL?.trim().toLowerCase() ||
    (["1", "true"].includes(env.FLASK_DEBUG?.trim().toLowerCase() ?? "") ? "debug" : d.logLevel)) as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw bad("LOG_LEVEL", String(env.LOG_LEVEL), LOG_LEVELS.join(", "));
  return {
    port: intEnv(env, "API_PORT", d.port, 0, 65535),
    host: env.API_HOST?.trim() || d.host,
    token: env.API_TOKEN?.trim() || undefined,
    corsOrigins: (env.CORS_ORIGINS ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    rateLimitPerMinute: intEnv(env, "RATE_LIMIT_PER_MINUTE", 0, 0, 1_000_000),
    maxBodyBytes: intEnv(env, "MAX_BODY_BYTES", d.maxBodyBytes, 1, 1024 ** 3),
    maxConcurrent: intEnv(env, "MAX_CONCURRENT_INVOKES", d.maxConcurrent, 1, 10_000),
    maxQueued: intEnv(env, "MAX_QUEUED_INVOKES", d.maxQueued, 0, 1_000_000),
    headersTimeoutSeconds: intEnv(env, "HEADERS_TIMEOUT_SECONDS", d.headersTimeoutSeconds, 1, 3600),
    requestTimeoutSeconds: intEnv(env, "REQUEST_TIMEOUT_SECONDS", d.requestTimeoutSeconds, 1, 86_400),
    shutdownTimeoutSeconds: intEnv(env, "SHUTDOWN_TIMEOUT_SECONDS", d.shutdownTimeoutSeconds, 0, 86_400),
    logLevel: level,
  };
}

/** True when `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
