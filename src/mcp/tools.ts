/**
 * MCP tools of the tool-services domain: `tool_list`, `tool_invoke`, `tool_compile` — the same
 * library functions as `dockpack tool list|invoke|compile`, with the same results.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { COMPILE_TARGETS, compileTool } from "../tools/compile.js";
import { invokeTool } from "../tools/invoke.js";
import { listTools } from "../tools/manifest.js";
import { registerLibraryTool } from "./tool.js";

const toolsDir = z
  .string()
  .optional()
  .describe("folder of tool folders (each holding tool.yaml); default $DOCKPACK_TOOLS_DIR or ./tools");

/** Registers tool_list, tool_invoke and tool_compile. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "tool_list",
    "List the tools (JSON-in/JSON-out programs and workflows described by tool.yaml) of a tools folder.",
    z.object({ tools_dir: toolsDir }),
    (a) => listTools({ toolsDir: a.tools_dir }),
  );
  registerLibraryTool(
    server,
    "tool_invoke",
    "Run a tool once: the input is validated against its input_schema, the tool runs with its timeout, the output is validated against its output_schema. Returns { tool_id, result, duration_seconds }.",
    z.object({
      id: z.string().describe("tool id"),
      input: z.record(z.string(), z.unknown()).describe("the input object"),
      timeout_seconds: z.number().positive().optional().describe("override the tool's timeout, in seconds"),
      tools_dir: toolsDir,
    }),
    (a) => invokeTool({ id: a.id, input: a.input, timeoutSeconds: a.timeout_seconds, toolsDir: a.tools_dir }),
  );
  registerLibraryTool(
    server,
    "tool_compile",
    "Package a tool as a Docker build context (Dockerfile, docker-compose.yml, server.cjs, scripts, README, .env) and/or a Node single executable. Fails with OUTPUT_EXISTS when the output folder is not empty unless force is true.",
    z.object({
      id: z.string().describe("tool id"),
      output: z.string().default("docker-package").describe("output folder"),
      target: z.enum(COMPILE_TARGETS).default("docker").describe("docker, exe or both"),
      base_image: z.string().optional().describe("base image of the Dockerfile"),
      port: z.number().int().min(1).max(65535).default(8080).describe("API port"),
      ci: z.enum(["github"]).optional().describe("also write a CI workflow"),
      force: z.boolean().default(false).describe("replace an existing non-empty output folder"),
      tools_dir: toolsDir,
    }),
    (a) =>
      compileTool({
        id: a.id,
        output: a.output,
        target: a.target,
        baseImage: a.base_image,
        port: a.port,
        ci: a.ci,
        force: a.force,
        toolsDir: a.tools_dir,
      }),
  );
}
