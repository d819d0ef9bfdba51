/**
 * Tool manifests: the `tool.yaml` file that describes a tool, its schema (zod), loading with
 * errors that name the file and the field, and discovery of every tool in a tools directory.
 *
 * A tool is a folder holding `tool.yaml` and the tool's own files. An `executable` tool is a
 * program that reads one JSON object (on stdin, or as an argument) and prints one JSON object on
 * stdout; a `workflow` is an ordered list of steps that call other tools.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseDocument } from "yaml";
import { DockpackError } from "../core/errors.js";
import * as z from "../core/zod-mini.js";

/** The file name of a tool manifest inside a tool folder. */
export const MANIFEST_NAME = "tool.yaml";

/** Placeholders a tool's `command` may use. */
export const PLACEHOLDERS = ["{tool_dir}", "{input_json}", "{input_file}"] as const;

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

/** The characters a tool id may hold, in the order ICU's root collation (`localeCompare`) sorts them. */
const ID_ORDER = "_-0123456789abcdefghijklmnopqrstuvwxyz";

/**
 * Compares two tool ids as `a.localeCompare(b)` does, without `localeCompare`: its first call
 * loads ICU's collator (~6 ms of CPU), most of what sorting costs `tool list` (issue 14 C18).
 * Ids hold only `[a-z0-9_-]` (the manifest schema checks it), which ICU orders `_`, `-`, digits,
 * letters, character by character, a prefix first; anything else falls back to `localeCompare`.
 * @returns negative when `a` sorts first, 0 when equal, positive when `b` does
 */
export function compareToolIds(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) continue;
    const x = ID_ORDER.indexOf(a[i]);
    const y = ID_ORDER.indexOf(b[i]);
    return x < 0 || y < 0 ? a.localeCompare(b) : x - y;
  }
  return a.length - b.length;
}

/** A parsed, validated `tool.yaml` (defaults applied). */
export type ToolManifest = z.infer<typeof ToolManifestSchema>;

/** A tool found on disk: its manifest plus where it lives. */
export interface Tool {
  manifest: ToolManifest;
  /** Absolute path of the tool folder (`{tool_dir}`). */
  dir: string;
  /** Absolute path of its `tool.yaml`. */
  manifestPath: string;
}

/** The short summary `tool list` prints for each tool. */
export interface ToolSummary {
  id: string;
  name: string;
  type: "executable" | "workflow" | "llm";
  version: string;
  description: string;
  dir: string;
}

/**
 * Resolves the tools directory: the given one, else `$DOCKPACK_TOOLS_DIR`, else `./tools`.
 * @returns an absolute path (not checked for existence)
 */
export function resolveToolsDir(toolsDir?: string): string {
  return resolve(toolsDir ?? process.env.DOCKPACK_TOOLS_DIR ?? "tools");
}

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

/**
 * Loads the tool in folder `dir`.
 * @throws DockpackError `TOOL_NOT_FOUND` when `dir/tool.yaml` is missing, `TOOL_MANIFEST_INVALID`
 */
export async function loadTool(dir: string): Promise<Tool> {
  const abs = resolve(dir);
  const manifestPath = join(abs, MANIFEST_NAME);
  let text: string;
  try {
    text = await readFile(manifestPath, "utf8");
  } catch (e) {
    throw new DockpackError("TOOL_NOT_FOUND", `No ${MANIFEST_NAME} in ${abs}.`, {
      hint: "A tool is a folder holding tool.yaml.",
      cause: e,
    });
  }
  return { manifest: parseManifest(text, manifestPath), dir: abs, manifestPath };
}

/** A tool folder whose `tool.yaml` could not be loaded (see {@link scanTools}). */
export interface BrokenTool {
  /** The tool folder. */
  dir: string;
  /** The `id:` written in the file, when it could be read; else the folder name. */
  id: string;
  /** Why it could not be loaded (`TOOL_MANIFEST_INVALID`, `TOOL_ID_DUPLICATE`). */
  error: DockpackError;
}

async function readToolsDir(toolsDir?: string): Promise<{ dir: string; names: string[] }> {
  const dir = resolveToolsDir(toolsDir);
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error("not a directory");
    return { dir, names: (await readdir(dir)).sort() };
  } catch (e) {
    throw new DockpackError(
      "TOOLS_DIR_MISSING",
      `The tools directory ${dir} does not exist or is not a directory.`,
      {
        hint: "Pass --tools-dir DIR (or set DOCKPACK_TOOLS_DIR) to a folder of tool folders.",
        cause: e,
      },
    );
  }
}

