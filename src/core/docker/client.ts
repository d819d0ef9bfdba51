/**
 * The Docker Engine client: one dockerode instance per process, honouring DOCKER_HOST
 * (`unix:///path`, `tcp://host:port`) and otherwise the default socket `/var/run/docker.sock`.
 *
 * Follows the Docker Engine API v1.41 (Docker 20.10); every call dockpack makes to the engine
 * goes through the client returned here.
 */
import Docker from "dockerode";
import { DockpackError } from "../errors.js";

let client: Docker | undefined;
let clientHost: string | undefined;

/** Where the client connects: the DOCKER_HOST value, or `unix:///var/run/docker.sock`. */
export function dockerHost(): string {
  return process.env.DOCKER_HOST || "unix:///var/run/docker.sock";
}

/**
 * Returns the process-wide dockerode client (created on first use; re-created when DOCKER_HOST
 * changed). Does not contact the engine; use {@link requireEngine} for that.
 * Throws `DOCKER_HOST_INVALID` (usage) when DOCKER_HOST is not `unix://…` or `tcp://host:port`.
 */
export function getDocker(): Docker {
  const host = dockerHost();
  if (client && clientHost === host) return client;
  if (host.startsWith("unix://")) {
    client = new Docker({ socketPath: host.slice("unix://".length) || "/var/run/docker.sock" });
  } else if (/^(tcp|http|https):\/\//.test(host)) {
    let url: URL;
    try {
      url = new URL(host.replace(/^tcp:/, process.env.DOCKER_TLS_VERIFY === "1" ? "https:" : "http:"));
    } catch (err) {
      throw new DockpackError("DOCKER_HOST_INVALID", `DOCKER_HOST '${host}' is not a valid address.`, {
        hint: "Use unix:///var/run/docker.sock or tcp://host:2375.",
        usage: true,
        cause: err,
      });
    }
    // docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH itself for TLS.
    client =
      process.env.DOCKER_TLS_VERIFY === "1"
        ? new Docker()
        : new Docker({ protocol: "http", host: url.hostname, port: Number(url.port || 2375) });
  } else {
    throw new DockpackError("DOCKER_HOST_INVALID", `DOCKER_HOST '${host}' is not supported.`, {
      hint: "Use unix:///var/run/docker.sock or tcp://host:2375.",
      usage: true,
    });
  }
  clientHost = host;
  return client;
}

let pinged: Promise<Docker> | undefined;
let pingedHost: string | undefined;

/**
 * Pings the engine (GET /_ping, 10 s timeout) and returns the client. The result is cached per
 * process and DOCKER_HOST.
 * Throws `ENGINE_UNAVAILABLE` naming the address when no engine answers, with a hint on how to
 * start one.
 */
export function requireEngine(): Promise<Docker> {
  const host = dockerHost();
  if (pinged && pingedHost === host) return pinged;
  pingedHost = host;
  pinged = (async () => {
    const docker = getDocker();
    try {
      await Promise.race([
        docker.ping(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("no answer within 10 s")), 10_000).unref(),
        ),
      ]);
      return docker;
    } catch (err) {
      pinged = undefined;
      throw new DockpackError(
        "ENGINE_UNAVAILABLE",
        `No Docker Engine answers at ${host}: ${(err as Error).message}`,
        {
          hint: "Start one: sudo systemctl start docker, or run scripts/setup.sh (or set DOCKER_HOST).",
          cause: err,
        },
      );
    }
  })();
  return pinged;
}

/** The HTTP status code of a dockerode error, or undefined. */
export function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === "number" ? code : undefined;
}

/** The engine's message from a dockerode error (`json.message`), else the error's message. */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; reason?: string; message?: string } | null;
  return e?.json?.message ?? e?.message ?? String(err);
}
