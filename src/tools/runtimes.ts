/**
 * Which runtimes and programs a tool needs: the closure of a workflow's tools, the program of each
 * executable tool (`node` is the node running the service), whether a program is on PATH, and
 * the runtime family (`node`, `python`, other) that decides a compiled image's base.
 */
import { accessSync, constants } from "node:fs";
import { basename, delimiter, isAbsolute, join } from "node:path";
import type { ToolResolver } from "./invoke.js";
import { compareToolIds, type Tool } from "./manifest.js";

/** The runtime family of a program: decides the default base image of `tool compile`. */
export type RuntimeFamily = "node" | "python" | "other";

/**
 * Collects `tool` and, for workflows, every tool its steps call (recursively), sorted by id.
 * @throws the resolver's errors (`TOOL_NOT_FOUND`)
 */
export async function closureWith(tool: Tool, resolve: ToolResolver): Promise<Tool[]> {
  const found = new Map<string, Tool>([[tool.manifest.id, tool]]);
  const queue = [tool];
  while (queue.length) {
    const t = queue.shift() as Tool;
    for (const step of t.manifest.steps ?? []) {
      if (found.has(step.tool)) continue;
      const sub = await resolve(step.tool);
      found.set(step.tool, sub);
      queue.push(sub);
    }
  }
  return [...found.values()].sort((a, b) => compareToolIds(a.manifest.id, b.manifest.id));
}

/** The family of program `program` (`python3.12` → python, `node` → node). */
export function familyOf(program: string): RuntimeFamily {
  const name = basename(program);
  if (name === "node" || name === "nodejs") return "node";
  if (/^python(\d+(\.\d+)?)?$/.test(name)) return "python";
  return "other";
}

/**
 * The programs the executable tools of `tools` start (first word of each command), sorted,
 * without `node` (the service's own runtime). Placeholders like `{tool_dir}/run.sh` are kept as given.
 */
export function programsOf(tools: Tool[]): string[] {
  const set = new Set<string>();
  for (const t of tools) {
    const p = t.manifest.command?.[0];
    if (p && familyOf(p) !== "node") set.add(p);
  }
  return [...set].sort();
}

/** The runtime families `tools` need beyond node (python when any command starts with python…). */
export function familiesOf(tools: Tool[]): RuntimeFamily[] {
  return [...new Set(programsOf(tools).map(familyOf))].filter((f) => f !== "other").sort();
}

/**
 * True when `program` can be started: an absolute or relative path that is executable, or a
 * name found executable in one of `$PATH`'s folders.
 */
export function onPath(program: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const ok = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (program.includes("/")) return isAbsolute(program) ? ok(program) : true;
  return (env.PATH ?? "").split(delimiter).some((dir) => dir !== "" && ok(join(dir, program)));
}

/**
 * The programs of `tools` that cannot be started here (not on PATH), sorted. Commands using
 * `{tool_dir}` are checked by the tool run itself.
 */
export function missingPrograms(tools: Tool[], env: NodeJS.ProcessEnv = process.env): string[] {
  return programsOf(tools).filter((p) => !p.includes("{") && !onPath(p, env));
}
