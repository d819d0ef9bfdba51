/**
 * Dockerfile templates for packaging targets: where they live, how placeholders are filled and
 * how unresolved ones are found.
 *
 * Templates are data files in `templates/targets/` of the dockpack package (`Dockerfile.node`,
 * `Dockerfile.python`, `Dockerfile.go`, plus `AGENTS.md`). Placeholders are `{{NAME}}` with NAME in
 * `[A-Z][A-Z0-9_]*`; the known ones are listed in {@link TemplateValues}. Lines between
 * `# >>> service-only` and `# <<< service-only` (EXPOSE, HEALTHCHECK) are dropped for jobs.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DockpackError } from "../core/errors.js";
import type { TargetType } from "./schema.js";

/** The built-in template languages. */
export const TEMPLATE_NAMES = ["node", "python", "go"] as const;
/** One of {@link TEMPLATE_NAMES}. */
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** Matches one placeholder, e.g. `{{PORT}}` (also with inner spaces). */
export const PLACEHOLDER_RE = /\{\{\s*([A-Z][A-Z0-9_]*)\s*\}\}/g;

/** The folder holding dockpack's own templates (`<package>/templates/targets`). */
export function templatesDir(): string {
  return fileURLToPath(new URL("../../templates/targets/", import.meta.url));
}

/** Values filled into a template at add time. */
export interface TemplateValues {
  /** Target id. */
  ID: string;
  /** Module folder relative to the build context (`.` when they are the same). */
  MODULE: string;
  /** Port the service listens on (services and apps). */
  PORT: string;
  /** Health endpoint path, starting with `/`. */
  HEALTH_PATH: string;
  /** What the runtime runs: `server.js`, `app.py`, `./cmd/server`. */
  ENTRY: string;
  [name: string]: string;
}

/**
 * Resolves `--template`: a built-in name (looked up first in the project's
 * `ops/packaging/templates/Dockerfile.<name>`, so local edits win, then in dockpack's own) or a
 * path relative to `root`. Returns the template's text and where it came from.
 * Throws `TEMPLATE_NOT_FOUND` naming the path.
 */
export async function loadTemplate(root: string, template: string): Promise<{ path: string; text: string }> {
  let candidates: string[];
  if ((TEMPLATE_NAMES as readonly string[]).includes(template)) {
    candidates = [
      join(root, "ops/packaging/templates", `Dockerfile.${template}`),
      join(templatesDir(), `Dockerfile.${template}`),
    ];
  } else {
    candidates = [isAbsolute(template) ? template : resolve(root, template)];
  }
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new DockpackError(
      "TEMPLATE_NOT_FOUND",
      `Template '${template}' not found (looked at ${candidates.join(", ")}).`,
      {
        hint: `Use one of ${TEMPLATE_NAMES.join(", ")}, or a path to a Dockerfile template.`,
        usage: true,
      },
    );
  }
  return { path, text: await readFile(path, "utf8") };
}

/**
 * Fills a template: drops service-only blocks for jobs (keeps their content otherwise, without
 * the marker lines), replaces every known placeholder, and leaves unknown ones in place (so
 * `verify` reports them).
 */
export function renderTemplate(text: string, values: TemplateValues, type: TargetType): string {
  const out: string[] = [];
  let inServiceBlock = false;
  for (const line of text.split("\n")) {
    if (/^#\s*>>>\s*service-only/.test(line)) {
      inServiceBlock = true;
      continue;
    }
    if (/^#\s*<<<\s*service-only/.test(line)) {
      inServiceBlock = false;
      continue;
    }
    if (inServiceBlock && type === "job") continue;
    out.push(line);
  }
  return out.join("\n").replace(PLACEHOLDER_RE, (whole, name: string) => values[name] ?? whole);
}

/** The unresolved placeholders in a text, with their 1-based line numbers. */
export function findPlaceholders(text: string): { name: string; line: number }[] {
  const found: { name: string; line: number }[] = [];
  text.split("\n").forEach((line, i) => {
    for (const m of line.matchAll(PLACEHOLDER_RE)) found.push({ name: m[1], line: i + 1 });
  });
  return found;
}
