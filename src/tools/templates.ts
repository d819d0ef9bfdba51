/**
 * Generated-file templates (`templates/tools/*.tmpl`): data files with `{{KEY}}` placeholders
 * (upper-case keys only, so GitHub's `${{ expr }}` passes through untouched).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DockpackError } from "../core/errors.js";

/** Finds `templates/tools` walking up from this module (works from src/ and from dist/). */
export function templatesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "templates", "tools");
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new DockpackError("TEMPLATES_MISSING", "The templates/tools folder of dockpack is missing.", {
    hint: "Reinstall dockpack; the package ships templates/.",
  });
}

/**
 * Renders template `name` with `values`.
 * @throws DockpackError `TEMPLATE_KEY_MISSING` when the template uses a key not in `values`
 */
export async function renderTemplate(name: string, values: Record<string, string>): Promise<string> {
  const text = await readFile(join(templatesDir(), name), "utf8");
  return text.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined)
      throw new DockpackError(
        "TEMPLATE_KEY_MISSING",
        `Template ${name} uses {{${key}}}, which has no value.`,
      );
    return v;
  });
}
