/**
 * MCP tools of the delta domain: `delta_create`, `delta_apply`, `delta_info`. Each calls the
 * library function of the same command with the same option schema and returns its result.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { silentReporter } from "../core/output.js";
import {
  ApplyDeltaOptionsSchema,
  applyDelta,
  CreateDeltaOptionsSchema,
  createDelta,
  DeltaInfoOptionsSchema,
  deltaInfo,
  deltaList,
} from "../delta/index.js";
import { registerLibraryTool } from "./tool.js";

/** Registers the delta tools on `server`. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "delta_create",
    "Write a delta package of an image holding only the layers the target lacks (binary deltas against the most similar base layers, else whole layers). Paths are on the server's machine. Returns the package metadata and size.",
    CreateDeltaOptionsSchema,
    async (input) => createDelta(input, silentReporter()),
  );
  registerLibraryTool(
    server,
    "delta_apply",
    "Rebuild the identical image from a delta package and base layers (from base archives or the Docker Engine); every layer is checked against its diff_id before it is loaded or written to `output` as a docker-archive. Returns the image ID and tags.",
    ApplyDeltaOptionsSchema,
    async (input) => applyDelta(input, silentReporter()),
  );
  registerLibraryTool(
    server,
    "delta_info",
    "Describe a delta package from its metadata only: source image, bases, method, compression, sizes and savings, and one row per layer.",
    DeltaInfoOptionsSchema,
    async (input) => ({ ...(await deltaInfo(input)), layers: (await deltaList(input)).layers }),
  );
}
