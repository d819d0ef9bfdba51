/**
 * Shared plumbing for MCP tools: every tool calls a library function directly and returns its
 * typed result as structured JSON; a failure becomes a tool error carrying `code`, `message` and
 * `hint` (MCP spec: tool errors are results with `isError: true`, not protocol errors).
 *
 * - Arguments: one naming style, camelCase (the library's option names). The input schema is
 *   strict: an unknown key is refused with an error naming it and the closest expected name.
 * - Progress: when the client sends a progress token, the handler's Reporter turns every progress
 *   bar the library draws in the CLI into `notifications/progress` (at most ~4 per second per bar;
 *   `progress` grows monotonically across bars; `message` names the bar).
 * - Cancellation: the request's abort signal (`notifications/cancelled`, or the server closing)
 *   becomes the operation's ambient signal (core/abort.ts): it stops and rolls back as on Ctrl-C.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { camelKeys } from "../cli/json-keys.js";
import { withSignal } from "../core/abort.js";
import { toDockpackError } from "../core/errors.js";
import { type Progress, type Reporter, silentReporter } from "../core/output.js";

/** The result shape an MCP tool callback returns. */
export interface ToolResult {
  [key: string]: unknown;
  content: { type: "text"; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

/** What the SDK passes a tool callback besides its arguments (the parts used here). */
interface RequestExtra {
  signal: AbortSignal;
  _meta?: { progressToken?: string | number };
  sendNotification: (n: {
    method: "notifications/progress";
    params: { progressToken: string | number; progress: number; total?: number; message?: string };
  }) => Promise<void>;
}

/** Optional parts of a tool's registration. */
export interface ToolExtras {
  /** MCP tool annotations: `readOnlyHint`, `destructiveHint`, `idempotentHint`, `openWorldHint`. */
  annotations?: ToolAnnotations;
  /**
   * zod object describing `structuredContent` (advertised as `outputSchema`, checked by the SDK);
   * default: an object (every tool returns its result as structured content).
   */
  output?: z.ZodObject;
  /** Human title. */
  title?: string;
}

/** Edit distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const x = a.toLowerCase().replace(/[_-]/g, "");
  const y = b.toLowerCase().replace(/[_-]/g, "");
  const d = Array.from({ length: x.length + 1 }, (_, i) => [i, ...Array<number>(y.length).fill(0)]);
  for (let j = 1; j <= y.length; j++) d[0][j] = j;
  for (let i = 1; i <= x.length; i++)
    for (let j = 1; j <= y.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
  return d[x.length][y.length];
}

/** "unknown argument 'output_folder' (expected one of: …; did you mean 'outputDir'?)" */
export function unknownKeysMessage(keys: string[], known: string[]): string {
  const parts = keys.map((k) => {
    const best = [...known].sort((a, b) => distance(k, a) - distance(k, b))[0];
    const near = best !== undefined && distance(k, best) <= Math.max(2, Math.floor(best.length / 2));
    return `'${k}'${near ? ` (did you mean '${best}'?)` : ""}`;
  });
  return `unknown argument${keys.length > 1 ? "s" : ""} ${parts.join(", ")}; the arguments are: ${known.join(", ")}`;
}

/** The strict version of `schema`: unknown keys are refused with {@link unknownKeysMessage}. */
export function strictInput<S extends z.ZodObject>(schema: S): z.ZodObject {
  const known = Object.keys(schema.shape);
  return z.strictObject(schema.shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys" ? unknownKeysMessage(iss.keys as string[], known) : undefined,
  });
}

/**
 * A Reporter for one MCP request: logs are dropped (stdout carries the protocol), progress bars
 * become `notifications/progress` when the client asked for them (a progress token).
 */
export function mcpReporter(extra: RequestExtra | undefined): Reporter {
  const token = extra?._meta?.progressToken;
  const base = silentReporter();
  if (token === undefined || !extra) return base;
  let completed = 0; // sum of finished bars, so `progress` never goes back
  let last = -1;
  const send = (progress: number, total: number | undefined, message: string) => {
    if (progress <= last) return;
    last = progress;
    void extra
      .sendNotification({
        method: "notifications/progress",
        params: { progressToken: token, progress, ...(total !== undefined ? { total } : {}), message },
      })
      .catch(() => {});
  };
  return {
    ...base,
    progress(label: string, total?: number, unit: "bytes" | "items" = "bytes"): Progress {
      let done = 0;
      let tot = total;
      let sentAt = 0;
      let stopped = false;
      const offset = completed;
      const emit = (force: boolean) => {
        const now = Date.now();
        if (!force && now - sentAt < 250) return;
        sentAt = now;
        const what = tot ? `${done}/${tot}` : `${done}`;
        send(offset + done, tot ? offset + tot : undefined, `${label}: ${what} ${unit}`);
      };
      emit(true);
      return {
        update(n) {
          done = n;
          emit(false);
        },
        increment(n) {
          done += n;
          emit(false);
        },
        setTotal(t) {
          tot = t;
        },
        stop() {
          if (stopped) return;
          stopped = true;
          emit(true);
          completed = offset + Math.max(done, tot ?? 0);
        },
      };
    },
  };
}

/**
 * Registers one tool whose input is validated by the zod object `schema` (made strict: see
 * {@link strictInput}) and whose handler returns the library's result. The handler receives a
 * Reporter sending progress notifications, and runs with the request's abort signal ambient.
 */
export function registerLibraryTool<S extends z.ZodObject>(
  server: McpServer,
  name: string,
  description: string,
  schema: S,
  handler: (input: z.infer<S>, reporter: Reporter) => Promise<unknown>,
  extras: ToolExtras = {},
): void {
  server.registerTool(
    name,
    {
      description,
      inputSchema: strictInput(schema),
      ...(extras.title ? { title: extras.title } : {}),
      ...(extras.annotations ? { annotations: extras.annotations } : {}),
      outputSchema: extras.output ?? z.looseObject({}),
    },
    (async (input: z.infer<S>, extra: RequestExtra) =>
      toolCall(
        () => withSignal(extra?.signal, () => handler(input, mcpReporter(extra))),
        Object.keys(schema.shape),
      )) as never,
  );
}

/** CLI commands named in hints, and the MCP tool that does the same. */
const COMMAND_TOOLS: [RegExp, string][] = [
  [/dockpack env up\b/g, "env_up"],
  [/dockpack env down\b/g, "env_down"],
  [/dockpack env (remove|rm)\b/g, "env_remove"],
  [/dockpack env create\b/g, "env_create"],
  [/dockpack env (list|ls)\b/g, "env_list"],
  [/dockpack packages export\b/g, "export_package"],
  [/dockpack packages import\b/g, "import_package"],
  [/dockpack packages validate\b/g, "validate_package"],
];

/**
 * Rewrites a hint written for the CLI so that it names MCP arguments and tools: `--output-dir` /
 * `-f/--force` become `'outputDir'` / `'force'` when the tool has that argument, and
 * `dockpack env up …` becomes the `env_up` tool.
 */
export function hintForMcp(hint: string, known: string[]): string {
  let out = hint.replace(/(?:\B-[a-zA-Z]\/)?--([a-z][a-z0-9-]*)/g, (all, flag: string) => {
    const camel = flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (known.includes(camel)) return `argument '${camel}'`;
    if (flag.startsWith("no-")) {
      const positive = flag.slice(3).replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      if (known.includes(positive)) return `argument '${positive}: false'`;
    }
    return all;
  });
  for (const [re, tool] of COMMAND_TOOLS) out = out.replace(re, `the ${tool} tool with branch`);
  return out;
}

/**
 * Runs `fn` and wraps its value (or its error) as an MCP tool result. `known`: the tool's
 * argument names, used to rewrite CLI flags in error hints ({@link hintForMcp}).
 */
export async function toolCall(fn: () => Promise<unknown>, known: string[] = []): Promise<ToolResult> {
  try {
    const value = camelKeys(await fn());
    const text = JSON.stringify(value, null, 2);
    // structuredContent is the JSON document of the text content: what a client over stdio sees
    // (no undefined-valued keys, no class instances), so it validates against the outputSchema
    // the same way on every transport.
    const json: unknown = text === undefined ? null : JSON.parse(text);
    const structured = (
      json !== null && typeof json === "object" && !Array.isArray(json) ? json : { result: json }
    ) as Record<string, unknown>;
    return {
      content: [{ type: "text", text: text ?? "null" }],
      structuredContent: structured,
    };
  } catch (e) {
    const json = toDockpackError(e).toJSON();
    if (json.hint) json.hint = hintForMcp(json.hint, known);
    return {
      isError: true,
      content: [{ type: "text", text: JSON.stringify({ error: json }, null, 2) }],
    };
  }
}
