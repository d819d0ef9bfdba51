/**
 * HTTP transport to one OCI registry (distribution spec 1.1): scheme selection, TLS trust,
 * authentication (`WWW-Authenticate: Basic` and `Bearer realm/service/scope` token auth, as in
 * the Docker token spec), retries with exponential backoff on 429/5xx and network errors, and
 * redirects of blob downloads. Bodies stream through undici; nothing is buffered except JSON.
 *
 * TLS trusts Node's bundled roots, the system store (`/etc/ssl/certs/ca-certificates.crt`),
 * NODE_EXTRA_CA_CERTS and `caFile`. Plain HTTP is used only for loopback hosts or with
 * `insecure` (which also turns off certificate checks, like skopeo's `--tls-verify=false`).
 */
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher, request } from "undici";
import { DockpackError } from "../errors.js";
import type { Reporter } from "../output.js";
import type { Credentials } from "./credentials.js";
import { apiHost, isLoopback } from "./reference.js";

/** Options shared by every registry operation. */
export interface RegistryOptions {
  /** Extra PEM CA bundle to trust (added to the system store). */
  caFile?: string;
  /** Allow plain HTTP and unverified TLS for a non-loopback registry. */
  insecure?: boolean;
  /** Credentials to use instead of the docker config's (undefined: look them up; null: anonymous). */
  credentials?: Credentials | null;
  /** Cancels requests in flight. */
  signal?: AbortSignal;
  /** Retries on 429/5xx/network errors (default 4, backoff 250 ms × 2^n, Retry-After honoured). */
  retries?: number;
  reporter?: Reporter;
}

/** A request body that can be sent again on a retry. */
export type Body = Buffer | string | { open: () => Readable; length: number };

/** One HTTP request to the registry. */
export interface RegistryRequest {
  method: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** Path under the registry (`/v2/…`) or an absolute upload Location. */
  path: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Token scopes, e.g. `repository:acme/shop:pull,push`. */
  scopes?: string[];
}

/** What {@link RegistryTransport.request} returns: status, headers and a streaming body. */
export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { text(): Promise<string>; dump(): Promise<void> };
  /** The absolute URL that answered. */
  url: string;
}

const CERT_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
]);
const RETRY_CODES = new Set([
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "ECONNREFUSED",
]);

let systemCas: string[] | undefined;
function trustedCas(caFile?: string): string[] {
  if (!systemCas) {
    systemCas = [...rootCertificates];
    for (const f of ["/etc/ssl/certs/ca-certificates.crt", process.env.NODE_EXTRA_CA_CERTS]) {
      if (!f) continue;
      try {
        systemCas.push(readFileSync(f, "utf8"));
      } catch {
        // absent: Node's bundled roots remain
      }
    }
  }
  if (!caFile) return systemCas;
  try {
    return [...systemCas, readFileSync(caFile, "utf8")];
  } catch (e) {
    throw new DockpackError(
      "OCI_CA_FILE_UNREADABLE",
      `cannot read --ca-file ${caFile}: ${(e as Error).message}`,
      {
        usage: true,
      },
    );
  }
}

/** Parses a `WWW-Authenticate` header into its scheme and parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  const params: Record<string, string> = {};
  if (!m) return { scheme: "", params };
  for (const p of m[2].matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g))
    params[p[1].toLowerCase()] = p[2] ?? p[3];
  return { scheme: m[1].toLowerCase(), params };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });

/** The connection to one registry host, with its auth state (tokens cached per scope set). */
export class RegistryTransport {
  readonly registry: string;
  readonly host: string;
  #scheme: "https" | "http" | undefined;
  #dispatcher: Dispatcher;
  #challenge: { scheme: string; params: Record<string, string> } | undefined;
  #tokens = new Map<string, { token: string; expires: number }>();
  #creds: Credentials | null;
  #options: RegistryOptions;

