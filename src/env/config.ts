/**
 * The environment configuration `.dockpack/config.yml` of a git repository: which compose files
 * make up the app, where per-branch worktrees live, which named volumes and env files an
 * environment package carries, and which service/port gives the environment's URL.
 *
 * The file is YAML, validated with a strict zod schema: an unknown or mistyped key is an error
 * (`ENV_CONFIG_INVALID`) naming its path, e.g. `.dockpack/config.yml: web.prot: unknown key`.
 */
import YAML from "yaml";
import { DockpackError } from "../core/errors.js";
import * as z from "../core/zod-mini.js";
import { CONFIG_FILE } from "./config-file.js";

export { CONFIG_FILE, DOCKPACK_DIR, loadEnvConfig } from "./config-file.js";

/** A non-empty string (zod/mini: see core/zod-mini.ts). */
const nonEmpty = () => z.string().check(z.minLength(1));
/** A port number a config may give for published host ports. */
const hostPort = () => z.number().check(z.int(), z.minimum(1024), z.maximum(65535));

/** The schema of `.dockpack/config.yml` (version 1). Unknown keys are rejected. */
export const envConfigSchema = z.strictObject({
  /** Config schema version; only 1 exists. */
  version: z.literal(1),
  /** Project name; the compose project of branch B is `<project>-<B>` (sanitised). */
  project: z
    .string()
    .check(
      z.regex(
        /^[a-z0-9][a-z0-9_-]*$/,
        "lower-case letters, digits, '-' and '_', starting with a letter or digit",
      ),
    ),
  /** Compose files, relative to the repository root, in `-f` order. */
  compose_files: z.array(nonEmpty()).check(z.minLength(1)),
  /** Where `env create` puts worktrees, relative to the repository root. */
  worktrees_dir: z._default(nonEmpty(), "worktrees"),
  /** Logical names of the named volumes (as declared in the compose files) that packages carry. */
  volumes: z.array(nonEmpty()),
  /** Env files (relative paths) that packages carry; missing ones are skipped. */
  env_files: z._default(z.array(nonEmpty()), [".env"]),
  /** The service and container port whose published host port makes the environment's URL. */
  web: z.optional(
    z.strictObject({
      service: nonEmpty(),
      port: z.number().check(z.int(), z.minimum(1), z.maximum(65535)),
      scheme: z._default(z.enum(["http", "https"]), "http"),
    }),
  ),
  /** Host port range that per-environment published ports are taken from (inclusive). */
  port_range: z._default(z.tuple([hostPort(), hostPort()]), [20000, 29999]),
});

/** A parsed, validated `.dockpack/config.yml`. */
export type EnvConfig = z.infer<typeof envConfigSchema>;

/**
 * Validates a parsed YAML/JSON value as an {@link EnvConfig}.
 * @param label the file named in errors
 * @throws DockpackError `ENV_CONFIG_INVALID` listing every problem as `<path>: <problem>`
 */
export function parseEnvConfig(value: unknown, label = CONFIG_FILE): EnvConfig {
  const res = envConfigSchema.safeParse(value);
  if (res.success) {
    const [lo, hi] = res.data.port_range;
    if (lo > hi) throw configError(label, [`port_range: ${lo} is above ${hi}`]);
    return res.data;
  }
  const problems = res.error.issues.flatMap((issue) => {
    const base = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys")
      return issue.keys.map((k) => `${base ? `${base}.` : ""}${k}: unknown key`);
    return [`${base || "(root)"}: ${issue.message}`];
  });
  throw configError(label, problems);
}

function configError(label: string, problems: string[]): DockpackError {
  return new DockpackError("ENV_CONFIG_INVALID", `${label}: ${problems.join("; ")}`, {
    hint: "Fix the file (see docs/commands/env.md for its keys), or run 'dockpack env init --force'.",
    details: { file: label, problems },
  });
}

/** Parses the YAML text of a config file; see {@link parseEnvConfig}. */
export function parseEnvConfigText(text: string, label = CONFIG_FILE): EnvConfig {
  let value: unknown;
  try {
    value = YAML.parse(text);
  } catch (err) {
    throw new DockpackError("ENV_CONFIG_INVALID", `${label}: not valid YAML: ${(err as Error).message}`, {
      hint: "Fix the YAML syntax.",
      cause: err,
    });
  }
  return parseEnvConfig(value, label);
}

/** Renders a config as YAML with a header comment. */
export function renderEnvConfig(config: EnvConfig): string {
  return `# dockpack environment configuration (docs/commands/env.md)\n${YAML.stringify(config)}`;
}
