/**
 * `features package`: Dev Container Features → `devcontainer-feature-<id>.tgz` tarballs and
 * `devcontainer-collection.json`, as the devcontainer CLI's `features package` makes them
 * (devcontainers/cli `packageCommandImpl` / `collectionCommonUtils`), but reproducible, validated
 * before anything is written, and atomic.
 *
 * Tarball format (what the CLI and its consumers read): a plain, uncompressed POSIX tar (media type
 * `application/vnd.devcontainers.layer.v1+tar`, `.tgz` by name only) of every file of the feature
 * folder, entry names prefixed `./`: the root `./`, then `./devcontainer-feature.json`, then the
 * rest sorted by UTF-8 bytes. Every entry has the same mtime (SOURCE_DATE_EPOCH), uid/gid 0, no
 * user/group names, modes 0755 (folders, executables), 0644 (files), 0777 (symlinks, kept as links).
 */
import { createWriteStream } from "node:fs";
import { cp, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { packDirectory } from "../core/archive.js";
import { DigestStream } from "../core/digest.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { ensureFreeSpace } from "../core/fs.js";
import { formatBytes, type Reporter, silentReporter } from "../core/output.js";
import { discoverFeatures, type FeatureSource } from "./discover.js";
import { FEATURE_FILE } from "./metadata.js";
import {
  DEFAULT_SOURCE_DATE_EPOCH,
  type PackagedFeature,
  type PackageFeaturesOptions,
  type PackageFeaturesResult,
  packageFeaturesOptionsSchema,
} from "./options.js";
import {
  checkForceClean,
  checkOutputFolder,
  checkOutputNotInFeature,
  commitOutput,
  createStaging,
  discardStaging,
} from "./output-folder.js";

/** Name of the collection metadata file in the output folder. */
export const COLLECTION_FILE = "devcontainer-collection.json";

/** Tarball name of a feature: `devcontainer-feature-<id>.tgz` (devcontainer CLI naming). */
export function featureTarballName(id: string): string {
  return `devcontainer-feature-${id}.tgz`;
}

/**
 * The mtime (seconds) written on every tar entry: `explicit`, else the SOURCE_DATE_EPOCH
 * environment variable (reproducible-builds.org spec), else {@link DEFAULT_SOURCE_DATE_EPOCH}.
 * @throws DockpackError `SOURCE_DATE_EPOCH_INVALID` (usage) when the variable is not a whole number ≥ 0.
 */
export function resolveSourceDateEpoch(explicit?: number, env = process.env.SOURCE_DATE_EPOCH): number {
  if (explicit !== undefined) return explicit;
  if (env === undefined || env === "") return DEFAULT_SOURCE_DATE_EPOCH;
  if (!/^\d+$/.test(env.trim()))
    throw new DockpackError(
      "SOURCE_DATE_EPOCH_INVALID",
      `SOURCE_DATE_EPOCH='${env}' is not a whole number of seconds.`,
      {
        hint: "Set it to a Unix timestamp such as $(git log -1 --format=%ct), or unset it.",
        usage: true,
      },
    );
  return Number(env.trim());
}

/**
 * The collection metadata document, serialised as the devcontainer CLI writes it (4-space JSON,
 * no final newline): `{ sourceInformation: { source: "dockpack" }, features: [metadata…] }`.
 */
export function collectionDocument(features: FeatureSource[]): string {
  return JSON.stringify(
    { sourceInformation: { source: "dockpack" }, features: features.map((f) => f.metadata) },
    null,
    4,
  );
}

async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
  return results;
}

/** Exclusion filter for packDirectory: never package the output or staging folder (when inside). */
function excluding(root: string, paths: string[]): (rel: string) => boolean {
  const rels = paths
    .map((p) => relative(root, p))
    .filter((r) => r && !r.startsWith("..") && !r.startsWith(sep));
  if (rels.length === 0) return () => true;
  return (rel) => !rels.includes(rel);
}