  constructor(registry: string, credentials: Credentials | null, options: RegistryOptions = {}) {
    this.registry = registry;
    this.host = apiHost(registry);
    this.#creds = credentials;
    this.#options = options;
    this.#dispatcher = new Agent({
      connect: { ca: trustedCas(options.caFile), rejectUnauthorized: !options.insecure },
      connections: 8,
    });
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  /**
   * Pings `/v2/` and picks the scheme: https, or http for loopback/insecure hosts that do not
   * speak TLS. Learns the auth challenge.
   * @throws DockpackError `OCI_UNREACHABLE`, `OCI_TLS_FAILED`, `OCI_NOT_A_REGISTRY`.
   */
  async ping(): Promise<void> {
    if (this.#scheme) return;
    const allowHttp = this.#options.insecure || isLoopback(this.host);
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#raw("GET", `https://${this.host}/v2/`, {});
      this.#scheme = "https";
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "";
      const tlsMismatch = /SSL|EPROTO|ECONNRESET|wrong version/i.test(`${code} ${(e as Error).message}`);
      if (!(allowHttp && tlsMismatch)) throw this.#networkError(e, `https://${this.host}/v2/`);
      try {
        res = await this.#raw("GET", `http://${this.host}/v2/`, {});
      } catch (e2) {
        throw this.#networkError(e2, `http://${this.host}/v2/`);
      }
      this.#scheme = "http";
    }
    await res.body.dump();
    if (res.statusCode === 401) {
      const h = res.headers["www-authenticate"];
      if (h) this.#challenge = parseChallenge(Array.isArray(h) ? h[0] : h);
    } else if (res.statusCode !== 200) {
      throw new DockpackError(
        "OCI_NOT_A_REGISTRY",
        `${this.registry}: GET /v2/ answered ${res.statusCode}, not an OCI registry`,
        { hint: "Check the registry host and port." },
      );
    }
  }

  /** Base URL, e.g. `https://ghcr.io`; valid after {@link ping}. */
  get base(): string {
    return `${this.#scheme ?? "https"}://${this.host}`;
  }

  async #raw(
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: Buffer | string | Readable,
  ): Promise<Dispatcher.ResponseData> {
    return request(url, {
      method: method as Dispatcher.HttpMethod,
      headers: { "user-agent": "dockpack", ...headers },
      body,
      dispatcher: this.#dispatcher,
      signal: this.#options.signal,
      headersTimeout: 120_000,
      bodyTimeout: 300_000,
    });
  }

  #networkError(e: unknown, url: string): DockpackError {
    if (e instanceof DockpackError) return e;
    if ((e as Error).name === "AbortError" || this.#options.signal?.aborted)
      return new DockpackError("ABORTED", `request to ${url} was cancelled`, { cause: e });
    const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = err.code ?? err.cause?.code ?? "";
    if (CERT_CODES.has(code) || /certificate/i.test(err.message))
      return new DockpackError(
        "OCI_TLS_FAILED",
        `${this.registry}: TLS certificate not trusted (${code || err.message})`,
        {
          hint: "Pass the registry's CA with --ca-file (or NODE_EXTRA_CA_CERTS); --insecure skips the check.",
          cause: e,
        },
      );
    if (/SSL|EPROTO|wrong version/i.test(`${code} ${err.message}`))
      return new DockpackError("OCI_TLS_FAILED", `${this.registry}: TLS handshake failed (${err.message})`, {
        hint: "If the registry speaks plain HTTP, pass --insecure (allowed without it only for localhost).",
        cause: e,
      });
    return new DockpackError(
      "OCI_UNREACHABLE",
      `${this.registry}: cannot reach ${url} (${code || err.message})`,
      {
        hint: "Check the host, port and network; the registry may be down.",
        cause: e,
      },
    );
  }

  async #token(scopes: string[], force: boolean): Promise<string | null> {
    const ch = this.#challenge;
    if (ch?.scheme !== "bearer") return null;
    const key = scopes.join(" ");
    const cached = this.#tokens.get(key);
    if (cached && !force && cached.expires > Date.now() + 5_000) return cached.token;
    const realm = ch.params.realm;
    if (!realm)
      throw new DockpackError("OCI_TOKEN_FAILED", `${this.registry}: Bearer challenge without realm`);
    const u = new URL(realm);
    if (ch.params.service) u.searchParams.set("service", ch.params.service);
    for (const s of scopes) u.searchParams.append("scope", s);
    const headers: Record<string, string> = {};
    let method = "GET";
    let body: string | undefined;
    if (this.#creds?.identityToken) {
      method = "POST";
      headers["content-type"] = "application/x-www-form-urlencoded";
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: this.#creds.identityToken,
        client_id: "dockpack",
      });
      if (ch.params.service) form.set("service", ch.params.service);
      form.set("scope", scopes.join(" "));
      body = form.toString();
      u.search = "";
    } else if (this.#creds) {
      headers.authorization = `Basic ${Buffer.from(`${this.#creds.username}:${this.#creds.password}`).toString("base64")}`;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#raw(method, u.toString(), headers, body);
    } catch (e) {
      throw this.#networkError(e, u.origin);
    }
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403)
      throw new DockpackError(
        "OCI_UNAUTHORIZED",
        `${this.registry}: the token service refused the credentials (${res.statusCode})`,
        {
          hint: `Check user and password: dockpack login ${this.registry}`,
        },
      );
    if (res.statusCode !== 200)
      throw new DockpackError(
        "OCI_TOKEN_FAILED",
        `${this.registry}: token service ${u.origin} answered ${res.statusCode}`,
        {
          details: { body: text.slice(0, 500) },
        },
      );
    let parsed: { token?: string; access_token?: string; expires_in?: number };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      throw new DockpackError("OCI_TOKEN_FAILED", `${this.registry}: token service answered no JSON`);
    }
    const token = parsed.token ?? parsed.access_token;
    if (!token)
      throw new DockpackError("OCI_TOKEN_FAILED", `${this.registry}: token service answered no token`);
    this.#tokens.set(key, { token, expires: Date.now() + (parsed.expires_in ?? 60) * 1000 });
    return token;
  }

  async #authHeader(scopes: string[], force: boolean): Promise<string | undefined> {
    const ch = this.#challenge;
    if (!ch) return undefined;
    if (ch.scheme === "basic") {
      if (!this.#creds)
        throw new DockpackError("OCI_UNAUTHORIZED", `${this.registry} requires a login`, {
          hint: `Log in first: dockpack login ${this.registry}`,
        });
      return `Basic ${Buffer.from(`${this.#creds.username}:${this.#creds.password}`).toString("base64")}`;
    }
    const token = await this.#token(scopes, force);
    return token ? `Bearer ${token}` : undefined;
  }

  /**
   * Sends one request with auth, retries and redirects (GET/HEAD). Returns any status; the
   * caller checks it (see {@link RegistryTransport.fail}). A 401 after a fresh token or with
   * Basic credentials throws `OCI_UNAUTHORIZED`.
   */
  async request(req: RegistryRequest): Promise<RegistryResponse> {
    await this.ping();
    const retries = this.#options.retries ?? 4;
    const scopes = req.scopes ?? [];
    let url = req.path.startsWith("http") ? req.path : `${this.base}${req.path}`;
    let forceToken = false;
    let authRetried = false;
    let redirects = 0;
    let sameHost = true;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      if (sameHost) {
        const auth = await this.#authHeader(scopes, forceToken);
        if (auth) headers.authorization = auth;
      }
      let body: Buffer | string | Readable | undefined;
      if (req.body !== undefined) {
        if (typeof req.body === "string" || Buffer.isBuffer(req.body)) {
          body = req.body;
          headers["content-length"] = String(Buffer.byteLength(req.body));
        } else {
          body = req.body.open();
          headers["content-length"] = String(req.body.length);
        }
      }
      let res: Dispatcher.ResponseData;
      try {
        res = await this.#raw(req.method, url, headers, body);
      } catch (e) {
        if (body && typeof body === "object" && "destroy" in body) (body as Readable).destroy();
        const code = (e as NodeJS.ErrnoException).code ?? "";
        if (attempt < retries && RETRY_CODES.has(code) && !this.#options.signal?.aborted) {
          await sleep(250 * 2 ** attempt, this.#options.signal);
          continue;
        }
        throw this.#networkError(e, url);
      }
      const status = res.statusCode;
      if (status === 401) {
        const h = res.headers["www-authenticate"];
        await res.body.dump();
        const hadAuth = Boolean(headers.authorization);
        if (h) this.#challenge = parseChallenge(Array.isArray(h) ? h[0] : h);
        if (!authRetried && (this.#challenge?.scheme === "bearer" || !hadAuth)) {
          authRetried = true;
          forceToken = hadAuth;
          attempt--;
          continue;
        }
        if (hadAuth && this.#challenge?.params.error === "invalid_token")
          throw new DockpackError(
            "OCI_TOKEN_REJECTED",
            `${this.registry}: ${req.method} ${new URL(url).pathname} was refused: the registry rejected a freshly issued token (expired or revoked)`,
            { hint: "Check the clocks of this machine and the token service, then log in again." },
          );
        throw new DockpackError(
          "OCI_UNAUTHORIZED",
          `${this.registry}: ${req.method} ${new URL(url).pathname} was refused (401 Unauthorized)${hadAuth ? " with the given credentials" : ""}`,
          {
            hint: `Check user and password (dockpack login ${this.registry}), or that the token has not expired.`,
          },
        );
      }
      if ((status === 429 || status >= 500) && attempt < retries) {
        const ra = Number(res.headers["retry-after"]);
        await res.body.dump();
        this.#options.reporter?.debug(`${this.registry}: ${req.method} ${url} answered ${status}; retrying`);
        await sleep(
          Number.isFinite(ra) && ra > 0 ? Math.min(ra, 30) * 1000 : 250 * 2 ** attempt,
          this.#options.signal,
        );
        continue;
      }
      if (
        [301, 302, 303, 307, 308].includes(status) &&
        (req.method === "GET" || req.method === "HEAD") &&
        redirects < 5
      ) {
        const loc = res.headers.location;
        await res.body.dump();
        if (typeof loc === "string") {
          const next = new URL(loc, url);
          sameHost = next.host === new URL(this.base).host;
          url = next.toString();
          redirects++;
          attempt--;
          continue;
        }
      }
      return {
        status,
        headers: res.headers as RegistryResponse["headers"],
        body: res.body as unknown as RegistryResponse["body"],
        url,
      };
    }
  }

  /**
   * Turns an unexpected response into a named error: 404 → `OCI_NOT_FOUND`, 403 → `OCI_DENIED`,
   * 5xx/429 → `OCI_SERVER_ERROR`, else `OCI_REQUEST_FAILED`; the registry's error codes
   * (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `DIGEST_INVALID`, …) go into the message.
   */
  async fail(res: RegistryResponse, what: string): Promise<never> {
    let detail = "";
    const used =
      (res.body as unknown as { bodyUsed?: boolean }).bodyUsed ||
      res.body.readableEnded ||
      res.body.destroyed;
    try {
      if (used) throw new Error("body already read");
      const text = (await res.body.text()).slice(0, 2000);
      try {
        const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
        detail = (parsed.errors ?? []).map((e) => `${e.code}: ${e.message}`).join("; ");
      } catch {
        detail = text.trim().slice(0, 200);
      }
    } catch {
      // no body
    }
    const msg = `${this.registry}: ${what} failed with ${res.status}${detail ? ` (${detail})` : ""}`;
    if (res.status === 404)
      throw new DockpackError("OCI_NOT_FOUND", msg, {
        hint: "Check the reference (repository, tag, digest).",
      });
    if (res.status === 403)
      throw new DockpackError("OCI_DENIED", msg, {
        hint: "The account lacks permission for this repository.",
      });
    if (res.status === 429 || res.status >= 500)
      throw new DockpackError("OCI_SERVER_ERROR", msg, { hint: "The registry failed; retry later." });
    throw new DockpackError("OCI_REQUEST_FAILED", msg, { details: { status: res.status } });
  }
}
