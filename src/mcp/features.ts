/**
 * MCP tool of the features domain: `features_package`, which calls {@link packageFeatures} (the
 * library function behind `dockpack features package`) and returns its result object
 * `{ count, outputDir, features: [{ id, version, file, size, digest }] }`. Relative paths are
 * resolved against the server's working directory.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { packageFeatures, packageFeaturesOptionsSchema } from "../features/index.js";
import { registerLibraryTool } from "./tool.js";

/** Registers the features tools on `server`. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "features_package",
    "Package Dev Container Features (a feature folder, a folder of feature folders such as src, or a repository root holding src/) into reproducible devcontainer-feature-<id>.tgz tarballs and devcontainer-collection.json, as `devcontainer features package` does. Validates every feature first (errors list each problem with file and JSON path); writes nothing on failure. Returns each tarball's path, size (bytes) and sha256 digest.",
    packageFeaturesOptionsSchema,
    async (input, reporter) => packageFeatures(input, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
      output: z.looseObject({
        count: z.number(),
        outputDir: z.string(),
        features: z.array(
          z.looseObject({
            id: z.string(),
            version: z.string(),
            file: z.string(),
            size: z.number(),
            digest: z.string(),
          }),
        ),
      }),
    },
  );
}
