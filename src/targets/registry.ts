/**
 * Reading and writing the target registry (`docs/packaging/registry.json`).
 *
 * Problems are reported with the JSON path of the offending value (`$.targets[1].id`) and its
 * line, so a user can jump to it. Saving keeps every field it does not know, keeps the file's
 * indentation style (2 spaces) and is atomic (temp file + rename).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { findNodeAtLocation, type ParseError, parse, parseTree, printParseErrorCode } from "jsonc-parser";
import { DockpackError } from "../core/errors.js";
import { atomicWriteFile } from "../core/fs.js";
import { jsonPath, REGISTRY_PATH, type Registry, RegistrySchema } from "./schema.js";

/** One problem found in the registry file. */
export interface RegistryProblem {
  /** JSON path of the offending value, e.g. `$.targets[1].id`; `$` for the whole document. */
  path: string;
  /** 1-based line in the file, when known. */
  line?: number;
  /** What is wrong. */
  message: string;
}

/** Result of {@link readRegistry}: the parsed registry, or the problems that stop it parsing. */
export interface RegistryReadResult {
  /** Absolute path of registry.json. */
  file: string;
  /** False when the file does not exist. */
  exists: boolean;
  /** The validated registry, when it parsed and matched the schema. */
  registry?: Registry;
  /** Syntax and schema problems (empty when `registry` is set). */
  problems: RegistryProblem[];
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Parses and validates registry text. Syntax errors get path `$` and their line; schema errors
 * get the JSON path of the value and its line (RFC 8259 JSON; no comments, no trailing commas).
 */
export function parseRegistryText(text: string): { registry?: Registry; problems: RegistryProblem[] } {
  const errors: ParseError[] = [];
  const value = parse(text, errors, { disallowComments: true, allowTrailingComma: false });
  if (errors.length > 0) {
    return {
      problems: errors.map((e) => ({
        path: "$",
        line: lineOf(text, e.offset),
        message: `invalid JSON: ${printParseErrorCode(e.error)}`,
      })),
    };
  }
  const res = RegistrySchema.safeParse(value);
  if (res.success) return { registry: res.data, problems: [] };
  const tree = parseTree(text);
  return {
    problems: res.error.issues.map((issue) => {
      const path = issue.path as (string | number)[];
      let node = tree ? findNodeAtLocation(tree, path) : undefined;
      for (let n = path.length - 1; !node && n >= 0 && tree; n--)
        node = findNodeAtLocation(tree, path.slice(0, n));
      return {
        path: jsonPath(path),
        ...(node ? { line: lineOf(text, node.offset) } : {}),
        message: issue.message,
      };
    }),
  };
}

/** Reads `docs/packaging/registry.json` under `root` without throwing on bad content. */
export async function readRegistry(root: string): Promise<RegistryReadResult> {
  const file = join(root, REGISTRY_PATH);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { file, exists: false, problems: [] };
    throw err;
  }
  return { file, exists: true, ...parseRegistryText(text) };
}

/** Formats problems as `path (line N): message` lines. */
export function formatProblems(problems: RegistryProblem[]): string {
  return problems.map((p) => `${p.path}${p.line ? ` (line ${p.line})` : ""}: ${p.message}`).join("\n");
}

/**
 * Loads and validates the registry under `root`.
 * Throws `TARGETS_NOT_INITIALIZED` when the file is missing and `REGISTRY_INVALID` (naming the
 * file, each JSON path and line) when it does not parse or match the schema.
 */
export async function loadRegistry(root: string): Promise<Registry> {
  const res = await readRegistry(root);
  if (!res.exists) {
    throw new DockpackError("TARGETS_NOT_INITIALIZED", `No target registry at ${res.file}.`, {
      hint: "Run 'dockpack targets init' in the project root (or pass --root).",
    });
  }
  if (!res.registry) {
    throw new DockpackError(
      "REGISTRY_INVALID",
      `${res.file} is not a valid target registry:\n${formatProblems(res.problems)}`,
      {
        hint: "Fix the values at the JSON paths above, then run 'dockpack targets verify'.",
        details: { file: res.file, problems: res.problems },
      },
    );
  }
  return res.registry;
}

/** Serialises a registry as written to disk (2-space JSON, trailing newline). */
export function registryText(registry: Registry): string {
  return `${JSON.stringify(registry, null, 2)}\n`;
}

/** Writes the registry under `root` atomically. Unknown fields in `registry` are written back as they are. */
export async function saveRegistry(root: string, registry: Registry): Promise<void> {
  await atomicWriteFile(join(root, REGISTRY_PATH), registryText(registry));
}
