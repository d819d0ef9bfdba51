/**
 * Per-environment settings: `.dockpack/env.yml` in a worktree records the environment's branch,
 * compose project, Docker volume names, host ports and URL; `.dockpack/compose.yml` is its
 * resolved compose file ({@link renderEnvCompose}). Both are written for the environment's *own*
 * name (also after an import, so they never carry the source machine's names) and are kept out of
 * git through the repository's `info/exclude`.
 */
import { appendFile, mkdir, readdir, readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import YAML from "yaml";
import { DockpackError } from "../core/errors.js";
import { atomicWriteFile, withLock } from "../core/fs.js";
import { git } from "../core/git.js";
import * as z from "../core/zod-mini.js";
import { type ComposeModel, guessWebPort, type PublishedPort, renderEnvCompose } from "./compose-file.js";
import { composeProjectDir, resolveComposeModel } from "./compose-model.js";
import { DOCKPACK_DIR, type EnvConfig } from "./config.js";
import { allocatePorts, composeProjectName, volumeName } from "./naming.js";
import { ENV_FILE, readEnvSettings } from "./settings-file.js";

/** The lock file, in the worktrees folder, under which an environment's host ports are picked. */
export const PORTS_LOCK = ".dockpack-ports.lock";

export { ENV_FILE, readEnvSettings } from "./settings-file.js";
/** The per-environment compose file, relative to a worktree. */
export const ENV_COMPOSE_FILE = `${DOCKPACK_DIR}/compose.yml`;
/** Where bind-style `driver_opts` volumes keep their data, relative to a worktree. */
export const BIND_VOLUMES_DIR = `${DOCKPACK_DIR}/volumes`;

/** Schema of `.dockpack/env.yml`. */
export const envSettingsSchema = z.object({
  branch: z.string(),
  project: z.string(),
  compose_project: z.string(),
  /** Logical volume name → Docker volume name. */
  volumes: z.record(z.string(), z.string()),
  /** `service:container/proto` → host port. */
  ports: z.record(z.string(), z.number().check(z.int())),
  /** The environment's URL, or null when no web service is configured. */
  url: z.nullable(z.string()),
  created_at: z.string(),
  /** Compose's project directory, relative to the worktree (the first compose file's folder). */
  project_directory: z._default(z.string(), "."),
  /** `driver_opts` of bind-style volumes (logical name → options, `device` in the worktree). */
  volume_driver_opts: z._default(z.record(z.string(), z.record(z.string(), z.string())), {}),
  /** External volumes and networks the environment shares with every other one. */
  shared: z._default(z.object({ volumes: z.array(z.string()), networks: z.array(z.string()) }), {
    volumes: [],
    networks: [],
  }),
});

/** A worktree's `.dockpack/env.yml`. */
export type EnvSettings = z.infer<typeof envSettingsSchema>;

/**
 * Parses the text of `<worktree>/.dockpack/env.yml` (see settings-file.ts's `readEnvSettings`).
 * @throws DockpackError `ENV_SETTINGS_INVALID` when it is malformed; the YAML parser's error
 *   when it is not YAML
 */
export function parseEnvSettingsText(text: string, worktree: string): EnvSettings {
  const res = envSettingsSchema.safeParse(YAML.parse(text));
  if (!res.success)
    throw new DockpackError(
      "ENV_SETTINGS_INVALID",
      `${join(worktree, ENV_FILE)} is malformed: ${res.error.message}`,
      {
        hint: "Remove the file and run 'dockpack env create' again for that branch.",
      },
    );
  return res.data;
}

/** Host ports recorded by every environment whose worktree is in `worktreesRoot` (but `except`). */
export async function takenPorts(worktreesRoot: string, except?: string): Promise<Set<number>> {
  const taken = new Set<number>();
  let names: string[] = [];
  try {
    names = await readdir(worktreesRoot);
  } catch {
    return taken;
  }
  for (const n of names) {
    if (except && join(worktreesRoot, n) === except) continue;
    try {
      const s = await readEnvSettings(join(worktreesRoot, n));
      for (const p of Object.values(s?.ports ?? {})) taken.add(p);
    } catch {
      // a broken env.yml does not block others
    }
  }
  return taken;
}

/**
 * The environment's URL: the config's web service and port, else the first port
 * {@link guessWebPort} picks; the host port is the engine's (`enginePorts`, read after `up`)
 * when known, else the environment's allocated one. Null when there is no web port.
 */
export function environmentUrl(
  config: EnvConfig,
  ports: PublishedPort[],
  hostPorts: Record<string, number>,
): string | null {
  const web = config.web
    ? ports.find((p) => p.service === config.web?.service && p.container === config.web.port)
    : guessWebPort(ports);
  if (!web) return null;
  const host = hostPorts[web.key];
  if (host === undefined || host === 0) return null;
  const scheme = config.web?.scheme ?? (web.container === 443 ? "https" : "http");
  return `${scheme}://localhost:${host}/`;
}

/**
 * Computes and writes the settings of environment `branch` in `worktree` from the model compose
 * resolves there (so edits to `.env` or the compose files take effect): compose project, volume
 * names, free host ports for every published port (kept when `keepPorts` names them), a folder
 * under `.dockpack/volumes/` for each bind-style `driver_opts` volume, the URL,
 * `.dockpack/env.yml` and `.dockpack/compose.yml`.
 * @returns the settings and the model they were made from
 * @throws DockpackError `COMPOSE_*` when compose cannot read the files, `ENV_NO_FREE_PORT`
 */
export async function writeEnvSettings(
  config: EnvConfig,
  worktree: string,
  worktreesRoot: string,
  branch: string,
  keepPorts?: Record<string, number>,
): Promise<EnvSettings> {
  return (await writeEnvSettingsWithModel(config, worktree, worktreesRoot, branch, keepPorts)).settings;
}

/** {@link writeEnvSettings}, also returning the resolved model. */
export async function writeEnvSettingsWithModel(
  config: EnvConfig,
  worktree: string,
  worktreesRoot: string,
  branch: string,
  keepPorts?: Record<string, number>,
): Promise<{ settings: EnvSettings; model: ComposeModel }> {
  const model = await resolveComposeModel(worktree, config.compose_files);
  const compose_project = composeProjectName(config.project, branch);
  const published = model.ports.filter((p) => p.host !== 0);
  const volumes: Record<string, string> = {};
  for (const v of model.volumes) volumes[v] = volumeName(compose_project, v);
  const bindFolders: Record<string, string> = {};
  const volume_driver_opts: Record<string, Record<string, string>> = {};
  for (const b of model.bindVolumes) {
    const folder = join(worktree, BIND_VOLUMES_DIR, b.name);
    await mkdir(folder, { recursive: true });
    bindFolders[b.name] = folder;
    const def = (model.doc.volumes as Record<string, { driver_opts: Record<string, unknown> }>)[b.name];
    const opts: Record<string, string> = {};
    for (const [k, v] of Object.entries(def?.driver_opts ?? {})) opts[k] = String(v);
    volume_driver_opts[b.name] = { ...opts, device: folder };
  }
  await mkdir(worktreesRoot, { recursive: true });
  await mkdir(join(worktree, DOCKPACK_DIR), { recursive: true });
  // one allocation at a time per repository: two concurrent `env create`s never pick the same
  // port, because each records its ports (env.yml) before the next one looks
  return withLock(
    join(worktreesRoot, PORTS_LOCK),
    async () => {
      const taken = await takenPorts(worktreesRoot);
      const need = published.filter((p) => keepPorts?.[p.key] === undefined);
      const fresh = await allocatePorts(need.length, config.port_range, taken);
      const ports: Record<string, number> = {};
      for (const p of published) ports[p.key] = keepPorts?.[p.key] ?? (fresh.shift() as number);
      const settings: EnvSettings = {
        branch,
        project: config.project,
        compose_project,
        volumes,
        ports,
        url: environmentUrl(config, model.ports, ports),
        created_at: new Date().toISOString(),
        project_directory: composeProjectDir(config.compose_files),
        volume_driver_opts,
        shared: { volumes: model.externalVolumes, networks: model.externalNetworks },
      };
      await atomicWriteFile(
        join(worktree, ENV_COMPOSE_FILE),
        renderEnvCompose(model, { composeProject: compose_project, hostPorts: ports, bindFolders }),
      );
      await saveEnvSettings(worktree, settings);
      return { settings, model };
    },
    { wait: true, timeoutSeconds: 60 },
  );
}

/** Writes `<worktree>/.dockpack/env.yml` atomically. */
export async function saveEnvSettings(worktree: string, settings: EnvSettings): Promise<void> {
  await atomicWriteFile(
    join(worktree, ENV_FILE),
    `# Written by dockpack for environment '${settings.branch}'; do not edit.\n${YAML.stringify(settings)}`,
  );
}

/**
 * The options to create environment volume `name` with: `{ driver: "local", driverOpts }` for
 * a bind-style `driver_opts` volume (its folder is in the worktree), else undefined (a plain
 * local volume). Compose refuses a volume whose options differ from the file's.
 */
export function volumeCreateOptions(
  settings: EnvSettings,
  name: string,
): { driver: string; driverOpts: Record<string, string> } | undefined {
  const opts = settings.volume_driver_opts[name];
  return opts ? { driver: "local", driverOpts: opts } : undefined;
}

/**
 * Keeps dockpack's per-environment files and the worktrees folder out of `git status` by adding
 * patterns to the repository's `info/exclude` (shared by all its worktrees). Idempotent.
 */
export async function excludeFromGit(repoRoot: string, worktreesDir: string): Promise<void> {
  await excludePatterns(repoRoot, [
    `/${ENV_FILE}`,
    `/${ENV_COMPOSE_FILE}`,
    `/${BIND_VOLUMES_DIR}/`,
    `/${worktreesDir.replace(/^\/+|\/+$/g, "")}/`,
  ]);
}

/**
 * Keeps a folder inside the repository (e.g. the packages folder an export writes to) out of
 * `git status` and `git add -A` through `info/exclude`. Does nothing for a folder outside
 * `repoRoot` or the root itself. Idempotent.
 */
export async function excludeFolderFromGit(repoRoot: string, folder: string): Promise<void> {
  const rel = relative(repoRoot, folder);
  if (!rel || rel.startsWith("..") || isAbsolute(rel)) return;
  await excludePatterns(repoRoot, [`/${rel.split(sep).join("/")}/`]);
}

async function excludePatterns(repoRoot: string, want: string[]): Promise<void> {
  const common = (await git(["rev-parse", "--git-common-dir"], repoRoot)).trim();
  const file = join(common.startsWith("/") ? common : join(repoRoot, common), "info", "exclude");
  await mkdir(dirname(file), { recursive: true });
  let text = "";
  try {
    text = await readFile(file, "utf8");
  } catch {
    // none yet
  }
  const missing = want.filter((w) => !text.split("\n").includes(w));
  if (missing.length)
    await appendFile(file, `${text && !text.endsWith("\n") ? "\n" : ""}# dockpack\n${missing.join("\n")}\n`);
}
