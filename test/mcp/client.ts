/**
 * Test harness: an MCP client (the official SDK's Client over StdioClientTransport) connected to
 * a real `dockpack mcp` process spawned as `node --import tsx src/cli/main.ts mcp`. Other domains
 * reuse it for their tool tests:
 *
 * ```ts
 * const mcp = await connectMcp({ cwd });
 * const res = await mcp.call("list_packages", { packageDir: "packages" });
 * await mcp.close();
 * ```
 */
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");

/** A tool call's result as the tests see it. */
export interface CallResult {
  isError: boolean;
  /** structuredContent, or the parsed JSON text content. */
  value: Record<string, unknown>;
  text: string;
}

/** A connected client. */
export interface McpTestClient {
  client: Client;
  /** Names of the tools the server lists. */
  toolNames(): Promise<string[]>;
  /** Calls a tool and parses its JSON result. */
  call(name: string, args: Record<string, unknown>): Promise<CallResult>;
  /** Server stderr collected so far. */
  stderr(): string;
  close(): Promise<void>;
}

/** Spawns `dockpack mcp` in `cwd` and connects a client to it over stdio. */
export async function connectMcp(
  options: {
    cwd?: string;
    env?: Record<string, string> /** a built entry instead of src through tsx */;
    main?: string;
  } = {},
): Promise<McpTestClient> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: options.main ? [options.main, "mcp"] : ["--import", TSX, MAIN, "mcp"],
    cwd: options.cwd,
    env: { ...(process.env as Record<string, string>), NO_COLOR: "1", ...options.env },
    stderr: "pipe",
  });
  let err = "";
  transport.stderr?.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const client = new Client({ name: "dockpack-tests", version: "0.0.0" });
  await client.connect(transport);
  return {
    client,
    async toolNames() {
      return (await client.listTools()).tools.map((t) => t.name).sort();
    },
    async call(name, args) {
      const res = (await client.callTool({ name, arguments: args })) as {
        isError?: boolean;
        structuredContent?: Record<string, unknown>;
        content: { type: string; text?: string }[];
      };
      const text = res.content.map((c) => c.text ?? "").join("");
      let value = res.structuredContent;
      if (!value) {
        try {
          value = JSON.parse(text) as Record<string, unknown>;
        } catch {
          value = {};
        }
      }
      return { isError: Boolean(res.isError), value, text };
    },
    stderr: () => err,
    async close() {
      await client.close();
    },
  };
}
