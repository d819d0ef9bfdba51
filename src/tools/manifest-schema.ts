/**
 * The `tool.yaml` schema (zod/mini, see core/zod-mini.ts) and its parser (the `yaml` library):
 * what a valid manifest holds, its defaults, and errors that name the file and the field. Apart
 * from manifest.ts (discovery, listing) so that a run whose manifests come from the parse cache
 * (core/parse-cache.ts) loads neither the YAML parser nor zod (issue 14 C18).
 */
import { parseDocument } from "yaml";
import { DockpackError } from "../core/errors.js";
import * as z from "../core/zod-mini.js";

const jsonSchema = z
  .record(z.string(), z.unknown())
  .check(z.describe("a JSON Schema (draft 2020-12 or draft-07) describing a JSON object"));

const workflowStep = z.strictObject({
  id: z.string().check(z.regex(/^[a-z0-9][a-z0-9_-]*$/, "lower-case letters, digits, '-' or '_'")),
  tool: z.string().check(z.minLength(1)),
  /** What the step does (for people; the seed's workflows carry one per step). */
  description: z.optional(z.string()),
  /** Step input: literal values; strings `$input.<path>` / `$steps.<id>.<path>` are mapped. */
  input: z._default(z.record(z.string(), z.unknown()), {}),
  /** The seed's recovery step: `{retry: true, max_retries: 1}` runs a failing step again. */
  on_error: z.optional(
    z.strictObject({
      retry: z._default(z.boolean(), false),
      max_retries: z._default(z.number().check(z.int(), z.gte(0), z.lte(10)), 1),
    }),
  ),
});

/**
 * The zod schema of `tool.yaml` (zod/mini, see core/zod-mini.ts: `tool list` builds it on every
 * run). Unknown keys are errors (they are usually typos).
 */
export const ToolManifestSchema = z
  .strictObject({
    id: z
      .string()
      .check(z.regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "lower-case letters, digits, '-' or '_', at most 63")),
    name: z.string().check(z.minLength(1)),
    description: z._default(z.string(), ""),
    version: z._default(z.string().check(z.minLength(1)), "0.0.0"),
    type: z.enum(["executable", "workflow", "llm"]),
    command: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
    /** How the input reaches the program: `stdin` (default), or `argument` ({input_json}/{input_file} in command). */
    input_mode: z._default(z.enum(["stdin", "argument"]), "stdin"),
    input_schema: z._default(jsonSchema, { type: "object" }),
    output_schema: z._default(jsonSchema, { type: "object" }),
    timeout_seconds: z._default(z.number().check(z.positive(), z.lte(86_400)), 30),
    env: z._default(
      z.strictObject({
        required: z._default(z.array(z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/))), []),
        set: z._default(z.record(z.string(), z.string()), {}),
      }),
      { required: [], set: {} },
    ),
    dependencies: z._default(
      z.strictObject({
        npm: z._default(z.array(z.string()), []),
        pip: z._default(z.array(z.string()), []),
        apt: z._default(z.array(z.string()), []),
      }),
      { npm: [], pip: [], apt: [] },
    ),
    /** A valid input, used by generated test.sh and docs; default: built from input_schema. */
    example_input: z.optional(z.record(z.string(), z.unknown())),
    /** The string property of the input that `--prompt TEXT` fills; default: the first string property. */
    prompt_field: z.optional(z.string()),
    steps: z.optional(z.array(workflowStep).check(z.minLength(1))),
    /** An `llm` tool: the prompt template and model settings (env LLM_* override provider, model, base_url). */
    llm: z.optional(
      z.strictObject({
        /** The user message; `{{field}}` / `{{input_json}}` are replaced by input values. */
        prompt: z.string().check(z.minLength(1)),
        /** Extra system instructions (the output-schema instruction is always added). */
        system: z.optional(z.string()),
        provider: z.optional(z.enum(["openai", "anthropic", "ollama"])),
        model: z.optional(z.string().check(z.minLength(1))),
        base_url: z.optional(z.string().check(z.url())),
        temperature: z.optional(z.number().check(z.gte(0), z.lte(2))),
        max_tokens: z.optional(z.number().check(z.int(), z.positive(), z.lte(1_000_000))),
        /** Stream the answer (the SDKs' streaming APIs); the result is the same. */
        stream: z._default(z.boolean(), false),
      }),
    ),
    /** Workflow result: a mapping like a step input; default: the last step's output. */
    output: z.optional(z.unknown()),
  })
  .check(
    z.superRefine((m, ctx) => {
      if (m.type === "executable" && !m.command)
        ctx.addIssue({ code: "custom", path: ["command"], message: "an executable tool needs a command" });
      if (m.type === "workflow" && !m.steps)
        ctx.addIssue({ code: "custom", path: ["steps"], message: "a workflow needs steps" });
      if (m.type === "workflow" && m.command)
        ctx.addIssue({ code: "custom", path: ["command"], message: "a workflow has steps, not a command" });
      if (m.type === "llm" && !m.llm)
        ctx.addIssue({ code: "custom", path: ["llm"], message: "an llm tool needs llm: {prompt: …}" });
      if (m.type === "llm" && (m.command || m.steps))
        ctx.addIssue({
          code: "custom",
          path: ["type"],
          message: "an llm tool has llm.prompt, not a command or steps",
        });
      if (m.type !== "llm" && m.llm)
        ctx.addIssue({ code: "custom", path: ["llm"], message: "llm settings need type: llm" });
      if (m.command && m.input_mode === "argument" && !m.command.some((a) => /\{input_(json|file)\}/.test(a)))
        ctx.addIssue({
          code: "custom",
          path: ["command"],
          message: "input_mode 'argument' needs {input_json} or {input_file} in the command",
        });
      const ids = new Set<string>();
      for (const [i, s] of (m.steps ?? []).entries()) {
        if (ids.has(s.id))
          ctx.addIssue({ code: "custom", path: ["steps", i, "id"], message: `duplicate step id '${s.id}'` });
        ids.add(s.id);
      }
    }),
  );

/** A parsed, validated `tool.yaml` (defaults applied). */
export type ToolManifest = z.infer<typeof ToolManifestSchema>;

function pathText(path: readonly PropertyKey[]): string {
  return path.length === 0 ? "(top level)" : path.map((p) => String(p)).join(".");
}

/**
 * Parses and validates the text of a `tool.yaml`.
 * @param text YAML text
 * @param label the file name used in messages
 * @throws DockpackError `TOOL_MANIFEST_INVALID` naming the file and each bad field (`details.issues`)
 */
export function parseManifest(text: string, label: string): ToolManifest {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new DockpackError("TOOL_MANIFEST_INVALID", `${label}: not valid YAML: ${doc.errors[0].message}`, {
      hint: "Fix the YAML syntax of the tool manifest.",
    });
  }
  const data = doc.toJS();
  const parsed = ToolManifestSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${pathText(i.path)}: ${i.message}`);
    throw new DockpackError("TOOL_MANIFEST_INVALID", `${label}: ${issues.join("; ")}`, {
      hint: "Fix these fields of the tool manifest (see docs/commands/tool.md for the tool.yaml format).",
      details: { file: label, issues },
    });
  }
  return parsed.data;
}
