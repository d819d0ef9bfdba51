/**
 * `env init`: writes `.dockpack/config.yml` for a repository, detecting its compose file, named
 * volumes and web port (see config.ts for the schema).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { DockpackError } from "../core/errors.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { guessWebPort } from "./compose-file.js";
import { defaultComposeFiles, findEnvFiles, resolveComposeModel } from "./compose-model.js";
import { CONFIG_FILE, DOCKPACK_DIR, type EnvConfig, parseEnvConfig, renderEnvConfig } from "./config.js";
import { exists, findRepoRoot } from "./environments.js";
import { sanitizeName } from "./naming.js";
import { excludeFromGit } from "./settings.js";

/** Options of {@link initEnvironments}. */
export interface InitOptions {
  /** A folder inside the repository (default: process cwd). */
  cwd?: string;
  /** Project name (default: the repository folder's name, sanitised). */
  project?: string;
  /**
   * Compose files, relative to the repository root (default: what compose loads there:
   * COMPOSE_FILE, else compose.yaml/…/docker-compose.yml plus its override file).
   */
  composeFiles?: string[];
  /** Worktrees folder (default `worktrees`). */
  worktreesDir?: string;
  /** Volumes to package (default: every named, non-external volume of the compose files). */
  volumes?: string[];
  /** Env files to carry (default: compose's `.env` and every `env_file:` of the services). */
  envFiles?: string[];
  /** Web service for the URL (default: the first publishing 80/443/3000/8000/8080 on all interfaces). */
  webService?: string;
  /** Container port of the web service (default: its first published port). */
  webPort?: number;
  /** Overwrite an existing config. */
  force?: boolean;
}

/** Result of {@link initEnvironments}. */
export interface InitResult {
  /** Absolute path of the written config file. */
  configPath: string;
  config: EnvConfig;
}

/**
 * Writes `.dockpack/config.yml` for the repository containing `cwd`: the compose files compose
 * would load, the named volumes and env files of the model compose resolves, and the web service.
 * @throws DockpackError `ENV_NOT_A_REPO`, `COMPOSE_MISSING` (no compose file found),
 *   `ENV_ALREADY_INITIALISED` (config exists, no `force`), `ENV_CONFIG_INVALID` (bad options),
 *   `COMPOSE_CONFIG_FAILED` (compose cannot read the files: its message)
 */
export async function initEnvironments(
  options: InitOptions = {},
  reporter: Reporter = silentReporter(),
): Promise<InitResult> {
  const root = await findRepoRoot(options.cwd ?? process.cwd());
  const configPath = join(root, CONFIG_FILE);
  if (!options.force && (await exists(configPath)))
    throw new DockpackError("ENV_ALREADY_INITIALISED", `${configPath} already exists.`, {
      hint: "Edit it, or pass --force to write it again.",
    });
  const composeFiles = options.composeFiles?.length ? options.composeFiles : await defaultComposeFiles(root);
  const model = await resolveComposeModel(root, composeFiles);
  const found = await findEnvFiles(root, composeFiles, model);
  for (const s of found.skipped) reporter.warn(`env file ${s} is not carried by dockpack`);
  for (const v of options.volumes ?? [])
    if (!model.volumes.includes(v))
      throw new DockpackError(
        "ENV_VOLUME_UNKNOWN",
        `Volume '${v}' is not a named volume of ${composeFiles.join(", ")}.`,
        {
          hint: `Declared named volumes: ${model.volumes.join(", ") || "none"}.`,
          usage: true,
        },
      );
  const webPort = options.webService
    ? model.ports.find(
        (p) => p.service === options.webService && (!options.webPort || p.container === options.webPort),
      )
    : guessWebPort(model.ports);
  if (options.webService && !webPort)
    throw new DockpackError(
      "ENV_WEB_UNKNOWN",
      `Service '${options.webService}' publishes no${options.webPort ? ` ${options.webPort}` : ""} port.`,
      {
        hint: "Name a service with a 'ports:' entry.",
        usage: true,
      },
    );
  const config = parseEnvConfig(
    {
      version: 1,
      project: options.project ?? (sanitizeName(basename(root)) || "app"),
      compose_files: composeFiles,
      worktrees_dir: options.worktreesDir ?? "worktrees",
      volumes: options.volumes ?? model.volumes,
      env_files: options.envFiles ?? found.envFiles,
      ...(webPort
        ? { web: { service: webPort.service, port: options.webPort ?? webPort.container, scheme: "http" } }
        : {}),
      port_range: [20000, 29999],
    },
    "options",
  );
  await mkdir(join(root, DOCKPACK_DIR), { recursive: true });
  await writeFile(configPath, renderEnvConfig(config));
  await excludeFromGit(root, config.worktrees_dir);
  return { configPath, config };
}
