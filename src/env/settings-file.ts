/**
 * Where `.dockpack/env.yml` lives in a worktree and how it is read (its schema and parser are in
 * settings.ts): apart so that `env list`/`env info`, whose settings come from the parse cache in
 * the installed command (core/parse-cache.ts), load neither the YAML parser nor zod (issue 14 C18).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { cachedParse } from "../core/parse-cache.js";
import { DOCKPACK_DIR } from "./config-file.js";
import type { EnvSettings } from "./settings.js";

/** The settings file, relative to a worktree. */
export const ENV_FILE = `${DOCKPACK_DIR}/env.yml`;

/**
 * Reads `<worktree>/.dockpack/env.yml`, or returns null when it does not exist.
 * @throws DockpackError `ENV_SETTINGS_INVALID` when it exists but is malformed
 */
export async function readEnvSettings(worktree: string): Promise<EnvSettings | null> {
  let text: string;
  try {
    text = await readFile(join(worktree, ENV_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  // The same text always gives the same settings (the worktree only appears in errors).
  return cachedParse("env-settings", text, async () =>
    (await import("./settings.js")).parseEnvSettingsText(text, worktree),
  );
}
