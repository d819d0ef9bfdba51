/**
 * Test helper: a real OCI registry (Debian's `docker-registry`, CNCF distribution 2.8) on
 * 127.0.0.1, without Docker. Each {@link startRegistry} call runs its own process on a free port
 * with a temporary storage folder; `stop()` kills it and removes the folder.
 *
 * - `{ tls: false }`: plain HTTP, no auth (plain HTTP is allowed for 127.0.0.1 only).
 * - `{ tls: true, users }`: HTTPS with a CA and a server certificate generated here with openssl
 *   (`caFile` is what tests pass as `--ca-file` / NODE_EXTRA_CA_CERTS), and htpasswd basic auth
 *   with bcrypt hashes made here (bcryptjs).
 *
 * A missing `docker-registry` program fails the test (scripts/setup.sh installs it).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";

/** A running test registry. */
export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry part of references. */
  host: string;
  port: number;
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  url: string;
  /** PEM file of the CA that signed the server certificate (TLS only). */
  caFile?: string;
  /** Folder holding config, storage and certificates (removed by stop). */
  dir: string;
  /** The registry's log so far (stdout + stderr). */
  log(): string;
  /** Kills the registry (SIGTERM, then SIGKILL) and removes its folder. */
  stop(): Promise<void>;
}

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  tls?: boolean;
  /** user → password; enables htpasswd basic auth. */
  users?: Record<string, string>;
  /** Extra YAML appended to the config (e.g. a token `auth:` section instead of htpasswd). */
  auth?: string;
}

/** Path of the registry program, or throws with the install hint. */
export function registryProgram(): string {
  for (const p of ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]) if (existsSync(p)) return p;
  throw new Error(
    "docker-registry is not installed: run `bash scripts/setup.sh` (Debian package docker-registry)",
  );
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Generates a CA and a server certificate for 127.0.0.1/localhost in `dir`. */
export function makeCertificates(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const caKey = join(dir, "ca.key");
  const caFile = join(dir, "ca.pem");
  const keyFile = join(dir, "server.key");
  const csr = join(dir, "server.csr");
  const certFile = join(dir, "server.pem");
  const ext = join(dir, "server.ext");
  const ossl = (args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  ossl(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", caFile, "-days", "2"].concat([
      "-subj",
      "/CN=dockpack test CA",
    ]),
  );
  ossl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", csr, "-subj", "/CN=127.0.0.1"]);
  execFileSync("sh", [
    "-c",
    `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > '${ext}'`,
  ]);
  ossl(
    ["x509", "-req", "-in", csr, "-CA", caFile, "-CAkey", caKey, "-CAcreateserial", "-out", certFile].concat([
      "-days",
      "2",
      "-extfile",
      ext,
    ]),
  );
  return { caFile, certFile, keyFile };
}

/** Starts a registry; resolves once `/v2/` answers. */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const program = registryProgram();
  const dir = await mkdtemp(join(tmpdir(), "dockpack-registry-"));
  const port = await freePort();
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "storage")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    `  secret: dockpack-test-${port}`,
  ];
  let caFile: string | undefined;
  if (options.tls) {
    const certs = makeCertificates(dir);
    caFile = certs.caFile;
    lines.push("  tls:", `    certificate: ${certs.certFile}`, `    key: ${certs.keyFile}`);
  }
  if (options.users) {
    const htpasswd = join(dir, "htpasswd");
    const body = Object.entries(options.users)
      .map(([u, p]) => `${u}:${bcrypt.hashSync(p, 5)}`)
      .join("\n");
    await writeFile(htpasswd, `${body}\n`);
    lines.push("auth:", "  htpasswd:", "    realm: dockpack-test", `    path: ${htpasswd}`);
  } else if (options.auth) {
    lines.push(options.auth);
  }
  const config = join(dir, "config.yml");
  await writeFile(config, `${lines.join("\n")}\n`);
  let output = "";
  const child: ChildProcess = spawn(program, ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  let exited = false;
  // a test process that dies without stop() must not leave the registry running
  const killOnExit = () => {
    if (!exited) child.kill("SIGKILL");
    try {
      execFileSync("rm", ["-rf", dir]);
    } catch {
      // best effort
    }
  };
  process.once("exit", killOnExit);
  child.on("exit", () => {
    exited = true;
    process.removeListener("exit", killOnExit);
  });
  const scheme = options.tls ? "https" : "http";
  const url = `${scheme}://127.0.0.1:${port}`;
  const stop = async () => {
    if (!exited) {
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 3000);
      await gone;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`docker-registry exited at start:\n${output}`);
    }
    if (await listening(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not listen on ${port} within 15 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host: `127.0.0.1:${port}`, port, url, caFile, dir, log: () => output, stop };
}

