/**
 * Reading the Docker Engine's JSON-lines progress streams (POST /build, POST /images/{name}/push:
 * one JSON object per line with `stream`, `status`, `aux`, `error`/`errorDetail`), and pushing an
 * image reference with that stream's errors turned into a DockpackError.
 */
import type Docker from "dockerode";
import { engineMessage } from "../core/docker/client.js";
import { DockpackError } from "../core/errors.js";
import { configKey, getCredentials } from "../core/oci/credentials.js";

/** One message of an engine progress stream. */
export type EngineMessage = Record<string, unknown>;

/**
 * Consumes a JSON-lines stream, calling `onMessage` for each object in order; resolves at the
 * end. A line that is not JSON is passed as `{ stream: line }`.
 */
export function readJsonLines(
  stream: NodeJS.ReadableStream,
  onMessage: (msg: EngineMessage) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const line = (text: string) => {
      const s = text.trim();
      if (!s) return;
      let msg: EngineMessage;
      try {
        msg = JSON.parse(s) as EngineMessage;
      } catch {
        msg = { stream: s };
      }
      onMessage(msg);
    };
    stream.on("data", (chunk: Buffer | string) => {
      buf += chunk.toString();
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
      }
    });
    stream.on("error", reject);
    stream.on("end", () => {
      line(buf);
      resolve();
    });
  });
}

/** Splits `host/repo:tag` into `{ repo, tag }` (tag `latest` when absent). */
export function splitReference(ref: string): { repo: string; tag: string } {
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: "latest" };
}

/**
 * X-Registry-Auth for pushing `repo` through the engine, from the same lookup every registry
 * command uses (core/oci/credentials.ts: `credHelpers`, `auths`, `credsStore`); `{}` when nothing
 * is stored. @throws DockpackError `OCI_CONFIG_INVALID`, `OCI_CREDENTIAL_HELPER_MISSING`/`_FAILED`.
 */
async function authFor(repo: string): Promise<Record<string, string>> {
  const first = repo.split("/")[0];
  const host = repo.includes("/") && /[.:]/.test(first) ? first : "docker.io";
  const creds = await getCredentials(host);
  if (!creds) return {};
  const serveraddress = configKey(host);
  return creds.identityToken
    ? { identitytoken: creds.identityToken, serveraddress }
    : { username: creds.username, password: creds.password, serveraddress };
}

/**
 * Pushes `ref` (POST /images/{name}/push?tag=…) and streams its status lines to `log`.
 * Resolves to the pushed manifest's digest (`sha256:…`, from the stream's `aux.Digest`), or
 * undefined when the engine reported none. Throws `TARGET_PUSH_FAILED` naming the reference and the engine's error (e.g. registry not
 * reachable, authentication required).
 */
export async function pushImage(
  docker: Docker,
  ref: string,
  log: (line: string) => void,
): Promise<string | undefined> {
  const { repo, tag } = splitReference(ref);
  const authconfig = await authFor(repo);
  let failure: string | undefined;
  let digest: string | undefined;
  try {
    const stream = (await docker
      .getImage(repo)
      .push({ tag, authconfig } as never)) as unknown as NodeJS.ReadableStream;
    await readJsonLines(stream, (msg) => {
      if (msg.error || msg.errorDetail) {
        const detail = msg.errorDetail as { message?: string } | undefined;
        failure = String(detail?.message ?? msg.error);
      } else if (typeof (msg.aux as { Digest?: unknown } | undefined)?.Digest === "string") {
        digest = (msg.aux as { Digest: string }).Digest;
      } else if (typeof msg.status === "string") {
        log(`${msg.id ? `${msg.id}: ` : ""}${msg.status}`);
      }
    });
  } catch (err) {
    failure = engineMessage(err);
  }
  if (failure) {
    throw new DockpackError("TARGET_PUSH_FAILED", `Pushing ${ref} failed: ${failure}`, {
      hint: "Check that the registry is reachable from the Docker Engine and that you are logged in to it ('docker login <registry>'); the image is built and tagged locally.",
      details: { reference: ref, error: failure },
    });
  }
  return digest;
}
