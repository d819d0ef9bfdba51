/**
 * Where `.dockpack/config.yml` lives and how it is read (its schema and parser are in config.ts):
 * apart so that `env list`/`env info`, whose config comes from the parse cache in the installed
 * command (core/parse-cache.ts), load neither the YAML parser nor zod (issue 14 C18).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DockpackError } from "../core/errors.js";
import { cachedParse } from "../core/parse-cache.js";
import type { EnvConfig } from "./config.js";

/** Folder (relative to a repository or worktree root) holding dockpack's files. */
export const DOCKPACK_DIR = ".dockpack";
/** The config file, relative to the repository root. */
export const CONFIG_FILE = `${DOCKPACK_DIR}/config.yml`;

/**
 * Reads and validates `<root>/.dockpack/config.yml`.
 * @throws DockpackError `ENV_NOT_INITIALISED` when the file is missing, `ENV_CONFIG_INVALID`
 *   when it is not YAML or does not match the schema
 */
export async function loadEnvConfig(root: string): Promise<EnvConfig> {
  const path = join(root, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new DockpackError("ENV_NOT_INITIALISED", `${path} does not exist.`, {
        hint: "Run 'dockpack env init' in the repository first.",
      });
    throw err;
  }
  // The same text always gives the same config (the path only appears in errors, never cached).
  return cachedParse("env-config", text, async () =>
    (await import("./config.js")).parseEnvConfigText(text, path),
  );
}
