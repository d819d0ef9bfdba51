/**
 * MCP tools of the targets domain: `targets_list`, `targets_verify`, `targets_build`. Each calls
 * the library function of the same command and returns its result object.
 */

import { resolve } from "node:path";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { silentReporter } from "../core/output.js";
import { buildTarget, listTargets, verifyTargets } from "../targets/index.js";
import { registerLibraryTool } from "./tool.js";

const root = z
  .string()
  .describe(
    "Project root holding ops/packaging and docs/packaging (absolute, or relative to the server's cwd)",
  );

/** Registers the targets tools on `server`. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "targets_list",
    "List the packaging targets (services, jobs, apps) in docs/packaging/registry.json.",
    z.object({ root }),
    async (input) => listTargets({ root: resolve(input.root) }),
  );
  registerLibraryTool(
    server,
    "targets_verify",
    "Check the packaging tree and registry: paths exist, no unresolved template placeholders, valid image names, unique ids. Returns errors and warnings; reads files only.",
    z.object({ root, strict: z.boolean().optional().describe("Treat warnings as failures") }),
    async (input) =>
      verifyTargets({ root: resolve(input.root), strict: input.strict ?? false }, silentReporter()),
  );
  registerLibraryTool(
    server,
    "targets_build",
    "Build one packaging target through the Docker Engine (or, with dryRun, return the exact build without running it). Returns the image ID and tags.",
    z.object({
      root,
      target: z.string().describe("Target id"),
      tags: z.array(z.string()).optional().describe("Image tags (default latest)"),
      registry: z.string().optional().describe("Image name prefix, e.g. ghcr.io/acme"),
      buildArgs: z.record(z.string(), z.string()).optional().describe("Build args"),
      platform: z.string().optional().describe("Target platform, e.g. linux/amd64"),
      dryRun: z.boolean().optional().describe("Return the planned build only"),
    }),
    async (input) =>
      buildTarget(
        {
          root: resolve(input.root),
          target: input.target,
          tags: input.tags ?? [],
          buildArgs: input.buildArgs ?? {},
          ...(input.registry !== undefined ? { registry: input.registry } : {}),
          ...(input.platform !== undefined ? { platform: input.platform } : {}),
          dryRun: input.dryRun ?? false,
        },
        silentReporter(),
      ),
  );
}
