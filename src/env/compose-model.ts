/**
 * Reading a compose project through compose itself: which files compose would load, the
 * resolved model (core/docker/compose.ts `composeConfig`), and the env files the project reads
 * (`.env` in compose's project directory and every service's `env_file:`), which are usually
 * git-ignored and therefore carried by dockpack into worktrees and packages.
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, relative, sep } from "node:path";
import YAML from "yaml";
import { composeCommand, composeConfig } from "../core/docker/compose.js";
import { DockpackError } from "../core/errors.js";
import { type ComposeModel, modelOf } from "./compose-file.js";

/** Compose file names compose looks for, in order (Compose spec, v2; v1 reads the last two). */
export const COMPOSE_CANDIDATES = [
  "compose.yaml",
  "compose.yml",
  "docker-compose.yaml",
  "docker-compose.yml",
];

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return null;
  }
}

/** Reads `KEY=VALUE` lines of a `.env` file (only to find COMPOSE_FILE; compose does the rest). */
function dotenvValue(text: string, key: string): string | undefined {
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (m && m[1] === key) return m[2].trim().replace(/^(['"])(.*)\1$/, "$2");
  }
  return undefined;
}

/**
 * The compose files compose loads by default in `root`, relative to it: `COMPOSE_FILE` (from the
 * environment or `root/.env`, split on `COMPOSE_PATH_SEPARATOR` or `:`), else the first of
 * compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml plus its override file
 * (`compose.override.yaml`, `docker-compose.override.yml`, …) when present.
 * @throws DockpackError `COMPOSE_MISSING` when there is none
 */
export async function defaultComposeFiles(root: string): Promise<string[]> {
  const dotenv = (await readText(join(root, ".env"))) ?? "";
  const fromEnv = process.env.COMPOSE_FILE ?? dotenvValue(dotenv, "COMPOSE_FILE");
  if (fromEnv) {
    const sepChar =
      process.env.COMPOSE_PATH_SEPARATOR ?? dotenvValue(dotenv, "COMPOSE_PATH_SEPARATOR") ?? ":";
    return fromEnv.split(sepChar).filter(Boolean);
  }
  for (const c of COMPOSE_CANDIDATES) {
    if ((await readText(join(root, c))) === null) continue;
    const base = c.replace(/\.(ya?ml)$/, "");
    for (const ext of ["yaml", "yml"]) {
      const o = `${base}.override.${ext}`;
      if ((await readText(join(root, o))) !== null) return [c, o];
    }
    return [c];
  }
  throw new DockpackError(
    "COMPOSE_MISSING",
    `No compose file in ${root} (looked for COMPOSE_FILE and ${COMPOSE_CANDIDATES.join(", ")}).`,
    { hint: "Add a compose file, or name yours with --compose-file." },
  );
}

/** Compose's project directory of `files` (relative to the root): the first file's folder. */
export function composeProjectDir(files: string[]): string {
  return files.length ? dirname(files[0] as string) : ".";
}

/**
 * The resolved model of the compose project made of `files` (relative to `root`), as compose
 * prints it (see core/docker/compose.ts).
 * @throws DockpackError `COMPOSE_FILE_NOT_FOUND`, `COMPOSE_CONFIG_FAILED` (compose's message),
 *   `COMPOSE_INVALID`
 */
export async function resolveComposeModel(root: string, files: string[]): Promise<ComposeModel> {
  for (const f of files)
    if ((await readText(join(root, f))) === null)
      throw new DockpackError("COMPOSE_MISSING", `Compose file ${join(root, f)} does not exist.`, {
        hint: "Check compose_files in .dockpack/config.yml.",
      });
  const doc = await composeConfig({ cwd: root, files });
  return modelOf(doc, files.join(", ") || root);
}

/** `env_file` entries of one service definition: a string, a list of strings or of `{path}`. */
function envFileEntries(def: unknown): string[] {
  if (def === null || typeof def !== "object") return [];
  const v = (def as Record<string, unknown>).env_file;
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return list
    .map((e) =>
      typeof e === "string" ? e : e && typeof e === "object" ? (e as { path?: unknown }).path : null,
    )
    .filter((e): e is string => typeof e === "string" && e.length > 0);
}

function inside(root: string, abs: string): string | null {
  const rel = relative(root, abs);
  return rel && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel) ? rel : null;
}

/**
 * The env files a compose project reads, relative to `root`: `.env` in compose's project
 * directory (when present) and every service's `env_file:`. Compose v2 keeps `env_file` in its
 * resolved model; compose v1 inlines the files' variables, so their names are read from the
 * compose files' text (no interpolation: a `${VAR}` in a path is left out with the reason in
 * `skipped`). Files outside `root` are left out too.
 */
export async function findEnvFiles(
  root: string,
  files: string[],
  model: ComposeModel,
): Promise<{ envFiles: string[]; skipped: string[] }> {
  const found = new Set<string>();
  const skipped: string[] = [];
  const projectDir = join(root, composeProjectDir(files));
  if ((await readText(join(projectDir, ".env"))) !== null) {
    const rel = inside(root, join(projectDir, ".env"));
    if (rel) found.add(rel);
  }
  const add = (path: string, baseDir: string) => {
    if (path.includes("$")) {
      skipped.push(`${path} (interpolated path)`);
      return;
    }
    const rel = inside(root, normalize(isAbsolute(path) ? path : join(baseDir, path)));
    if (rel) found.add(rel);
    else skipped.push(`${path} (outside the repository)`);
  };
  for (const def of Object.values((model.doc.services ?? {}) as Record<string, unknown>))
    for (const e of envFileEntries(def)) add(e, projectDir);
  if (composeCommand().major === 1) {
    for (const f of files) {
      const text = await readText(join(root, f));
      if (text === null) continue;
      let doc: unknown;
      try {
        doc = YAML.parse(text, { merge: true, maxAliasCount: -1, logLevel: "silent", uniqueKeys: false });
      } catch {
        continue; // compose already read it; a file this parser cannot read only hides names
      }
      const services = (doc as { services?: unknown } | null)?.services;
      if (!services || typeof services !== "object") continue;
      for (const def of Object.values(services as Record<string, unknown>))
        for (const e of envFileEntries(def)) add(e, join(root, dirname(f)));
    }
  }
  return { envFiles: [...found].sort(), skipped: [...new Set(skipped)] };
}
