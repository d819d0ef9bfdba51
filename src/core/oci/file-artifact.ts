/**
 * One file as an OCI artifact (OCI image spec 1.1 "artifact" guidance, as ORAS stores a file):
 * a manifest with `artifactType`, the empty config (`application/vnd.oci.empty.v1+json`, `{}`)
 * and one layer holding the file's bytes, titled with its base name. Used for delta packages
 * (`delta push/pull`); any caller with its own artifact type can use it.
 */
import { rename, rm, stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { Readable } from "node:stream";
import { digestFile } from "../digest.js";
import { DockpackError } from "../errors.js";
import { type Reporter, silentReporter } from "../output.js";
import { fileRange, openRepository } from "./client.js";
import {
  type Descriptor,
  EMPTY_DIGEST,
  EMPTY_JSON,
  type ImageManifest,
  OCI_EMPTY,
  OCI_MANIFEST,
} from "./media-types.js";
import { formatReference, referenceTarget } from "./reference.js";
import type { RegistryOptions } from "./transport.js";

/** Options of {@link pushFileArtifact}. */
export interface PushFileArtifactOptions extends RegistryOptions {
  /** The file to push. */
  file: string;
  /** Target reference with a tag, e.g. `registry.example/app/delta:2`. */
  reference: string;
  /** The manifest's `artifactType`. */
  artifactType: string;
  /** Media type of the one layer. */
  layerMediaType: string;
  /** Extra manifest annotations. */
  annotations?: Record<string, string>;
  /** PATCH chunk size for a big file (bytes; the client's default otherwise). */
  chunkSize?: number;
}

/** Result of {@link pushFileArtifact}. */
export interface PushFileArtifactResult {
  reference: string;
  /** `sha256:<hex>` of the manifest. */
  digest: string;
  /** `sha256:<hex>` of the file (the layer). */
  blob: string;
  size: number;
  /** Bytes sent (0 when the registry already had the blob). */
  uploadedBytes: number;
  seconds: number;
}

/**
 * Pushes a file as a one-layer artifact: blob (skipped when present, resumable when chunked),
 * empty config, then the manifest under the tag — so the tag never names a missing blob.
 * @throws DockpackError `FS_ENOENT`, `FS_NOT_REGULAR_FILE`, `OCI_REFERENCE_INVALID` (no tag), `OCI_*`.
 */
export async function pushFileArtifact(
  options: PushFileArtifactOptions,
  reporter: Reporter = silentReporter(),
): Promise<PushFileArtifactResult> {
  const t0 = Date.now();
  const file = resolve(options.file);
  const st = await stat(file).catch(() => null);
  if (!st) throw new DockpackError("FS_ENOENT", `${file} does not exist`);
  if (!st.isFile()) throw new DockpackError("FS_NOT_REGULAR_FILE", `${file} is not a regular file`);
  const { digest: blob, size } = await digestFile(file);
  const { repo, ref } = await openRepository(options.reference, { ...options, reporter });
  try {
    if (!ref.tag) throw new DockpackError("OCI_REFERENCE_INVALID", "push needs a tag", { usage: true });
    const bar = reporter.progress(`push ${formatReference(ref)}`, size);
    const r = await repo.pushBlob(blob, size, {
      open: fileRange(file, 0, size),
      chunkSize: options.chunkSize,
      onProgress: (n) => bar.update(n),
    });
    bar.stop();
    await repo.pushBlob(EMPTY_DIGEST, EMPTY_JSON.length, {
      open: (from) => Readable.from([EMPTY_JSON.subarray(from)]),
    });
    const layer: Descriptor = {
      mediaType: options.layerMediaType,
      digest: blob,
      size,
      annotations: { "org.opencontainers.image.title": basename(file) },
    };
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: options.artifactType,
      config: { mediaType: OCI_EMPTY, digest: EMPTY_DIGEST, size: EMPTY_JSON.length },
      layers: [layer],
      annotations: { "org.opencontainers.image.created": new Date().toISOString(), ...options.annotations },
    };
    const { digest } = await repo.putManifest(
      referenceTarget(ref),
      Buffer.from(JSON.stringify(manifest)),
      OCI_MANIFEST,
    );
    return {
      reference: formatReference(ref),
      digest,
      blob,
      size,
      uploadedBytes: r.how === "uploaded" ? r.sent : 0,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    await repo.transport.close();
  }
}

/** Options of {@link pullFileArtifact}. */
export interface PullFileArtifactOptions extends RegistryOptions {
  reference: string;
  /** The `artifactType` the manifest must have. */
  artifactType: string;
  /** File to write. */
  output: string;
  /** Replace an existing output file. */
  force?: boolean;
  /** Checks the downloaded (digest-verified) file before it is renamed into place; throw to refuse. */
  check?: (path: string) => Promise<void>;
}

/** Result of {@link pullFileArtifact}. */
export interface PullFileArtifactResult {
  reference: string;
  digest: string;
  output: string;
  size: number;
  seconds: number;
}

/**
 * Pulls a one-layer artifact into `output`: the layer downloads into `<output>.part-<digest>`
 * (a rerun after an interruption resumes it), is verified by digest and by `check`, and only then
 * renamed to `output`; on failure the partial file is removed unless the download was cut.
 * @throws DockpackError `OCI_NOT_AN_ARTIFACT` (other artifactType or not one layer), `FS_EXISTS`,
 *   `DIGEST_MISMATCH`, what `check` throws, `OCI_*`.
 */
export async function pullFileArtifact(
  options: PullFileArtifactOptions,
  reporter: Reporter = silentReporter(),
): Promise<PullFileArtifactResult> {
  const t0 = Date.now();
  const output = resolve(options.output);
  if (!options.force && (await stat(output).catch(() => null)))
    throw new DockpackError("FS_EXISTS", `${output} already exists`, { hint: "Pass --force to replace it." });
  const { repo, ref } = await openRepository(options.reference, { ...options, reporter });
  try {
    const m = await repo.getManifest(referenceTarget(ref));
    const manifest = m.json as unknown as ImageManifest;
    const layers = manifest.layers ?? [];
    if (manifest.artifactType !== options.artifactType || layers.length !== 1)
      throw new DockpackError(
        "OCI_NOT_AN_ARTIFACT",
        `${formatReference(ref)} is not a ${options.artifactType} artifact (artifactType ${manifest.artifactType ?? "none"}, ${layers.length} layers)`,
      );
    const layer = layers[0];
    const part = `${output}.part-${layer.digest.slice(7, 23)}`;
    const bar = reporter.progress(`pull ${formatReference(ref)}`, layer.size);
    await repo.downloadBlob(layer, part, (n) => bar.update(n));
    bar.stop();
    try {
      await options.check?.(part);
    } catch (e) {
      await rm(part, { force: true });
      throw e;
    }
    await rename(part, output);
    return {
      reference: formatReference(ref),
      digest: m.digest,
      output,
      size: layer.size,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    await repo.transport.close();
  }
}