async function listening(port: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Options of {@link startProxy}: faults and auth put in front of a test registry. */
export interface ProxyOptions {
  /** Answer 500 to every request whose path contains this string (e.g. a blob digest). */
  failPath?: string;
  /** Token auth (Docker token spec): `/token` issues tokens for these users (Basic). */
  tokenUsers?: Record<string, string>;
  /** Seconds a token stays valid at the proxy (default 300); `expires_in` always says 300. */
  tokenLifetime?: number;
  /** Delay (ms) before forwarding each PATCH/PUT upload request, and per MiB of a blob download. */
  slowMs?: number;
}

/** A proxy in front of a registry; `host` is `127.0.0.1:PORT`. */
export interface TestProxy {
  host: string;
  port: number;
  /** Requests seen: `METHOD path`. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * Starts an HTTP proxy to `target` (a plain-HTTP {@link TestRegistry}) that can inject faults
 * and require Bearer tokens, so error paths run against the real registry behind it.
 */
export async function startProxy(target: TestRegistry, options: ProxyOptions = {}): Promise<TestProxy> {
  const { createServer: createHttpServer, request } = await import("node:http");
  const { randomUUID } = await import("node:crypto");
  const port = await freePort();
  const tokens = new Map<string, number>();
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    const url = req.url ?? "/";
    requests.push(`${req.method} ${url}`);
    if (options.tokenUsers && url.startsWith("/token")) {
      const auth = req.headers.authorization ?? "";
      const [user, pass] = Buffer.from(auth.replace(/^Basic /, ""), "base64")
        .toString()
        .split(":");
      if (!auth.startsWith("Basic ") || options.tokenUsers[user] !== pass) {
        res.writeHead(401, { "content-type": "application/json" }).end('{"details":"bad credentials"}');
        return;
      }
      const token = randomUUID();
      tokens.set(token, Date.now() + (options.tokenLifetime ?? 300) * 1000);
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    if (options.tokenUsers) {
      const t = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      const until = tokens.get(t);
      if (!until || until < Date.now()) {
        res
          .writeHead(401, {
            "www-authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry",scope="repository:x:pull"${until ? ',error="invalid_token"' : ""}`,
            "content-type": "application/json",
          })
          .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        req.resume();
        return;
      }
    }
    if (options.failPath && url.includes(options.failPath)) {
      req.resume();
      res
        .writeHead(500, { "content-type": "application/json" })
        .end('{"errors":[{"code":"UNKNOWN","message":"injected"}]}');
      return;
    }
    const forward = () => {
      const headers = { ...req.headers };
      delete headers.authorization;
      const up = request(
        { host: "127.0.0.1", port: target.port, method: req.method, path: url, headers },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (options.slowMs && req.method === "GET" && url.includes("/blobs/")) {
            let n = 0;
            upRes.on("data", (c: Buffer) => {
              n += c.length;
              if (n >= 1024 * 1024) {
                n = 0;
                upRes.pause();
                setTimeout(() => upRes.resume(), options.slowMs);
              }
              res.write(c);
            });
            upRes.on("end", () => res.end());
          } else upRes.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      req.pipe(up);
    };
    if (options.slowMs && (req.method === "PATCH" || req.method === "PUT"))
      setTimeout(forward, options.slowMs);
    else forward();
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
