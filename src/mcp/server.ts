/**
 * The dockpack MCP server (Model Context Protocol, stdio transport, official SDK). Each domain's
 * tools are registered by one file in this folder (`env.ts`, `delta.ts`, …) listed below.
 * Tool plumbing (strict arguments, progress notifications, cancellation): `tool.ts`.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";

/** One domain's tool registration function. */
export type ToolRegistrar = (server: McpServer) => void;

/** Domain registrars, loaded when the server starts. Each domain adds its line. */
const REGISTRARS: (() => Promise<{ register: ToolRegistrar }>)[] = [
  () => import("./env.js"),
  () => import("./tools.js"),
  () => import("./delta.js"),
  () => import("./targets.js"),
  () => import("./features.js"),
];

/** Builds the server with every domain's tools registered. */
export async function createMcpServer(version: string): Promise<McpServer> {
  const server = new McpServer({ name: "dockpack", version });
  for (const load of REGISTRARS) (await load()).register(server);
  return server;
}

/**
 * Serves MCP over stdin/stdout until the client disconnects (stdin ends) or `signal` aborts (the
 * CLI aborts it on SIGINT/SIGTERM); then tool services started by `tool_serve` are stopped.
 * Logs must go to stderr only. In-flight tool calls see the abort through their own signals.
 */
export async function serveStdio(version: string, signal?: AbortSignal): Promise<void> {
  const server = await createMcpServer(version);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    server.server.onclose = () => resolve();
    process.stdin.once("end", () => resolve());
    if (signal?.aborted) resolve();
    signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  await server.connect(transport);
  await closed;
  await server.close().catch(() => {});
  await (await import("./tools.js")).stopAllServices();
}
