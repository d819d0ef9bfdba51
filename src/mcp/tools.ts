/**
 * MCP tools of the tool-services domain: `tool_list`, `tool_invoke`, `tool_compile` — the same
 * library functions as `dockpack tool list|invoke|compile`, with the same results — and
 * `tool_serve`, `tool_serve_status`, `tool_serve_stop`: HTTP services run by this MCP server
 * (`dockpack tool serve` in the background), stopped when the server ends.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { DockpackError } from "../core/errors.js";
import { COMPILE_TARGETS, compileTool } from "../tools/compile.js";
import { directoryResolver, invokeTool } from "../tools/invoke.js";
import { listTools, resolveToolsDir } from "../tools/manifest.js";
import { type RunningService, serviceConfigFromEnv, startToolServer } from "../tools/server.js";
import { registerLibraryTool } from "./tool.js";

const toolsDir = z
  .string()
  .optional()
  .describe("folder of tool folders (each holding tool.yaml); default $DOCKPACK_TOOLS_DIR or ./tools");

/** structuredContent of the tools (camelCase keys, see src/cli/json-keys.ts). */
const serviceRow = z.looseObject({ toolId: z.string(), url: z.string(), port: z.number() });
const listOutput = z.looseObject({
  toolsDir: z.string(),
  tools: z.array(z.looseObject({ id: z.string(), type: z.string(), version: z.string(), dir: z.string() })),
});
const invokeOutput = z.looseObject({
  toolId: z.string(),
  result: z.record(z.string(), z.unknown()),
  durationSeconds: z.number(),
});

/** Services started by tool_serve in this process, by tool id. */
const services = new Map<string, { service: RunningService; toolsDir: string; since: string }>();

function serviceRows() {
  return [...services.entries()].map(([id, s]) => ({
    toolId: id,
    url: s.service.url,
    port: s.service.port,
    toolsDir: s.toolsDir,
    since: s.since,
  }));
}

/** Stops every service started by tool_serve (the MCP server calls this when it closes). */
export async function stopAllServices(): Promise<void> {
  const all = [...services.values()];
  services.clear();
  await Promise.all(all.map((s) => s.service.close(5).catch(() => {})));
}

/** Registers tool_list, tool_invoke, tool_compile, tool_serve, tool_serve_status and tool_serve_stop. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "tool_list",
    "List the tools (JSON-in/JSON-out programs and workflows described by tool.yaml) of a tools folder.",
    z.object({ toolsDir }),
    (a) => listTools({ toolsDir: a.toolsDir }),
    { annotations: { readOnlyHint: true, openWorldHint: false }, output: listOutput },
  );
  registerLibraryTool(
    server,
    "tool_invoke",
    "Run a tool once: the input is validated against its input_schema, the tool runs with its timeout, the output is validated against its output_schema. Returns { toolId, result, durationSeconds }. A cancelled call kills the tool.",
    z.object({
      id: z.string().describe("tool id"),
      input: z.record(z.string(), z.unknown()).describe("the input object"),
      timeoutSeconds: z.number().positive().optional().describe("override the tool's timeout, in seconds"),
      toolsDir,
    }),
    (a) => invokeTool({ id: a.id, input: a.input, timeoutSeconds: a.timeoutSeconds, toolsDir: a.toolsDir }),
    {
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
      output: invokeOutput,
    },
  );
  registerLibraryTool(
    server,
    "tool_compile",
    "Package a tool as a Docker build context (Dockerfile, docker-compose.yml, server.cjs, scripts, README, .env) and/or a Node single executable; with push, also build the image through the Docker Engine and push it (result field pushed: reference, digest, image_id). Fails with OUTPUT_EXISTS when the output folder is not empty unless force is true.",
    z.object({
      id: z.string().describe("tool id"),
      output: z.string().default("docker-package").describe("output folder"),
      target: z.enum(COMPILE_TARGETS).default("docker").describe("docker, exe or both"),
      baseImage: z.string().optional().describe("base image of the Dockerfile"),
      port: z.number().int().min(1).max(65535).default(8080).describe("API port"),
      ci: z.enum(["github"]).optional().describe("also write a CI workflow"),
      force: z.boolean().default(false).describe("replace an existing non-empty output folder"),
      push: z
        .string()
        .optional()
        .describe("then build the image through the engine, tag it with this reference and push it"),
      toolsDir,
    }),
    (a, reporter) =>
      compileTool(
        {
          id: a.id,
          output: a.output,
          target: a.target,
          baseImage: a.baseImage,
          port: a.port,
          ci: a.ci,
          force: a.force,
          push: a.push,
          toolsDir: a.toolsDir,
        },
        reporter,
      ),
    { annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: true } },
  );
  registerLibraryTool(
    server,
    "tool_serve",
    "Start serving a tool as an HTTP API (GET /api/health /api/info /openapi.json, POST /api/invoke) in the background of this MCP server, until tool_serve_stop or the server ends. Returns its URL. Environment settings as for `dockpack tool serve` (API_TOKEN, RATE_LIMIT_PER_MINUTE, …).",
    z.object({
      id: z.string().describe("tool id"),
      port: z
        .number()
        .int()
        .min(0)
        .max(65535)
        .optional()
        .describe("listen port (default $API_PORT or 8080; 0 picks a free one)"),
      host: z.string().optional().describe("listen address (default 127.0.0.1)"),
      toolsDir,
    }),
    async (a) => {
      if (services.has(a.id))
        throw new DockpackError(
          "SERVICE_RUNNING",
          `Tool '${a.id}' is already served on ${services.get(a.id)?.service.url}.`,
          {
            hint: "Stop it with tool_serve_stop first, or use it as it is.",
          },
        );
      const resolve = directoryResolver(a.toolsDir);
      const tool = await resolve(a.id);
      const cfg = serviceConfigFromEnv();
      cfg.host = a.host ?? "127.0.0.1";
      if (a.port !== undefined) cfg.port = a.port;
      const service = await startToolServer(tool, { ...cfg, resolve, toolsDir: resolveToolsDir(a.toolsDir) });
      services.set(a.id, { service, toolsDir: resolveToolsDir(a.toolsDir), since: new Date().toISOString() });
      return { toolId: a.id, url: service.url, port: service.port };
    },
    { annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true }, output: serviceRow },
  );
  registerLibraryTool(
    server,
    "tool_serve_status",
    "List the tool services started by tool_serve that are running: tool id, URL, port, since.",
    z.object({}),
    async () => ({ services: serviceRows() }),
    {
      annotations: { readOnlyHint: true, openWorldHint: false },
      output: z.looseObject({
        services: z.array(serviceRow.extend({ toolsDir: z.string(), since: z.string() })),
      }),
    },
  );
  registerLibraryTool(
    server,
    "tool_serve_stop",
    "Stop a tool service started by tool_serve: in-flight requests finish (up to 10 s), then it stops.",
    z.object({ id: z.string().describe("tool id") }),
    async (a) => {
      const s = services.get(a.id);
      if (!s)
        throw new DockpackError("SERVICE_NOT_RUNNING", `Tool '${a.id}' is not served by this MCP server.`, {
          hint: "tool_serve_status lists the running services.",
        });
      services.delete(a.id);
      await s.service.close(10);
      return { toolId: a.id, url: s.service.url, stopped: true };
    },
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      output: serviceRow.extend({ stopped: z.boolean() }),
    },
  );
}
