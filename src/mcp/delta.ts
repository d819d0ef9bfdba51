/**
 * MCP tools of the delta domain: `delta_create`, `delta_apply`, `delta_info`, `delta_list`,
 * `delta_inventory`. Each calls the library function of the same command with the same option
 * schema and returns its result; create/apply send progress and stop with rollback on cancel.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import {
  ApplyDeltaOptionsSchema,
  applyDelta,
  CreateDeltaOptionsSchema,
  createDelta,
  createInventory,
  DeltaInfoOptionsSchema,
  deltaInfo,
  deltaList,
} from "../delta/index.js";
import { applyOutput, createOutput, infoOutput, inventoryOutput, listOutput } from "./delta-output.js";
import { registerLibraryTool } from "./tool.js";

/** Registers the delta tools on `server`. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "delta_create",
    "Write a delta package of an image holding only the layers the target lacks (binary deltas against the most similar base layers, else whole layers). Paths are on the server's machine. Returns the package metadata and size.",
    CreateDeltaOptionsSchema,
    async (input, reporter) => createDelta(input, reporter),
    {
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
      output: createOutput,
    },
  );
  registerLibraryTool(
    server,
    "delta_apply",
    "Rebuild the identical image from a delta package and base layers (from base archives or the Docker Engine); every layer is checked against its diff_id before it is loaded or written to `output` as a docker-archive. Returns the image ID and tags.",
    ApplyDeltaOptionsSchema,
    async (input, reporter) => applyDelta(input, reporter),
    {
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
      output: applyOutput,
    },
  );
  registerLibraryTool(
    server,
    "delta_info",
    "Describe a delta package from its metadata only: source image, bases, method, compression, sizes and savings, layer counts (layerCounts) and one row per layer (layers).",
    DeltaInfoOptionsSchema,
    async (input) => {
      const { layers: layerCounts, ...info } = await deltaInfo(input);
      return { ...info, layerCounts, layers: (await deltaList(input)).layers };
    },
    { annotations: { readOnlyHint: true, openWorldHint: false }, output: infoOutput },
  );
  registerLibraryTool(
    server,
    "delta_list",
    "List the layers of a delta package (metadata only): diff_id, how each is shipped (base, binary delta, whole), sizes.",
    DeltaInfoOptionsSchema,
    async (input) => deltaList(input),
    { annotations: { readOnlyHint: true, openWorldHint: false }, output: listOutput },
  );
  registerLibraryTool(
    server,
    "delta_inventory",
    "Write the layer inventory (image IDs, tags, diff_ids) of images on this machine — default every engine image — to a JSON file that delta_create accepts as a base on another machine.",
    z.object({
      images: z
        .array(z.string())
        .optional()
        .describe("image references (any form); default: every engine image"),
      output: z.string().describe("the inventory file to write (JSON)"),
      force: z.boolean().optional().describe("overwrite an existing file"),
    }),
    async (input, reporter) =>
      createInventory({ images: input.images ?? [], output: input.output, force: input.force }, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
      output: inventoryOutput,
    },
  );
}
