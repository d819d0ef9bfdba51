/**
 * Reads OCI image layouts (a directory, `oci:DIR`) and OCI archives (the same as a tar,
 * `oci-archive:FILE`), following the OCI image-spec (image-layout.md, image-index.md,
 * manifest.md). Nested image indexes are followed to the linux/amd64 (else the first) manifest.
 * Layer blobs may be uncompressed, gzip or zstd; diff_ids come from the config.
 */
import { sha256Hex } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import type { BlobContainer } from "./container.js";
import { assembleImage, type Image } from "./image.js";

/** An OCI content descriptor (image-spec descriptor.md). */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string };
}

/** Annotation holding a manifest's reference name in index.json. */
export const REF_NAME = "org.opencontainers.image.ref.name";
/** Annotation containerd/Docker ≥ 25 use for the full image name. */
export const IMAGE_NAME = "io.containerd.image.name";

/**
 * Member path of a blob: `blobs/<alg>/<hex>`; throws `IMAGE_MANIFEST_INVALID` for a bad digest,
 * naming `where` (the layout and the document that holds the digest) when given.
 */
export function blobPath(digest: unknown, where?: string): string {
  const m = typeof digest === "string" ? /^([a-z0-9]+):([a-f0-9]{32,256})$/.exec(digest) : null;
  if (!m)
    throw new DockpackError(
      "IMAGE_MANIFEST_INVALID",
      `${where ? `${where}: ` : ""}invalid blob digest ${JSON.stringify(digest)?.slice(0, 200)}.`,
      { hint: "A digest is <algorithm>:<lower-case hex>, e.g. sha256:… (OCI image-spec descriptor.md)." },
    );
  return `blobs/${m[1]}/${m[2]}`;
}

/** The entries of a `manifests` / `layers` array that are descriptors (objects), or a named error. */
function descriptors(list: unknown, where: string): OciDescriptor[] {
  if (!Array.isArray(list)) return [];
  list.forEach((d, i) => {
    if (typeof d !== "object" || d === null || Array.isArray(d))
      throw new DockpackError("IMAGE_MANIFEST_INVALID", `${where}: entry ${i} is not a descriptor object.`);
  });
  return list as OciDescriptor[];
}

/** A string annotation of `d`, or undefined (non-string values are ignored). */
function annotation(d: OciDescriptor, key: string): string | undefined {
  const a: unknown = d.annotations;
  const v = typeof a === "object" && a !== null ? (a as Record<string, unknown>)[key] : undefined;
  return typeof v === "string" ? v : undefined;
}

/**
 * Reads a JSON member; with `digest` (a blob's descriptor), its bytes must hash to it: OCI blobs
 * are content-addressed (image-spec descriptor.md, "verify").
 * @throws DockpackError `IMAGE_DIGEST_MISMATCH`, `IMAGE_MANIFEST_INVALID`, `IMAGE_MEMBER_MISSING`
 */
async function readJson(container: BlobContainer, path: string, digest?: string): Promise<any> {
  const bytes = await container.read(path);
  if (digest) verifyBlob(container, path, digest, bytes);
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    if ((e as { code?: string }).code === "IMAGE_MEMBER_MISSING") throw e;
    throw new DockpackError("IMAGE_MANIFEST_INVALID", `${container.location}: ${path} is not valid JSON.`, {
      cause: e,
    });
  }
}

/**
 * Checks that `bytes` hash to `digest` (sha256 only; other algorithms are not verified).
 * @throws DockpackError `IMAGE_DIGEST_MISMATCH` naming the container and the member
 */
export function verifyBlob(container: BlobContainer, path: string, digest: string, bytes: Buffer): void {
  if (!digest.startsWith("sha256:")) return;
  const actual = `sha256:${sha256Hex(bytes)}`;
  if (actual !== digest)
    throw new DockpackError(
      "IMAGE_DIGEST_MISMATCH",
      `${container.location}: ${path} does not match its digest (${digest}, content ${actual}); the image is damaged.`,
      { hint: "Export or copy the image again.", details: { path, expected: digest, actual } },
    );
}

function isIndex(mediaType: string | undefined): boolean {
  return (
    mediaType === "application/vnd.oci.image.index.v1+json" ||
    mediaType === "application/vnd.docker.distribution.manifest.list.v2+json"
  );
}

/**
 * Opens one image of an OCI layout held by `container`. `select` matches the ref-name
 * annotation (`latest` or a full `name:tag`); default: the first manifest. Throws
 * `IMAGE_FORMAT_UNKNOWN` without index.json and `IMAGE_NOT_FOUND` when `select` matches nothing.
 */
export async function readOciLayout(
  container: BlobContainer,
  ref: string,
  format: "oci" | "oci-archive",
  select?: string,
  close?: () => Promise<void>,
): Promise<Image> {
  if (!(await container.has("index.json"))) {
    throw new DockpackError(
      "IMAGE_FORMAT_UNKNOWN",
      `${container.location}: not an OCI image layout (no index.json).`,
      {
        hint: "Give an OCI layout directory (oci:DIR), an OCI archive (oci-archive:FILE) or a docker-archive.",
      },
    );
  }
  const index = await readJson(container, "index.json");
  const where = `${container.location}: index.json`;
  let manifests = descriptors(index?.manifests, `${where} manifests`);
  if (manifests.length === 0) {
    throw new DockpackError(
      "IMAGE_MANIFEST_INVALID",
      `${container.location}: index.json lists no manifests.`,
    );
  }
  let chosen = manifests[0];
  if (select) {
    const hit = manifests.find(
      (m) =>
        annotation(m, REF_NAME) === select ||
        annotation(m, IMAGE_NAME) === select ||
        annotation(m, IMAGE_NAME) === `${select}:latest`,
    );
    if (!hit) {
      throw new DockpackError(
        "IMAGE_NOT_FOUND",
        `${container.location}: no manifest named '${select}' in index.json.`,
      );
    }
    chosen = hit;
  }
  const tags: string[] = [];
  const name = annotation(chosen, IMAGE_NAME) ?? annotation(chosen, REF_NAME);
  if (name?.includes(":") && !name.includes("@")) tags.push(name);
  for (let depth = 0; isIndex(chosen.mediaType) && depth < 4; depth++) {
    const nested = await readJson(container, blobPath(chosen.digest, where), chosen.digest);
    manifests = descriptors(nested?.manifests, `${container.location}: image index ${chosen.digest}`);
    chosen =
      manifests.find((m) => m.platform?.os === "linux" && m.platform?.architecture === "amd64") ??
      manifests[0];
    if (!chosen)
      throw new DockpackError("IMAGE_MANIFEST_INVALID", `${container.location}: an empty image index.`);
  }
  const manifest = await readJson(container, blobPath(chosen.digest, where), chosen.digest);
  if (!manifest?.config?.digest || !Array.isArray(manifest.layers)) {
    throw new DockpackError(
      "IMAGE_MANIFEST_INVALID",
      `${container.location}: manifest ${chosen.digest} has no config or layers.`,
    );
  }
  const inManifest = `${container.location}: manifest ${chosen.digest}`;
  return assembleImage({
    ref,
    format,
    container,
    config: await readConfig(container, blobPath(manifest.config.digest, inManifest), manifest.config.digest),
    layerPaths: descriptors(manifest.layers, `${inManifest} layers`).map((l) =>
      blobPath(l.digest, inManifest),
    ),
    repoTags: tags,
    close,
  });
}

async function readConfig(container: BlobContainer, path: string, digest: string): Promise<Buffer> {
  const bytes = await container.read(path);
  verifyBlob(container, path, digest, bytes);
  return bytes;
}
