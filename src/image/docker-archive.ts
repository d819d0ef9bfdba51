/**
 * Reads docker-archive files: `docker save` output of Docker < 25 (`<id>/layer.tar`,
 * `<config-hex>.json`, `manifest.json`, `repositories`) and of Docker ≥ 25 (an OCI image layout
 * inside the tar plus `manifest.json` whose paths point at `blobs/sha256/…`, legacy paths as
 * symlinks). Both are read through `manifest.json` (Docker image spec v1.2, "combined image
 * JSON + filesystem changeset format"); layers are matched by diff_id from the config, never by
 * file name.
 */
import { DockpackError } from "../core/errors.js";
import type { BlobContainer } from "./container.js";
import { assembleImage, type Image } from "./image.js";
import { verifyBlob } from "./oci-layout.js";

/** One entry of a docker-archive `manifest.json`. */
export interface DockerManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** Reads and checks `manifest.json`; throws `IMAGE_FORMAT_UNKNOWN` / `IMAGE_MANIFEST_INVALID`. */
export async function readDockerManifest(container: BlobContainer): Promise<DockerManifestEntry[]> {
  if (!(await container.has("manifest.json"))) {
    throw new DockpackError(
      "IMAGE_FORMAT_UNKNOWN",
      `${container.location}: not a docker-archive (no manifest.json).`,
      { hint: "Give a file written by 'docker save', or use oci:/oci-archive: for OCI layouts." },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse((await container.read("manifest.json")).toString("utf8"));
  } catch (e) {
    throw new DockpackError(
      "IMAGE_MANIFEST_INVALID",
      `${container.location}: manifest.json is not valid JSON.`,
      {
        cause: e,
      },
    );
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length === 0 ||
    parsed.some((m) => typeof m?.Config !== "string" || !Array.isArray(m?.Layers))
  ) {
    throw new DockpackError(
      "IMAGE_MANIFEST_INVALID",
      `${container.location}: manifest.json must be a non-empty array of {Config, RepoTags, Layers}.`,
    );
  }
  return parsed as DockerManifestEntry[];
}

/**
 * Opens one image of a docker-archive. `select` picks it by repo tag (`name:tag`) or by
 * position (`@N`); default the first. Throws `IMAGE_NOT_FOUND` when nothing matches.
 */
export async function readDockerArchive(
  container: BlobContainer,
  ref: string,
  select?: string,
  close?: () => Promise<void>,
): Promise<Image> {
  const entries = await readDockerManifest(container);
  let entry = entries[0];
  if (select) {
    const byIndex = /^@(\d+)$/.exec(select);
    const found = byIndex
      ? entries[Number(byIndex[1])]
      : entries.find((e) => (e.RepoTags ?? []).some((t) => t === select || t === `${select}:latest`));
    if (!found) {
      const tags = entries.flatMap((e) => e.RepoTags ?? []);
      throw new DockpackError(
        "IMAGE_NOT_FOUND",
        `${container.location}: no image '${select}' in the archive.`,
        {
          hint: tags.length ? `It holds: ${tags.join(", ")}.` : "Select an image by position with @N.",
        },
      );
    }
    entry = found;
  }
  return assembleImage({
    ref,
    format: "docker-archive",
    container,
    config: await readNamedConfig(container, entry.Config),
    layerPaths: entry.Layers,
    repoTags: entry.RepoTags ?? [],
    close,
  });
}

/**
 * Reads the config member; when its name is its digest (`<hex>.json` as `docker save` names it,
 * or `blobs/sha256/<hex>` in the OCI-style layout of Docker ≥ 25), the bytes must hash to it.
 * @throws DockpackError `IMAGE_DIGEST_MISMATCH`
 */
async function readNamedConfig(container: BlobContainer, path: string): Promise<Buffer> {
  const bytes = await container.read(path);
  const m = /(?:^|\/)(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(path);
  if (m) verifyBlob(container, path, `sha256:${m[1]}`, bytes);
  return bytes;
}
