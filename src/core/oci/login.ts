/**
 * `login`/`logout`: check credentials against a registry, then store or erase them in the docker
 * config (the same file and helpers as `docker login`).
 */
import { DockpackError } from "../errors.js";
import { eraseCredentials, storeCredentials } from "./credentials.js";
import { type RegistryOptions, RegistryTransport } from "./transport.js";

/** Options of {@link login}. */
export interface LoginOptions extends Omit<RegistryOptions, "credentials"> {
  /** Registry host, e.g. `ghcr.io` or `127.0.0.1:5000`. */
  registry: string;
  username: string;
  password: string;
}

/** Result of {@link login}. */
export interface LoginResult {
  registry: string;
  username: string;
  /** Where the credentials were stored: the config file's path or the helper program. */
  storedIn: string;
}

/**
 * Verifies the credentials (GET /v2/ with Basic, or a token from the Bearer realm) and stores
 * them. Nothing is stored when the registry refuses them.
 * @throws DockpackError `OCI_UNAUTHORIZED` (wrong user or password), `OCI_UNREACHABLE`, `OCI_TLS_FAILED`.
 */
export async function login(options: LoginOptions): Promise<LoginResult> {
  if (!options.username || !options.password)
    throw new DockpackError("OCI_LOGIN_INCOMPLETE", "login needs a user name and a password", {
      hint: "Pass -u USER and --password-stdin (or -p PASSWORD).",
      usage: true,
    });
  const registry = options.registry.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  const transport = new RegistryTransport(
    registry,
    { username: options.username, password: options.password },
    options,
  );
  try {
    const res = await transport.request({ method: "GET", path: "/v2/", scopes: [] });
    if (res.status !== 200) await transport.fail(res, "login");
    await res.body.dump();
  } finally {
    await transport.close();
  }
  const storedIn = await storeCredentials(registry, {
    username: options.username,
    password: options.password,
  });
  return { registry, username: options.username, storedIn };
}

/** Erases the stored credentials of `registry`; `removed` is false when there were none. */
export async function logout(registry: string): Promise<{ registry: string; removed: boolean }> {
  const host = registry.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  return { registry: host, removed: await eraseCredentials(host) };
}
