/**
 * Image and artifact references as Docker and the OCI distribution spec write them:
 * `[registry[:port]/]repository[:tag][@sha256:<hex>]`.
 *
 * Rules (the same as docker/distribution's `reference` package): the first path component is a
 * registry when it contains `.` or `:` or is `localhost`; otherwise the registry is Docker Hub
 * (`docker.io`, API host `registry-1.docker.io`, one-component names get `library/`). The tag
 * defaults to `latest` only when neither tag nor digest is given.
 */
import { DockpackError } from "../errors.js";

/** A parsed reference. */
export interface OciReference {
  /** Registry host as written, e.g. `ghcr.io`, `127.0.0.1:5000`, `docker.io`. */
  registry: string;
  /** Repository path, e.g. `acme/shop`, `library/debian`. */
  repository: string;
  /** Tag, or undefined when only a digest was given. */
  tag?: string;
  /** `sha256:<hex>` when given with `@`. */
  digest?: string;
}

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/**
 * Parses `ref` (an optional `docker://` prefix, the skopeo transport, is accepted).
 * @throws DockpackError `OCI_REFERENCE_INVALID` (usage) naming the reference and the bad part.
 */
export function parseReference(ref: string): OciReference {
  const bad = (why: string) =>
    new DockpackError("OCI_REFERENCE_INVALID", `invalid reference ${JSON.stringify(ref)}: ${why}`, {
      hint: "Write it as registry/repository:tag or registry/repository@sha256:<hex>, e.g. ghcr.io/acme/shop:main.",
      usage: true,
    });
  let rest = ref.startsWith("docker://") ? ref.slice("docker://".length) : ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad(`digest ${JSON.stringify(digest)} is not sha256:<64 hex>`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(`tag ${JSON.stringify(tag)} is not valid`);
  }
  const parts = rest.split("/");
  let registry = "docker.io";
  if (parts.length > 1 && (parts[0].includes(".") || parts[0].includes(":") || parts[0] === "localhost")) {
    registry = parts.shift() as string;
  }
  let repository = parts.join("/");
  if (registry === "docker.io" && parts.length === 1) repository = `library/${repository}`;
  if (!repository || !REPO_RE.test(repository))
    throw bad(`repository ${JSON.stringify(repository)} is not valid`);
  if (!tag && !digest) tag = "latest";
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The reference part after the repository: the digest when set, else the tag. */
export function referenceTarget(ref: OciReference): string {
  return ref.digest ?? ref.tag ?? "latest";
}

/** Formats a reference back, `registry/repository[:tag][@digest]`. */
export function formatReference(ref: OciReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}

/** The host the API is reached at (`docker.io` → `registry-1.docker.io`). */
export function apiHost(registry: string): string {
  return registry === "docker.io" || registry === "index.docker.io" ? "registry-1.docker.io" : registry;
}

/** True for hosts where plain HTTP is allowed without `--insecure`: localhost and loopback. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
