/**
 * `--prompt TEXT`: wraps free text as a tool's input object, using the string property the
 * manifest names in `prompt_field`, else the first of text/prompt/input/query/message, else the
 * first string property of `input_schema`.
 */
import { DockpackError } from "../core/errors.js";
import type { Tool } from "./manifest.js";

/**
 * Builds `{ <field>: text }` for `tool`.
 * @throws DockpackError `TOOL_NO_TEXT_INPUT` (usage) when the input schema has no string property
 */
export function promptInput(tool: Tool, text: string): Record<string, unknown> {
  const m = tool.manifest;
  const props = (m.input_schema.properties ?? {}) as Record<string, { type?: unknown }>;
  const strings = Object.keys(props).filter((k) => props[k]?.type === "string");
  const field =
    m.prompt_field ??
    ["text", "prompt", "input", "query", "message"].find((k) => strings.includes(k)) ??
    strings[0];
  if (!field)
    throw new DockpackError(
      "TOOL_NO_TEXT_INPUT",
      `Tool '${m.id}' has no string input property for --prompt.`,
      {
        hint: "Use --input JSON, or set prompt_field in tool.yaml.",
        usage: true,
      },
    );
  return { [field]: text };
}
