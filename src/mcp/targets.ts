/**
 * MCP tools of the targets domain: `targets_init`, `targets_add`, `targets_list`,
 * `targets_verify`, `targets_build`. Each calls the library function of the same command and
 * returns its result object.
 */

import { resolve } from "node:path";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { addTarget, buildTarget, initTargets, listTargets, verifyTargets } from "../targets/index.js";
import { addOutput, buildOutput, initOutput, listOutput, verifyOutput } from "./targets-output.js";
import { registerLibraryTool } from "./tool.js";

const root = z
  .string()
  .describe(
    "Project root holding ops/packaging and docs/packaging (absolute, or relative to the server's cwd)",
  );

const READ_ONLY = { readOnlyHint: true, openWorldHint: false } as const;

/** Registers the targets tools on `server`. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "targets_list",
    "List the packaging targets (services, jobs, apps) in docs/packaging/registry.json.",
    z.object({ root }),
    async (input) => listTargets({ root: resolve(input.root) }),
    { annotations: READ_ONLY, output: listOutput },
  );
  registerLibraryTool(
    server,
    "targets_init",
    "Create the packaging tree (ops/packaging/<type>s, docs/packaging/registry.json) under a project root. Idempotent: existing files are left alone. With dryRun, list what would be created.",
    z.object({ root, dryRun: z.boolean().optional().describe("List what would be created, write nothing") }),
    async (input, reporter) => initTargets({ root: resolve(input.root), dryRun: input.dryRun }, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
      output: initOutput,
    },
  );
  registerLibraryTool(
    server,
    "targets_add",
    "Add a packaging target (service, job or app) to the registry, with a Dockerfile from a template (node, python, go) unless one exists.",
    z.object({
      root,
      type: z.enum(["service", "job", "app"]).describe("Target type"),
      id: z.string().describe("Target id, [a-z0-9-], unique in the registry"),
      module: z.string().optional().describe("Source folder (default <type>s/<id>); must exist"),
      template: z.string().optional().describe("node, python, go or a template path (default: guessed)"),
      dockerfile: z
        .string()
        .optional()
        .describe("Dockerfile path (default ops/packaging/<type>s/<id>.Dockerfile)"),
      context: z.string().optional().describe("Build context (default the project root)"),
      image: z.string().optional().describe("Image repository name (default the id)"),
      port: z
        .number()
        .int()
        .min(1)
        .max(65535)
        .optional()
        .describe("Port filled into the template (default 8080)"),
      entry: z.string().optional().describe("Entry filled into the template (default guessed)"),
      healthPath: z.string().optional().describe("Health endpoint (default /healthz)"),
    }),
    async (input, reporter) => addTarget({ ...input, root: resolve(input.root) }, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      output: addOutput,
    },
  );
  registerLibraryTool(
    server,
    "targets_verify",
    "Check the packaging tree and registry: paths exist, no unresolved template placeholders, valid image names, unique ids. Returns errors and warnings; reads files only.",
    z.object({ root, strict: z.boolean().optional().describe("Treat warnings as failures") }),
    async (input, reporter) =>
      verifyTargets({ root: resolve(input.root), strict: input.strict ?? false }, reporter),
    { annotations: READ_ONLY, output: verifyOutput },
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
    async (input, reporter) =>
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
        reporter,
      ),
    {
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
      output: buildOutput,
    },
  );
}
