/**
 * Invoking a tool: validate the input against `input_schema`, run it (an executable, or a
 * workflow's steps in order), validate the output against `output_schema`.
 */
import { DockpackError } from "../core/errors.js";
import { MAX_JSON_DEPTH } from "../core/json.js";
import { runLlm } from "./llm.js";
import { findTool, scanTools, type Tool } from "./manifest.js";
import { runExecutable } from "./runner.js";
import { nestedDeeperThan, schemaErrors } from "./schema.js";

/** Looks up another tool by id (workflow steps). */
export type ToolResolver = (id: string) => Promise<Tool>;

/** Options of {@link invokeTool}. */
export interface InvokeOptions {
  /** Tool id, looked up in `toolsDir` (or pass `tool`). */
  id?: string;
  /** An already loaded tool. */
  tool?: Tool;
  /** Folder of tool folders (default `$DOCKPACK_TOOLS_DIR` or `./tools`). */
  toolsDir?: string;
  /** The input object. */
  input: unknown;
  /** Overrides the tool's `timeout_seconds` (seconds; for a workflow, per step). */
  timeoutSeconds?: number;
  /** Resolves workflow steps' tools; default: look them up in `toolsDir`. */
  resolve?: ToolResolver;
  /** Aborts the running program. */
  signal?: AbortSignal;
  /** Receives each executable run's stderr (tool id, text), e.g. for LOG_LEVEL=debug. */
  onStderr?: (toolId: string, stderr: string) => void;
}

/** Result of {@link invokeTool}. */
export interface InvokeResult {
  tool_id: string;
  /** The tool's output object (valid against `output_schema`). */
  result: Record<string, unknown>;
  /** Wall time, in seconds. */
  duration_seconds: number;
  /** For a workflow: each step's output by step id. */
  steps?: Record<string, Record<string, unknown>>;
}

/**
 * Checks `input` against the tool's `input_schema`.
 * @throws DockpackError `TOOL_INPUT_INVALID` (usage error) with `details.errors` (`"/path: message"`)
 */
export function validateInput(tool: Tool, input: unknown): Record<string, unknown> {
  // Refused before anything walks it recursively (schema checks, JSON.stringify, mappings).
  const errors = nestedDeeperThan(input)
    ? [`/: nested deeper than ${MAX_JSON_DEPTH} levels`]
    : schemaErrors(tool.manifest.input_schema, input, `${tool.manifestPath}: input_schema`);
  if ((input === null || typeof input !== "object" || Array.isArray(input)) && errors.length === 0)
    errors.push("/: must be a JSON object");
  if (errors.length)
    throw new DockpackError(
      "TOOL_INPUT_INVALID",
      `Input for tool '${tool.manifest.id}' does not match its input_schema: ${errors.join("; ")}`,
      {
        hint: `See input_schema in ${tool.manifestPath} (or GET /api/info of its service).`,
        usage: true,
        details: { errors },
      },
    );
  return input as Record<string, unknown>;
}

function lookup(root: unknown, path: string[], expr: string, where: string): unknown {
  let cur = root;
  for (const key of path) {
    if (cur === null || typeof cur !== "object" || !(key in (cur as object)))
      throw new DockpackError(
        "WORKFLOW_MAPPING_INVALID",
        `${where}: '${expr}' does not resolve (no '${key}').`,
        {
          hint: "Map from $input.<field> or from an earlier step: $steps.<id>.<field>.",
        },
      );
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/**
 * Resolves a workflow mapping: strings `$input`, `$input.a.b`, `$steps.<id>`, `$steps.<id>.a`
 * are replaced by those values; objects and arrays are mapped recursively; other values are kept.
 * @throws DockpackError `WORKFLOW_MAPPING_INVALID` naming the expression
 */
export function resolveMapping(
  value: unknown,
  scope: { input: unknown; steps: Record<string, unknown> },
  where: string,
): unknown {
  if (typeof value === "string" && /^\$(input|steps)(\.|$)/.test(value)) {
    const [head, ...rest] = value.slice(1).split(".");
    if (head === "input") return lookup(scope.input, rest, value, where);
    const [step, ...path] = rest;
    if (!step || !(step in scope.steps))
      throw new DockpackError("WORKFLOW_MAPPING_INVALID", `${where}: '${value}' names no earlier step.`, {
        hint: "A step can only use the outputs of the steps before it.",
      });
    return lookup(scope.steps[step], path, value, where);
  }
  if (Array.isArray(value)) return value.map((v) => resolveMapping(v, scope, where));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveMapping(v, scope, where)]));
  return value;
}