async function packageOne(
  feature: FeatureSource,
  staging: string,
  outputDir: string,
  mtime: number,
): Promise<PackagedFeature> {
  const name = featureTarballName(feature.id);
  let dir = feature.folder;
  const skip = [outputDir, staging];
  if (feature.rewritten) {
    // As the devcontainer CLI does for features with legacyIds: the packaged metadata gets currentId.
    dir = join(staging, `.src-${feature.id}`);
    const keep = excluding(feature.folder, skip);
    await cp(feature.folder, dir, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (src) => keep(relative(feature.folder, src)),
    });
    await writeFile(join(dir, FEATURE_FILE), JSON.stringify(feature.metadata, null, 4));
  }
  const tar = packDirectory(dir, {
    prefix: "./",
    root: true,
    deterministic: true,
    mtime,
    first: [FEATURE_FILE],
    filter: excluding(dir, skip),
  });
  const digest = new DigestStream();
  await pipeline(tar, digest, createWriteStream(join(staging, name), { flags: "wx" }));
  return {
    id: feature.id,
    version: feature.version,
    file: join(outputDir, name),
    size: digest.size,
    digest: digest.digest,
  };
}

/**
 * Packages Dev Container Features for publishing (devcontainer CLI `features package` compatible).
 *
 * Steps: resolve paths and check `forceCleanOutputFolder` safety → discover and validate every
 * feature (nothing written yet) → package features concurrently (bounded pool) into a staging
 * folder next to the output folder → write `devcontainer-collection.json` → move everything into
 * the output folder (emptied first with `forceCleanOutputFolder`). A failure removes the staging
 * folder and leaves the output folder as it was.
 *
 * Logs (stderr, through `reporter`): "Packaging single feature..." or "Packaging feature
 * collection...", one line per feature, "Packaged N features".
 * @returns `{ count, outputDir, features: [{ id, version, file, size (bytes), digest }] }`
 * @throws DockpackError `FEATURES_TARGET_MISSING`, `FEATURES_NOT_FOUND`, `FEATURES_INVALID` (every
 *   problem listed), `FEATURES_CLEAN_REFUSED`, `FEATURES_OUTPUT_NOT_FOLDER`, `NO_SPACE` (the features' files
 *   would not fit in the output folder's file system),
 *   `SOURCE_DATE_EPOCH_INVALID`, `ARCHIVE_UNSUPPORTED_ENTRY` (a fifo or device in a feature),
 *   `FS_*` file-system errors.
 */
export async function packageFeatures(
  options: PackageFeaturesOptions,
  reporter: Reporter = silentReporter(),
): Promise<PackageFeaturesResult> {
  const o = packageFeaturesOptionsSchema.parse(options);
  const target = resolve(o.target);
  const outputDir = resolve(o.outputFolder);
  const mtime = resolveSourceDateEpoch(o.sourceDateEpoch);
  checkOutputNotInFeature(outputDir, target);
  if (o.forceCleanOutputFolder) checkForceClean(outputDir, target);
  await checkOutputFolder(outputDir);
  const found = await discoverFeatures(target, reporter, [outputDir]);
  reporter.info(found.mode === "single" ? "Packaging single feature..." : "Packaging feature collection...");
  reporter.debug(`mtime ${mtime}, output ${outputDir}`);

  // a feature may hold huge (even sparse) files: refuse before writing when they cannot fit
  await ensureFreeSpace(
    outputDir,
    found.features.reduce((n, f) => n + f.bytes, 0),
    `the tarballs of ${found.features.length} feature${found.features.length === 1 ? "" : "s"}`,
  );
  const staging = await createStaging(outputDir);
  try {
    const limit = found.mode === "single" ? 1 : (o.concurrency ?? Math.min(8, Math.max(1, cpus().length)));
    const progress = reporter.progress("features", found.features.length, "items");
    const packaged = await pool(found.features, limit, async (feature) => {
      const p = await packageOne(feature, staging, outputDir, mtime);
      reporter.info(
        `Packaged feature '${p.id}' ${p.version} (${formatBytes(p.size)}, ${p.digest.slice(0, 19)}…)`,
      );
      progress.increment(1);
      return p;
    });
    progress.stop();
    await writeFile(join(staging, COLLECTION_FILE), collectionDocument(found.features), { flag: "wx" });
    await commitOutput(staging, outputDir, o.forceCleanOutputFolder);
    reporter.info(
      `Packaged ${packaged.length} feature${packaged.length === 1 ? "" : "s"} into ${relative(process.cwd(), outputDir) || "."}`,
    );
    return { count: packaged.length, outputDir, features: packaged };
  } catch (e) {
    await discardStaging(staging).catch(() => undefined);
    throw toDockpackError(e);
  }
}
