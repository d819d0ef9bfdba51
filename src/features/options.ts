/**
 * Options and result of {@link packageFeatures} (`dockpack features package`, MCP tool
 * `features_package`). The options type is inferred from a zod schema so that the CLI, the
 * library and the MCP tool's input schema are the same thing.
 */
import { z } from "zod";

/** Fixed mtime (seconds) when SOURCE_DATE_EPOCH is unset: 1980-01-01T00:00:00Z (zip's epoch, no "implausibly old" warnings). */
export const DEFAULT_SOURCE_DATE_EPOCH = 315532800;

/** zod schema of {@link PackageFeaturesOptions}. */
export const packageFeaturesOptionsSchema = z.object({
  target: z
    .string()
    .default(".")
    .describe(
      "A feature folder (holds devcontainer-feature.json), a folder of feature folders (src), or a repository root holding src/. Relative to the current directory.",
    ),
  outputFolder: z
    .string()
    .default("./output")
    .describe("Where the .tgz files and devcontainer-collection.json go; created when absent."),
  forceCleanOutputFolder: z
    .boolean()
    .default(false)
    .describe(
      "Empty the output folder before the new artifacts move in. Refused for /, the home folder, the current folder, the target and any folder containing one of them.",
    ),
  concurrency: z
    .number()
    .int()
    .min(1)
    .max(64)
    .optional()
    .describe("Features packaged at once in collection mode (default: CPU count, at most 8)."),
  sourceDateEpoch: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      "mtime (seconds since 1970) of every tar entry. Default: the SOURCE_DATE_EPOCH environment variable, else 315532800 (1980-01-01).",
    ),
});

/** Options of {@link packageFeatures}: paths are resolved against the current directory. */
export type PackageFeaturesOptions = z.input<typeof packageFeaturesOptionsSchema>;

/** One packaged feature. */
export interface PackagedFeature {
  /** Feature id (= folder name). */
  id: string;
  /** Feature version (semver), from devcontainer-feature.json. */
  version: string;
  /** Absolute path of `devcontainer-feature-<id>.tgz` in the output folder. */
  file: string;
  /** Size of the tarball in bytes. */
  size: number;
  /** `sha256:<hex>` of the tarball: the OCI layer digest it gets when published. */
  digest: string;
}

/** Result of {@link packageFeatures}; printed as-is under `--json`. */
export interface PackageFeaturesResult {
  /** Number of features packaged. */
  count: number;
  /** The output folder (absolute). */
  outputDir: string;
  /** The packaged features, sorted by id. */
  features: PackagedFeature[];
}
