/**
 * Shared plumbing for MCP tools: every tool calls a library function directly and returns its
 * typed result as structured JSON; a failure becomes a tool error carrying `code`, `message` and
 * `hint` (MCP spec: tool errors are results with `isError: true`, not protocol errors).
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { z } from "zod";
import { toDockpackError } from "../core/errors.js";

/** The result shape an MCP tool callback returns. */
export interface ToolResult {
  [key: string]: unknown;
  content: { type: "text"; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

/**
 * Registers one tool whose input is validated by the zod object `schema` (the same schema the
 * library's options type is inferred from) and whose handler returns the library's result.
 */
export function registerLibraryTool<S extends z.ZodObject>(
  server: McpServer,
  name: string,
  description: string,
  schema: S,
  handler: (input: z.infer<S>) => Promise<unknown>,
): void {
  server.registerTool(name, { description, inputSchema: schema.shape }, (async (input: z.infer<S>) =>
    toolCall(() => handler(input))) as never);
}

/** Runs `fn` and wraps its value (or its error) as an MCP tool result. */
export async function toolCall(fn: () => Promise<unknown>): Promise<ToolResult> {
  try {
    const value = await fn();
    const structured = (
      value !== null && typeof value === "object" && !Array.isArray(value) ? value : { result: value }
    ) as Record<string, unknown>;
    return {
      content: [{ type: "text", text: JSON.stringify(value, null, 2) }],
      structuredContent: structured,
    };
  } catch (e) {
    const err = toDockpackError(e);
    return {
      isError: true,
      content: [{ type: "text", text: JSON.stringify({ error: err.toJSON() }, null, 2) }],
    };
  }
}
