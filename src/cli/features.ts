/**
 * `dockpack features …`: Dev Container Features. `features package` turns flags into the options
 * of {@link packageFeatures} (src/features) and prints its result as a table or, under --json, as
 * the result object `{ count, outputDir, features: [{ id, version, file, size, digest }] }`.
 */
import { relative } from "node:path";
import type { Command } from "commander";
import { formatBytes, formatTable } from "../core/output.js";
import type { PackageFeaturesResult } from "../features/index.js";
import { action, withExamples } from "./common.js";
import { registerFeatureRegistryCommands } from "./registry.js";

function human(result: PackageFeaturesResult): string {
  const rows = result.features.map((f) => [
    f.id,
    f.version,
    formatBytes(f.size),
    f.digest,
    relative(process.cwd(), f.file) || f.file,
  ]);
  return formatTable(["FEATURE", "VERSION", "SIZE", "DIGEST", "FILE"], rows);
}

/** Adds `features` and its subcommands to the root program. */
export function register(program: Command): void {
  const group = program
    .command("features")
    .description("Dev Container Features: package features and their collection metadata for publishing");
  withExamples(group, [
    "dockpack features package src",
    "dockpack features package src/hello -o dist/features",
    "dockpack features package . -o output -f --json",
  ]);

  withExamples(
    group
      .command("package")
      .description(
        "package a feature folder, or a folder of feature folders (src, or a repository root holding src/), " +
          "into devcontainer-feature-<id>.tgz files and devcontainer-collection.json, as `devcontainer features " +
          "package` does, but reproducible (SOURCE_DATE_EPOCH) and validated before anything is written",
      )
      .argument("[target]", "feature folder, collection folder or repository root", ".")
      .option("-o, --output-folder <dir>", "where the artifacts go (created when absent)", "./output")
      .option(
        "-f, --force-clean-output-folder",
        "empty the output folder first (refused for /, home, the current folder and the target)",
      )
      .action(
        action(async (reporter, cmd: Command, target: string) => {
          const o = cmd.opts() as { outputFolder: string; forceCleanOutputFolder?: boolean };
          return (await import("../features/package.js")).packageFeatures(
            {
              target,
              outputFolder: o.outputFolder,
              forceCleanOutputFolder: Boolean(o.forceCleanOutputFolder),
            },
            reporter,
          );
        }, human),
      ),
    [
      "dockpack features package src                      # a collection: src/<id>/devcontainer-feature.json",
      "dockpack features package src/hello -o out          # a single feature",
      "SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) dockpack features package . -f",
      "dockpack features package src --json | jq -r '.features[].digest'",
    ],
  );
  registerFeatureRegistryCommands(group);
}
