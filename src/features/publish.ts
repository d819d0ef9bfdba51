/**
 * `dockpack features publish` and `features info`: Dev Container Features in an OCI registry,
 * laid out exactly as the devcontainer CLI (0.89) publishes them, so either tool reads what the
 * other wrote:
 *
 * - each feature at `<registry>/<namespace>/<id>`: an OCI image manifest whose config is the empty
 *   blob with media type `application/vnd.devcontainers`, one layer
 *   `application/vnd.devcontainers.layer.v1+tar` (the .tgz, title `devcontainer-feature-<id>.tgz`),
 *   and the annotation `dev.containers.metadata` (the feature's metadata as JSON); on ghcr.io also
 *   `com.github.package.type: devcontainer_feature`;
 * - tags: `X.Y.Z`, and `X`, `X.Y`, `latest` only when no published version in that range is
 *   newer (semver), so they move only forward; a version already published is skipped;
 *   `legacyIds` are published the same way under their old names;
 * - the collection metadata (`devcontainer-collection.json`, layer media type
 *   `application/vnd.devcontainers.collection.layer.v1+json`) at `<registry>/<namespace>:latest`.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import semver from "semver";
import { sha256Hex } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import { makeTempDir, removeTempDir } from "../core/fs.js";
import { fileRange, type OciRepository, openRepository } from "../core/oci/client.js";
import { EMPTY_DIGEST, EMPTY_JSON, type ImageManifest, OCI_MANIFEST } from "../core/oci/media-types.js";
import { parseReference, referenceTarget } from "../core/oci/reference.js";
import type { RegistryOptions } from "../core/oci/transport.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { COLLECTION_FILE, packageFeatures } from "./package.js";

/** Config media type of features, templates and collections. */
export const DEVCONTAINERS_CONFIG = "application/vnd.devcontainers";
/** Layer media type of a feature's .tgz. */
export const DEVCONTAINERS_LAYER = "application/vnd.devcontainers.layer.v1+tar";
/** Layer media type of devcontainer-collection.json. */
export const DEVCONTAINERS_COLLECTION_LAYER = "application/vnd.devcontainers.collection.layer.v1+json";

/** Options of {@link publishFeatures}. */
export interface PublishFeaturesOptions extends RegistryOptions {
  /** A feature folder, a folder of features (src) or a repository root holding src/. */
  target: string;
  /** Registry host, e.g. `ghcr.io` or `127.0.0.1:5000`. */
  registry: string;
  /** Namespace, e.g. `acme/features`. */
  namespace: string;
}

/** What was published for one feature (as the devcontainer CLI prints it). */
export interface PublishedFeature {
  id: string;
  version: string;
  /** Tags set by this run ([] when the version was already published). */
  publishedTags: string[];
  /** Manifest digest, when published. */
  digest?: string;
  publishedLegacyIds?: string[];
}

/** Result of {@link publishFeatures}. */
export interface PublishFeaturesResult {
  registry: string;
  namespace: string;
  features: PublishedFeature[];
  /** Digest of the collection metadata manifest at `<registry>/<namespace>:latest`. */
  collectionDigest: string;
}

/**
 * The tags the devcontainer CLI sets when publishing `version` next to the `existing` tags:
 * `[major, major.minor, version, latest]`, each of major/minor/latest only when no existing
 * version in its range is greater; undefined when `version` already exists.
 * @throws DockpackError `FEATURE_VERSION_INVALID` when `version` is not semver.
 */
export function tagsToPublish(version: string, existing: string[]): string[] | undefined {
  if (existing.includes(version)) return undefined;
  const v = semver.parse(version);
  if (!v)
    throw new DockpackError(
      "FEATURE_VERSION_INVALID",
      `version ${JSON.stringify(version)} is not semantic versioning`,
    );
  const tags: string[] = [];
  const forward = (range: string, tag: string) => {
    const max = semver.maxSatisfying(existing, range);
    if (max === null || semver.compare(version, max) === 1) tags.push(tag);
  };
  forward(`${v.major}.x.x`, `${v.major}`);
  forward(`${v.major}.${v.minor}.x`, `${v.major}.${v.minor}`);
  tags.push(version);
  forward("x.x.x", "latest");
  return tags;
}

