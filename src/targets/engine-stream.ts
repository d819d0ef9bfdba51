/**
 * Reading the Docker Engine's JSON-lines progress streams (POST /build, POST /images/{name}/push:
 * one JSON object per line with `stream`, `status`, `aux`, `error`/`errorDetail`), and pushing an
 * image reference with that stream's errors turned into a DockpackError.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { engineMessage } from "../core/docker/client.js";
import { DockpackError } from "../core/errors.js";

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
 * Credentials for the registry host of `repo` from the docker CLI's config
 * (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, `auths.<host>.auth`); credential
 * helpers are not consulted. Returns an empty auth config when there is none.
 */
function authFor(repo: string): Record<string, string> {
  const first = repo.split("/")[0];
  const host = repo.includes("/") && /[.:]/.test(first) ? first : "https://index.docker.io/v1/";
  const file = join(process.env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
  if (!existsSync(file)) return {};
  try {
    const cfg = JSON.parse(readFileSync(file, "utf8")) as { auths?: Record<string, { auth?: string }> };
    const entry = cfg.auths?.[host] ?? cfg.auths?.[`https://${host}`];
    if (!entry?.auth) return {};
    const plain = Buffer.from(entry.auth, "base64").toString("utf8");
    const i = plain.indexOf(":");
    return { username: plain.slice(0, i), password: plain.slice(i + 1), serveraddress: host };
  } catch {
    return {};
  }
}

/**
 * Pushes `ref` (POST /images/{name}/push?tag=…) and streams its status lines to `log`.
 * Throws `TARGET_PUSH_FAILED` naming the reference and the engine's error (e.g. registry not
 * reachable, authentication required).
 */
export async function pushImage(docker: Docker, ref: string, log: (line: string) => void): Promise<void> {
  const { repo, tag } = splitReference(ref);
  let failure: string | undefined;
  try {
    const stream = (await docker
      .getImage(repo)
      .push({ tag, authconfig: authFor(repo) } as never)) as unknown as NodeJS.ReadableStream;
    await readJsonLines(stream, (msg) => {
      if (msg.error || msg.errorDetail) {
        const detail = msg.errorDetail as { message?: string } | undefined;
        failure = String(detail?.message ?? msg.error);
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
}