async function execute(
  tool: Tool,
  input: Record<string, unknown>,
  options: InvokeOptions,
  resolve: ToolResolver,
  depth: number,
): Promise<{ result: Record<string, unknown>; steps?: Record<string, Record<string, unknown>> }> {
  const m = tool.manifest;
  if (m.type === "executable") {
    const out = await runExecutable(tool, input, {
      timeoutSeconds: options.timeoutSeconds,
      signal: options.signal,
    });
    options.onStderr?.(m.id, out.stderr);
    return { result: out.output };
  }
  if (m.type === "llm")
    return {
      result: await runLlm(tool, input, { timeoutSeconds: options.timeoutSeconds, signal: options.signal }),
    };
  if (depth > 8)
    throw new DockpackError(
      "WORKFLOW_TOO_DEEP",
      `Workflow '${m.id}' nests workflows more than 8 deep (a cycle?).`,
    );
  const steps: Record<string, Record<string, unknown>> = {};
  for (const step of m.steps ?? []) {
    const where = `${tool.manifestPath}: steps.${step.id}`;
    const sub = await resolve(step.tool);
    try {
      const stepInput = validateInput(sub, resolveMapping(step.input, { input, steps }, where));
      // on_error: {retry: true, max_retries: N} runs a failing step up to N more times; bad
      // input and a canceled request are not retried.
      const retries = step.on_error?.retry ? step.on_error.max_retries : 0;
      for (let attempt = 0; ; attempt++) {
        try {
          const out = await execute(sub, stepInput, options, resolve, depth + 1);
          steps[step.id] = checkOutput(sub, out.result);
          break;
        } catch (e) {
          const code = e instanceof DockpackError ? e.code : "";
          if (
            attempt >= retries ||
            options.signal?.aborted ||
            /INPUT_INVALID|MAPPING_INVALID|CANCELED/.test(code)
          )
            throw e;
        }
      }
    } catch (e) {
      if (e instanceof DockpackError && !e.message.includes(`workflow '${m.id}'`))
        // A step's bad input is the workflow's fault, not the caller's: not a usage error.
        throw new DockpackError(
          e.code === "TOOL_INPUT_INVALID" ? "WORKFLOW_STEP_INPUT_INVALID" : e.code,
          `${e.message} (step '${step.id}' of workflow '${m.id}')`,
          {
            hint: e.hint,
            cause: e,
            details: { ...e.details, step: step.id },
          },
        );
      throw e;
    }
  }
  const last = m.steps?.[m.steps.length - 1]?.id ?? "";
  const mapped =
    m.output === undefined
      ? steps[last]
      : resolveMapping(m.output, { input, steps }, `${tool.manifestPath}: output`);
  if (mapped === null || typeof mapped !== "object" || Array.isArray(mapped))
    throw new DockpackError(
      "WORKFLOW_MAPPING_INVALID",
      `${tool.manifestPath}: output does not map to a JSON object.`,
    );
  return { result: mapped as Record<string, unknown>, steps };
}

/**
 * Checks a tool's output against its `output_schema`.
 * @throws DockpackError `TOOL_OUTPUT_INVALID` with `details.errors` and `details.output`
 */
export function checkOutput(tool: Tool, output: Record<string, unknown>): Record<string, unknown> {
  const errors = nestedDeeperThan(output)
    ? [`/: nested deeper than ${MAX_JSON_DEPTH} levels`]
    : schemaErrors(tool.manifest.output_schema, output, `${tool.manifestPath}: output_schema`);
  if (errors.length)
    throw new DockpackError(
      "TOOL_OUTPUT_INVALID",
      `Output of tool '${tool.manifest.id}' does not match its output_schema: ${errors.join("; ")}`,
      { hint: "Fix the tool or its output_schema.", details: { errors, output } },
    );
  return output;
}

/** A resolver over the tools of `toolsDir`, loaded once. */
export function directoryResolver(toolsDir?: string): ToolResolver {
  let all: Promise<Tool[]> | undefined;
  return async (id) => {
    all ??= scanTools(toolsDir).then((s) => s.tools);
    const hit = (await all).find((t) => t.manifest.id === id);
    return hit ?? findTool(id, toolsDir);
  };
}

/**
 * Invokes a tool: validate input, run (with the timeout), validate output.
 * @throws DockpackError `TOOL_NOT_FOUND`, `TOOL_INPUT_INVALID` (usage), `TOOL_FAILED`,
 *   `TOOL_TIMEOUT`, `TOOL_OUTPUT_NOT_JSON`, `TOOL_OUTPUT_INVALID`, `WORKFLOW_MAPPING_INVALID`
 */
export async function invokeTool(options: InvokeOptions): Promise<InvokeResult> {
  const resolve = options.resolve ?? directoryResolver(options.toolsDir);
  let tool = options.tool;
  if (!tool) {
    if (!options.id) throw new DockpackError("TOOL_ID_MISSING", "No tool id given.", { usage: true });
    tool = await resolve(options.id);
  }
  const input = validateInput(tool, options.input);
  const started = performance.now();
  const out = await execute(tool, input, options, resolve, 0);
  const result = checkOutput(tool, out.result);
  return {
    tool_id: tool.manifest.id,
    result,
    duration_seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    ...(out.steps ? { steps: out.steps } : {}),
  };
}
