/**
 * Registry credentials, read from and written to the same file as `docker login`:
 * `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).
 *
 * Lookup order for a registry (as the docker CLI does): `credHelpers[registry]` → that helper;
 * `auths[registry]` with an `auth` (base64 `user:password`) or `identitytoken`; `credsStore` →
 * that helper. Helpers are the `docker-credential-<name>` programs speaking the docker-credential
 * protocol (`get`/`store`/`erase`, server URL or JSON on stdin, JSON on stdout). Docker Hub is
 * stored under `https://index.docker.io/v1/`.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { DockpackError } from "../errors.js";
import { findProgram } from "../exec.js";
import { atomicWriteFile } from "../fs.js";

/** User name and secret for one registry. `identityToken` is an OAuth2 refresh token. */
export interface Credentials {
  username: string;
  password: string;
  identityToken?: string;
}

/** Path of the docker config file. */
export function dockerConfigPath(): string {
  return join(process.env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
}

/** The key a registry is stored under in `auths` (Docker Hub's legacy URL for docker.io). */
export function configKey(registry: string): string {
  return registry === "docker.io" || registry === "index.docker.io" || registry === "registry-1.docker.io"
    ? "https://index.docker.io/v1/"
    : registry;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

async function readConfig(path: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new DockpackError("OCI_CONFIG_UNREADABLE", `cannot read ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not a JSON object");
    return parsed as DockerConfig;
  } catch (e) {
    throw new DockpackError("OCI_CONFIG_INVALID", `${path} is not valid JSON: ${(e as Error).message}`, {
      hint: "Fix or remove the file, then log in again.",
    });
  }
}

function helperProgram(name: string): string {
  const program = `docker-credential-${name}`;
  if (!findProgram(program))
    throw new DockpackError(
      "OCI_CREDENTIAL_HELPER_MISSING",
      `credential helper ${program} is not installed`,
      {
        hint: `Install it, or remove "${name}" from credsStore/credHelpers in ${dockerConfigPath()}.`,
      },
    );
  return program;
}

/**
 * Runs `docker-credential-<name> <cmd>` with `input` on stdin. Returns its stdout, or null when the
 * helper says "credentials not found" (the docker-credential-helpers protocol prints that on
 * stdout with exit 1). @throws DockpackError `OCI_CREDENTIAL_HELPER_MISSING`/`_FAILED`.
 */
async function helperCall(
  name: string,
  cmd: "get" | "store" | "erase",
  input: string,
): Promise<string | null> {
  const program = helperProgram(name);
  const { execa } = await import("execa");
  const res = await execa(program, [cmd], { input, reject: false, stripFinalNewline: true });
  const stdout = typeof res.stdout === "string" ? res.stdout : "";
  const stderr = typeof res.stderr === "string" ? res.stderr : "";
  if (res.exitCode === 0) return stdout;
  if (/credentials not found/i.test(`${stdout}\n${stderr}`)) return null;
  const label = cmd === "store" ? "" : ` ${input}`;
  throw new DockpackError(
    "OCI_CREDENTIAL_HELPER_FAILED",
    `${program} ${cmd}${label} failed (exit ${res.exitCode ?? res.signal}): ${(stderr || stdout).slice(-500)}`,
  );
}

async function helperGet(name: string, serverUrl: string): Promise<Credentials | null> {
  const program = `docker-credential-${name}`;
  const stdout = await helperCall(name, "get", serverUrl);
  if (stdout === null) return null;
  let out: { Username?: string; Secret?: string };
  try {
    out = JSON.parse(stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new DockpackError("OCI_CREDENTIAL_HELPER_FAILED", `${program} get ${serverUrl} printed no JSON`);
  }
  if (!out.Secret) return null;
  return out.Username === "<token>"
    ? { username: "", password: "", identityToken: out.Secret }
    : { username: out.Username ?? "", password: out.Secret };
}

/**
 * The stored credentials for `registry`, or null when none are stored.
 * @throws DockpackError `OCI_CONFIG_INVALID`, `OCI_CREDENTIAL_HELPER_MISSING`/`_FAILED`.
 */
export async function getCredentials(registry: string): Promise<Credentials | null> {
  const config = await readConfig(dockerConfigPath());
  const key = configKey(registry);
  const helper = config.credHelpers?.[registry] ?? config.credHelpers?.[key];
  if (helper) return helperGet(helper, key);
  const entry = config.auths?.[key] ?? config.auths?.[registry];
  if (entry?.identitytoken) return { username: "", password: "", identityToken: entry.identitytoken };
  if (entry?.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    if (i < 0)
      throw new DockpackError(
        "OCI_CONFIG_INVALID",
        `${dockerConfigPath()}: auths["${key}"].auth is not base64 user:password`,
      );
    return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  if (entry?.username && entry.password) return { username: entry.username, password: entry.password };
  if (config.credsStore) return helperGet(config.credsStore, key);
  return null;
}

/**
 * Stores credentials for `registry` as `docker login` does: in the credential helper when one is
 * configured (credHelpers or credsStore), else base64 in `auths`. The file is written atomically
 * with mode 0600. Returns where they went (`config.json` or the helper's name).
 */
export async function storeCredentials(registry: string, creds: Credentials): Promise<string> {
  const path = dockerConfigPath();
  const config = await readConfig(path);
  const key = configKey(registry);
  const helper = config.credHelpers?.[registry] ?? config.credHelpers?.[key] ?? config.credsStore;
  if (helper) {
    const input = JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password });
    await helperCall(helper, "store", input);
    config.auths = { ...(config.auths ?? {}), [key]: {} };
  } else {
    const auth = Buffer.from(`${creds.username}:${creds.password}`).toString("base64");
    config.auths = { ...(config.auths ?? {}), [key]: { auth } };
  }
  await atomicWriteFile(path, `${JSON.stringify(config, null, "\t")}\n`, { mode: 0o600 });
  return helper ? `docker-credential-${helper}` : path;
}

/** Removes stored credentials for `registry` (config and helper). Returns false when none were stored. */
export async function eraseCredentials(registry: string): Promise<boolean> {
  const path = dockerConfigPath();
  const config = await readConfig(path);
  const key = configKey(registry);
  let found = false;
  const helper = config.credHelpers?.[registry] ?? config.credHelpers?.[key] ?? config.credsStore;
  if (helper && (await helperCall(helper, "erase", key)) !== null) found = true;
  for (const k of [key, registry]) {
    if (config.auths && k in config.auths) {
      delete config.auths[k];
      found = true;
    }
  }
  if (found) await atomicWriteFile(path, `${JSON.stringify(config, null, "\t")}\n`, { mode: 0o600 });
  return found;
}