/**
 * Loads every tool of `toolsDir` that loads, and reports the others: one broken `tool.yaml` does
 * not hide the other tools (`tool list`, `tool invoke`, the service's workflow steps).
 * @returns the tools sorted by id, and the broken folders (invalid manifest, duplicate id)
 * @throws DockpackError `TOOLS_DIR_MISSING`
 */
export async function scanTools(toolsDir?: string): Promise<{ tools: Tool[]; broken: BrokenTool[] }> {
  const { dir, names } = await readToolsDir(toolsDir);
  const tools: Tool[] = [];
  const broken: BrokenTool[] = [];
  const seen = new Map<string, string>();
  for (const name of names) {
    const sub = join(dir, name);
    try {
      await stat(join(sub, MANIFEST_NAME));
    } catch {
      continue;
    }
    let tool: Tool;
    try {
      tool = await loadTool(sub);
    } catch (e) {
      if (!(e instanceof DockpackError)) throw e;
      let id = name;
      try {
        const raw = parseDocument(await readFile(join(sub, MANIFEST_NAME), "utf8")).toJS() as {
          id?: unknown;
        };
        if (typeof raw?.id === "string") id = raw.id;
      } catch {
        // keep the folder name
      }
      broken.push({ dir: sub, id, error: e });
      continue;
    }
    const prev = seen.get(tool.manifest.id);
    if (prev) {
      const error = new DockpackError(
        "TOOL_ID_DUPLICATE",
        `Tool id '${tool.manifest.id}' is used by ${prev} and ${sub}.`,
        { hint: "Give each tool a unique id." },
      );
      broken.push({ dir: sub, id: tool.manifest.id, error });
      continue;
    }
    seen.set(tool.manifest.id, sub);
    tools.push(tool);
  }
  tools.sort((a, b) => compareToolIds(a.manifest.id, b.manifest.id));
  return { tools, broken };
}

/**
 * Loads every tool in `toolsDir` (each sub-folder holding a `tool.yaml`), sorted by id; strict:
 * any broken manifest is an error (see {@link scanTools} for the tolerant form).
 * @throws DockpackError `TOOLS_DIR_MISSING`, `TOOL_MANIFEST_INVALID`, `TOOL_ID_DUPLICATE`
 */
export async function loadTools(toolsDir?: string): Promise<Tool[]> {
  const { tools, broken } = await scanTools(toolsDir);
  if (broken.length) throw broken[0].error;
  return tools;
}

/**
 * Finds tool `id` in `toolsDir`; other tools' broken manifests do not matter.
 * @throws DockpackError `TOOL_NOT_FOUND` listing the known ids, the tool's own
 *   `TOOL_MANIFEST_INVALID` / `TOOL_ID_DUPLICATE`, `TOOLS_DIR_MISSING`
 */
export async function findTool(id: string, toolsDir?: string): Promise<Tool> {
  const { tools, broken } = await scanTools(toolsDir);
  const own = broken.find((b) => b.id === id || b.dir.endsWith(`/${id}`));
  if (own?.error.code === "TOOL_ID_DUPLICATE") throw own.error;
  const hit = tools.find((t) => t.manifest.id === id);
  if (hit) return hit;
  if (own) throw own.error;
  const known = tools.map((t) => t.manifest.id);
  const brokenNote = broken.length
    ? ` Not loaded (broken tool.yaml): ${broken.map((b) => join(b.dir, MANIFEST_NAME)).join(", ")}.`
    : "";
  throw new DockpackError("TOOL_NOT_FOUND", `No tool '${id}' in ${resolveToolsDir(toolsDir)}.`, {
    hint:
      (known.length
        ? `Known tools: ${known.join(", ")}.`
        : "That directory holds no tools (folders with tool.yaml).") + brokenNote,
    details: { known },
  });
}

/** The summary row of a tool. */
export function summarize(tool: Tool): ToolSummary {
  const m = tool.manifest;
  return {
    id: m.id,
    name: m.name,
    type: m.type,
    version: m.version,
    description: m.description,
    dir: tool.dir,
  };
}

/**
 * Lists the tools of a directory (see {@link scanTools}): broken tool folders are reported, not fatal.
 * @returns `{ toolsDir, tools: ToolSummary[], broken }`
 */
export async function listTools(options: { toolsDir?: string } = {}): Promise<{
  toolsDir: string;
  tools: ToolSummary[];
  /** Tool folders whose tool.yaml could not be loaded: `{ dir, id, code, message }`. */
  broken: { dir: string; id: string; code: string; message: string }[];
}> {
  const { tools, broken } = await scanTools(options.toolsDir);
  return {
    toolsDir: resolveToolsDir(options.toolsDir),
    tools: tools.map(summarize),
    broken: broken.map((b) => ({ dir: b.dir, id: b.id, code: b.error.code, message: b.error.message })),
  };
}
