/**
 * Tool manifests: the `tool.yaml` file that describes a tool (its schema and parser are in
 * manifest-schema.ts), loading, and discovery of every tool in a tools directory.
 *
 * A tool is a folder holding `tool.yaml` and the tool's own files. An `executable` tool is a
 * program that reads one JSON object (on stdin, or as an argument) and prints one JSON object on
 * stdout; a `workflow` is an ordered list of steps that call other tools.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { DockpackError } from "../core/errors.js";
import { cachedParse } from "../core/parse-cache.js";
import type { ToolManifest } from "./manifest-schema.js";

export type { ToolManifest } from "./manifest-schema.js";

/** The file name of a tool manifest inside a tool folder. */
export const MANIFEST_NAME = "tool.yaml";

/** Placeholders a tool's `command` may use. */
export const PLACEHOLDERS = ["{tool_dir}", "{input_json}", "{input_file}"] as const;

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
  // The same text always gives the same manifest; the label only appears in errors, never cached.
  const manifest = await cachedParse("tool-manifest", text, async () =>
    (await import("./manifest-schema.js")).parseManifest(text, manifestPath),
  );
  return { manifest, dir: abs, manifestPath };
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
        const { parseDocument } = await import("yaml");
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
