/**
 * The dockpack MCP server (Model Context Protocol, stdio transport, official SDK). Each domain's
 * tools are registered by one file in this folder (`env.ts`, `delta.ts`, …) listed below.
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

/** Serves MCP over stdin/stdout until the client disconnects. Logs must go to stderr only. */
export async function serveStdio(version: string): Promise<void> {
  const server = await createMcpServer(version);
  await server.connect(new StdioServerTransport());
}
