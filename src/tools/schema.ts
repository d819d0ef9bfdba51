/**
 * JSON Schema validation of tool inputs and outputs (ajv + ajv-formats). Schemas are compiled
 * once per tool and cached; errors are returned as short `path: message` strings.
 */
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { DockpackError } from "../core/errors.js";
import { MAX_JSON_DEPTH } from "../core/json.js";

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the module.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
addFormats(ajv);

const cache = new WeakMap<object, ValidateFunction>();

/**
 * Compiles a JSON Schema (cached by object identity).
 * @param label names the schema in errors, e.g. `tools/echo/tool.yaml: input_schema`
 * @throws DockpackError `TOOL_SCHEMA_INVALID` when the schema itself is not valid JSON Schema
 */
export function compileSchema(schema: Record<string, unknown>, label: string): ValidateFunction {
  const hit = cache.get(schema);
  if (hit) return hit;
  try {
    const fn = ajv.compile(schema);
    cache.set(schema, fn);
    return fn;
  } catch (e) {
    throw new DockpackError(
      "TOOL_SCHEMA_INVALID",
      `${label} is not a valid JSON Schema: ${(e as Error).message}`,
      {
        hint: "Fix the schema in tool.yaml.",
        cause: e,
      },
    );
  }
}

/**
 * Validates `value` against `schema`.
 * @returns the list of errors as `"/path: message"` strings; empty when valid
 */
export function schemaErrors(schema: Record<string, unknown>, value: unknown, label: string): string[] {
  const validate = compileSchema(schema, label);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => {
    const where = e.instancePath || "/";
    const extra =
      e.keyword === "additionalProperties"
        ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'`
        : e.keyword === "enum"
          ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")})`
          : "";
    return `${where}: ${e.message ?? e.keyword}${extra}`;
  });
}

/**
 * Whether `value` nests arrays/objects deeper than `max` levels (default {@link MAX_JSON_DEPTH}),
 * checked without recursion: a 100 000-deep value (from `tool invoke`, MCP or a tool's output)
 * cannot overflow the stack here, and once refused nothing else walks it.
 */
export function nestedDeeperThan(value: unknown, max = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