async function pushSingleLayer(
  repo: OciRepository,
  layer: { open: (from: number) => Readable; digest: string; size: number; mediaType: string; title: string },
  annotations: Record<string, string> | undefined,
  tags: string[],
): Promise<string> {
  await repo.pushBlob(EMPTY_DIGEST, EMPTY_JSON.length, {
    open: (from) => Readable.from([EMPTY_JSON.subarray(from)]),
  });
  await repo.pushBlob(layer.digest, layer.size, { open: layer.open });
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: DEVCONTAINERS_CONFIG, digest: EMPTY_DIGEST, size: 2 },
    layers: [
      {
        mediaType: layer.mediaType,
        digest: layer.digest,
        size: layer.size,
        annotations: { "org.opencontainers.image.title": layer.title },
      },
    ],
    ...(annotations ? { annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  let digest = "";
  for (const tag of tags) digest = (await repo.putManifest(tag, bytes, OCI_MANIFEST)).digest;
  return digest;
}

/**
 * Packages the features at `target` (as `features package` does) and publishes them and the
 * collection metadata. Each feature's manifest is put under its tags only after its blobs are
 * in the registry.
 * @throws DockpackError the packaging errors (`FEATURE_*`), `OCI_*`.
 */
export async function publishFeatures(
  options: PublishFeaturesOptions,
  reporter: Reporter = silentReporter(),
): Promise<PublishFeaturesResult> {
  const registry = options.registry.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  const namespace = options.namespace.replace(/^\/+|\/+$/g, "");
  parseReference(`${registry}/${namespace}`);
  const out = await makeTempDir("dockpack-features-publish-");
  try {
    const packaged = await packageFeatures(
      { target: options.target, outputFolder: join(out, "output") },
      reporter,
    );
    const collectionBytes = await readFile(join(packaged.outputDir, COLLECTION_FILE));
    const collection = JSON.parse(collectionBytes.toString("utf8")) as {
      features: Record<string, unknown>[];
    };
    const ghcr = registry === "ghcr.io";
    const features: PublishedFeature[] = [];
    for (const meta of collection.features) {
      const id = String(meta.id);
      const version = String(meta.version ?? "");
      const file = packaged.features.find((f) => f.id === id);
      if (!file || !version) continue;
      const annotations = {
        "dev.containers.metadata": JSON.stringify(meta),
        ...(ghcr ? { "com.github.package.type": "devcontainer_feature" } : {}),
      };
      const layer = {
        open: fileRange(file.file, 0, file.size),
        digest: file.digest,
        size: file.size,
        mediaType: DEVCONTAINERS_LAYER,
        title: `devcontainer-feature-${id}.tgz`,
      };
      const publishAs = async (name: string): Promise<{ tags: string[]; digest?: string }> => {
        const { repo } = await openRepository(`${registry}/${namespace}/${name}`, { ...options, reporter });
        try {
          const tags = tagsToPublish(version, await repo.listTags());
          if (!tags) {
            reporter.warn(`${registry}/${namespace}/${name}: version ${version} already exists, skipping`);
            return { tags: [] };
          }
          const digest = await pushSingleLayer(repo, layer, annotations, tags);
          reporter.info(`Published feature '${name}' ${version}: ${tags.join(", ")}`);
          return { tags, digest };
        } finally {
          await repo.transport.close();
        }
      };
      const main = await publishAs(id);
      const entry: PublishedFeature = {
        id,
        version,
        publishedTags: main.tags,
        ...(main.digest ? { digest: main.digest } : {}),
      };
      const legacy = Array.isArray(meta.legacyIds) ? (meta.legacyIds as string[]) : [];
      if (main.digest && legacy.length) {
        const done: string[] = [];
        for (const old of legacy) if ((await publishAs(old)).tags.length) done.push(old);
        if (done.length) entry.publishedLegacyIds = done;
      }
      features.push(entry);
    }
    const { repo } = await openRepository(`${registry}/${namespace}`, { ...options, reporter });
    try {
      const collectionDigest = await pushSingleLayer(
        repo,
        {
          open: (from) => Readable.from([collectionBytes.subarray(from)]),
          digest: `sha256:${sha256Hex(collectionBytes)}`,
          size: collectionBytes.length,
          mediaType: DEVCONTAINERS_COLLECTION_LAYER,
          title: COLLECTION_FILE,
        },
        ghcr ? { "com.github.package.type": "devcontainer_collection" } : undefined,
        ["latest"],
      );
      reporter.info(`Published collection metadata to ${registry}/${namespace}:latest`);
      return { registry, namespace, features, collectionDigest };
    } finally {
      await repo.transport.close();
    }
  } finally {
    await removeTempDir(out);
  }
}

/** Result of {@link featureInfo}. */
export interface FeatureInfo {
  reference: string;
  /** `registry/repository@sha256:…` of the manifest. */
  canonicalId: string;
  manifest: ImageManifest;
  /** All tags of the repository. */
  publishedTags: string[];
  /** The `dev.containers.metadata` annotation, parsed (null when absent). */
  metadata: Record<string, unknown> | null;
}

/**
 * Reads a published feature (or the collection) from a registry: manifest, tags, metadata —
 * what `devcontainer features info manifest` and `info tags` show.
 * @throws DockpackError `FEATURE_NOT_A_FEATURE` when the manifest is not a devcontainers artifact, `OCI_*`.
 */
export async function featureInfo(options: RegistryOptions & { reference: string }): Promise<FeatureInfo> {
  const { repo, ref } = await openRepository(options.reference, options);
  try {
    const m = await repo.getManifest(referenceTarget(ref));
    const manifest = m.json as unknown as ImageManifest;
    if (manifest.config?.mediaType !== DEVCONTAINERS_CONFIG)
      throw new DockpackError(
        "FEATURE_NOT_A_FEATURE",
        `${options.reference} is not a devcontainers artifact (config ${manifest.config?.mediaType ?? "none"})`,
      );
    const raw = manifest.annotations?.["dev.containers.metadata"];
    let metadata: Record<string, unknown> | null = null;
    if (raw) {
      try {
        metadata = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw new DockpackError(
          "FEATURE_NOT_A_FEATURE",
          `${options.reference}: dev.containers.metadata is not JSON`,
        );
      }
    }
    return {
      reference: options.reference,
      canonicalId: `${ref.registry}/${ref.repository}@${m.digest}`,
      manifest,
      publishedTags: await repo.listTags(),
      metadata,
    };
  } finally {
    await repo.transport.close();
  }
}
