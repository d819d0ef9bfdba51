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
import { z } from "zod";
import { DockpackError } from "../core/errors.js";
import { atomicWriteFile, withLock } from "../core/fs.js";
import { git } from "../core/git.js";
import { portKey, readComposeModel, renderEnvCompose } from "./compose-file.js";
import { DOCKPACK_DIR, type EnvConfig } from "./config.js";
import { allocatePorts, composeProjectName, volumeName } from "./naming.js";

/** The settings file, relative to a worktree. */
export const ENV_FILE = `${DOCKPACK_DIR}/env.yml`;
/** The per-environment compose file, relative to a worktree. */
export const ENV_COMPOSE_FILE = `${DOCKPACK_DIR}/compose.yml`;

/** Schema of `.dockpack/env.yml`. */
export const envSettingsSchema = z.object({
  branch: z.string(),
  project: z.string(),
  compose_project: z.string(),
  /** Logical volume name → Docker volume name. */
  volumes: z.record(z.string(), z.string()),
  /** `service:container/proto` → host port. */
  ports: z.record(z.string(), z.number().int()),
  /** The environment's URL, or null when no web service is configured. */
  url: z.string().nullable(),
  created_at: z.string(),
});

/** A worktree's `.dockpack/env.yml`. */
export type EnvSettings = z.infer<typeof envSettingsSchema>;

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

/** Host ports recorded by every environment whose worktree is in `worktreesRoot`. */
export async function takenPorts(worktreesRoot: string): Promise<Set<number>> {
  const taken = new Set<number>();
  let names: string[] = [];
  try {
    names = await readdir(worktreesRoot);
  } catch {
    return taken;
  }
  for (const n of names) {
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
 * Computes and writes the settings of environment `branch` in `worktree`: compose project,
 * volume names, free host ports (kept when `keepPorts` names them), URL, `.dockpack/env.yml` and
 * `.dockpack/compose.yml`. Reads the compose files from the worktree.
 * @throws DockpackError `COMPOSE_*` for unreadable compose files, `ENV_NO_FREE_PORT`
 */
export async function writeEnvSettings(
  config: EnvConfig,
  worktree: string,
  worktreesRoot: string,
  branch: string,
  keepPorts?: Record<string, number>,
): Promise<EnvSettings> {
  const model = await readComposeModel(worktree, config.compose_files);
  const compose_project = composeProjectName(config.project, branch);
  const published = model.ports.filter((p) => p.host !== 0);
  const volumes: Record<string, string> = {};
  for (const v of model.volumes) volumes[v] = volumeName(compose_project, v);
  await mkdir(worktreesRoot, { recursive: true });
  await mkdir(join(worktree, DOCKPACK_DIR), { recursive: true });
  // one allocation at a time per repository: two concurrent `env create`s never pick the same
  // port, because each records its ports (env.yml) before the next one looks
  return withLock(
    join(worktreesRoot, ".dockpack-ports.lock"),
    async () => {
      const taken = await takenPorts(worktreesRoot);
      const need = published.filter((p) => keepPorts?.[portKey(p)] === undefined);
      const fresh = await allocatePorts(need.length, config.port_range, taken);
      const ports: Record<string, number> = {};
      for (const p of published) ports[portKey(p)] = keepPorts?.[portKey(p)] ?? (fresh.shift() as number);
      let url: string | null = null;
      if (config.web) {
        const { service, port, scheme } = config.web;
        const host = Object.entries(ports).find(([k]) => k.startsWith(`${service}:${port}/`))?.[1];
        if (host !== undefined) url = `${scheme}://localhost:${host}/`;
      }
      const settings: EnvSettings = {
        branch,
        project: config.project,
        compose_project,
        volumes,
        ports,
        url,
        created_at: new Date().toISOString(),
      };
      await atomicWriteFile(
        join(worktree, ENV_COMPOSE_FILE),
        renderEnvCompose(model, { composeProject: compose_project, hostPorts: ports }),
      );
      await atomicWriteFile(
        join(worktree, ENV_FILE),
        `# Written by dockpack for environment '${branch}'; do not edit.\n${YAML.stringify(settings)}`,
      );
      return settings;
    },
    { wait: true, timeoutSeconds: 60 },
  );
}

/**
 * Keeps dockpack's per-environment files and the worktrees folder out of `git status` by adding
 * patterns to the repository's `info/exclude` (shared by all its worktrees). Idempotent.
 */
export async function excludeFromGit(repoRoot: string, worktreesDir: string): Promise<void> {
  await excludePatterns(repoRoot, [
    `/${ENV_FILE}`,
    `/${ENV_COMPOSE_FILE}`,
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
