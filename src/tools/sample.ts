/**
 * A sample input for a tool: `example_input` from tool.yaml, else one built from the required
 * properties of `input_schema` (default, const, first enum or example, else a value of the type).
 */
import type { Tool } from "./manifest.js";

type Schema = Record<string, unknown>;

function sampleOf(schema: Schema, depth: number): unknown {
  if ("default" in schema) return schema.default;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "string":
      return "hello world";
    case "integer":
    case "number":
      return typeof schema.minimum === "number" ? Math.max(schema.minimum, 1) : 1;
    case "boolean":
      return true;
    case "array":
      return [];
    case "null":
      return null;
    default: {
      if (depth > 4) return {};
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
      return Object.fromEntries(
        required.filter((k) => props[k]).map((k) => [k, sampleOf(props[k], depth + 1)]),
      );
    }
  }
}

/** A sample input object for `tool` (not guaranteed valid for every schema; see `example_input`). */
export function sampleInput(tool: Tool): Record<string, unknown> {
  if (tool.manifest.example_input) return tool.manifest.example_input;
  const v = sampleOf(tool.manifest.input_schema, 0);
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
