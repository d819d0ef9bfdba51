/**
 * Environments: one git worktree per branch with its own compose project, named volumes and host
 * ports, so that several branches of one app run side by side.
 *
 * `initEnvironments` writes `.dockpack/config.yml`; `createEnvironment` adds the worktree and its
 * settings (see settings.ts); `environmentUp`/`environmentDown` run docker-compose for it;
 * `listEnvironments`/`environmentInfo` report status (`removeEnvironment`, in remove.ts, takes
 * it away). Each of them first finishes or undoes the work of dockpack runs that died
 * (recover.ts), so a killed export or import never shows up as a half environment.
 */

import { access, copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { DockpackError } from "../core/errors.js";
import { branchExists, type Worktree, workTreeTop, worktreeAdd, worktreeList } from "../core/git.js";
import { type Reporter, silentReporter } from "../core/output.js";
import type { UpOptions } from "./compose-run.js";
import type { EnvConfig } from "./config.js";
import { CONFIG_FILE, DOCKPACK_DIR, loadEnvConfig } from "./config-file.js";
import { runsDir, stateDir } from "./journal.js";
import { checkBranchName, composeProjectName, worktreeFolder } from "./naming.js";
import type { RecoveredRun } from "./recover.js";
import type { EnvSettings } from "./settings.js";
import { readEnvSettings } from "./settings-file.js";

// The engine client (dockerode), compose and the recovery are imported where they are used, so
// that `env list`/`env info` of a repository without environments start without them (issue 14 C18).
const dockerContainers = () => import("../core/docker/containers.js");
// with the helper ledger (a volume's size may take a helper container)
const dockerVolumes = () => import("./helper-ledger.js").then(() => import("../core/docker/volumes.js"));
const composeRun = () => import("./compose-run.js");

/**
 * recover.ts's `recoverDeadRuns`, imported only when the runs or locks folder holds anything (a
 * journal, ledger, pending-images record or lock, the only things it acts on): with none there it
 * would do nothing.
 */
async function recoverDeadRuns(reporter?: Reporter): Promise<RecoveredRun[]> {
  const names = await readdir(runsDir()).catch(() => [] as string[]);
  // a lock file a process killed before its journal existed is removed there too
  if (names.length === 0 && (await readdir(join(stateDir(), "locks")).catch(() => [])).length === 0)
    return [];
  return (await import("./recover.js")).recoverDeadRuns(reporter);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The repository root containing `cwd`.
 * @throws DockpackError `ENV_NOT_A_REPO` when `cwd` is not inside a git repository
 */
export async function findRepoRoot(cwd: string): Promise<string> {
  const top = await workTreeTop(cwd);
  if (top === null)
    throw new DockpackError("ENV_NOT_A_REPO", `${resolve(cwd)} is not inside a git repository.`, {
      hint: "Run dockpack in your project's git repository (git init; git commit first).",
    });
  return top;
}

/** An environment as `env list`/`env info` report it. */
export interface EnvironmentInfo {
  branch: string;
  /** Absolute worktree path. */
  path: string;
  composeProject: string;
  /** `running` when any container of the compose project runs, else `stopped`. */
  status: "running" | "stopped";
  /** Containers of the compose project: name, service, state. */
  containers: { name: string; service: string; state: string }[];
  /** Named volumes: logical name, Docker volume, whether it exists, size in bytes (null when absent). */
  volumes: { name: string; volume: string; exists: boolean; size: number | null }[];
  /** Published host ports: `service:container/proto` → host port. */
  ports: Record<string, number>;
  url: string | null;
  /** External volumes and networks the environment shares with every other one (never packaged). */
  shared: { volumes: string[]; networks: string[] };
}

/** The repository root, its config and the absolute worktrees folder. */
export interface RepoContext {
  root: string;
  config: EnvConfig;
  worktreesRoot: string;
  /** The repository's worktrees when the context was read (`git worktree list`), main first. */
  worktrees: Worktree[];
}

/** Loads the config of the repository containing `cwd`. Throws `ENV_NOT_A_REPO`, `ENV_NOT_INITIALISED`. */
export async function repoContext(cwd: string): Promise<RepoContext> {
  const top = await findRepoRoot(cwd);
  // one `git worktree list` gives the main worktree (the root) and the worktrees the caller reads
  const worktrees = await worktreeList(top);
  const root = worktrees[0]?.path ?? top;
  const config = await loadEnvConfig(root);
  return { root, config, worktreesRoot: resolve(root, config.worktrees_dir), worktrees };
}

/** Finds the worktree of `branch` that has environment settings. Throws `ENV_NOT_FOUND`. */
export async function findEnvironment(
  ctx: RepoContext,
  branch: string,
): Promise<{ path: string; settings: EnvSettings }> {
  for (const wt of ctx.worktrees) {
    if (wt.branch !== branch) continue;
    const settings = await readEnvSettings(wt.path);
    if (settings) return { path: wt.path, settings };
  }
  throw new DockpackError("ENV_NOT_FOUND", `No environment for branch '${branch}' in ${ctx.root}.`, {
    hint: "List environments with 'dockpack env list'; create one with 'dockpack env create BRANCH'.",
  });
}

/** Options of {@link createEnvironment}. */
export interface CreateOptions {
  cwd?: string;
  /** Branch of the environment; created from `from` (default HEAD) when it does not exist. */
  branch: string;
  /** Start point for a new branch. */
  from?: string;
  /** Copy the volume data of this other environment into the new one. */
  copyDataFrom?: string;
}

/**
 * Creates the environment of `branch`: `git worktree add` under the worktrees folder, the config
 * copied in when the branch does not carry it, `.dockpack/env.yml` and `.dockpack/compose.yml`
 * with the environment's own compose project, volume names and free host ports, and optionally
 * a copy of another environment's volumes (its containers are stopped meanwhile and started
 * again). On failure, what was created is removed again.
 * @throws DockpackError `ENV_EXISTS`, `ENV_BRANCH_INVALID`, `ENV_NOT_FOUND` (copy source),
 *   `GIT_FAILED`, `ENV_NO_FREE_PORT`, `VOLUME_*`
 */
export async function createEnvironment(
  options: CreateOptions,
  reporter: Reporter = silentReporter(),
): Promise<EnvironmentInfo> {
  checkBranchName(options.branch);
  await recoverDeadRuns(reporter);
  const ctx = await repoContext(options.cwd ?? process.cwd());
  const { branch } = options;
  for (const wt of ctx.worktrees)
    if (wt.branch === branch)
      throw new DockpackError("ENV_EXISTS", `Branch '${branch}' is already checked out at ${wt.path}.`, {
        hint: "Use 'dockpack env info' for it, or remove it first with 'dockpack env remove'.",
      });
  const source = options.copyDataFrom ? await findEnvironment(ctx, options.copyDataFrom) : undefined;
  const path = join(ctx.worktreesRoot, worktreeFolder(branch));
  if (await exists(path))
    throw new DockpackError("ENV_EXISTS", `${path} already exists.`, {
      hint: "Remove it or choose another branch name.",
    });
  const hadBranch = await branchExists(branch, ctx.root);
  const { excludeFromGit, writeEnvSettings } = await import("./settings.js");
  await mkdir(ctx.worktreesRoot, { recursive: true });
  await excludeFromGit(ctx.root, ctx.config.worktrees_dir);
  // every change is journaled before it is made: a killed create is undone by the next command
  const { Journal } = await import("./journal.js");
  const journal = await Journal.open(
    {
      kind: "create",
      repo: ctx.root,
      branch,
      composeProject: composeProjectName(ctx.config.project, branch),
    },
    reporter,
  );
  try {
    journal.step = "worktree";
    await journal.will({ op: "worktree", root: ctx.root, path, branch, keepBranch: hadBranch });
    reporter.info(`creating worktree ${relative(ctx.root, path)} for branch ${branch}`);
    await worktreeAdd(ctx.root, path, {
      branch,
      from: hadBranch ? undefined : options.from,
      createBranch: !hadBranch,
    });
    journal.checkpoint();
    await ensureConfigIn(ctx, path);
    const settings = await writeEnvSettings(ctx.config, path, ctx.worktreesRoot, branch);
    if (source) {
      journal.step = "copy";
      await (await import("./create-copy.js")).copyEnvironmentData(
        ctx.config,
        source.settings,
        settings,
        journal,
        reporter,
      );
    }
    journal.step = "finish";
    journal.checkpoint();
    await journal.commit();
    return await describe(path, settings);
  } catch (err) {
    reporter.warn(`creating environment ${branch} failed; removing what was created`);
    for (const f of await journal.rollback())
      reporter.warn(`could not undo: ${f} (the next dockpack command retries)`);
    throw err;
  }
}

/**
 * Copies the main checkout's config into a worktree whose branch does not carry it, and the env
 * files (usually git-ignored, so not checked out) that the worktree lacks.
 */
async function ensureConfigIn(ctx: RepoContext, worktree: string): Promise<void> {
  const target = join(worktree, CONFIG_FILE);
  if (!(await exists(target))) {
    await mkdir(join(worktree, DOCKPACK_DIR), { recursive: true });
    await writeFile(target, (await import("./config.js")).renderEnvConfig(ctx.config));
  }
  for (const f of ctx.config.env_files) {
    const from = join(ctx.root, f);
    const to = join(worktree, f);
    if ((await exists(from)) && !(await exists(to))) {
      await mkdir(dirname(to), { recursive: true });
      await copyFile(from, to);
    }
  }
}

/** Builds the {@link EnvironmentInfo} of a worktree from its settings and the engine's state. */
export async function describe(path: string, settings: EnvSettings): Promise<EnvironmentInfo> {
  const { listContainers } = await dockerContainers();
  const { volumeExists, volumeSize } = await dockerVolumes();
  const containers = (
    await listContainers({ labels: { "com.docker.compose.project": settings.compose_project } })
  ).map((c) => ({
    name: c.name,
    service: c.labels["com.docker.compose.service"] ?? "",
    state: c.state,
  }));
  const volumes = [];
  for (const [name, volume] of Object.entries(settings.volumes)) {
    const present = await volumeExists(volume);
    volumes.push({ name, volume, exists: present, size: present ? await volumeSize(volume) : null });
  }
  return {
    branch: settings.branch,
    path,
    composeProject: settings.compose_project,
    status: containers.some((c) => c.state === "running") ? "running" : "stopped",
    containers,
    volumes,
    ports: settings.ports,
    url: settings.url,
    shared: settings.shared,
  };
}

/** Options naming one environment. */
export interface EnvRef {
  cwd?: string;
  branch: string;
}

/**
 * Starts the environment (`compose up -d`, building missing images; all with `build`) from its
 * compose file regenerated from the model compose resolves now, and returns its info with the
 * ports the engine published. Throws `ENV_NOT_FOUND`, `COMPOSE_CONFIG_FAILED`, `COMPOSE_FAILED`.
 */
export async function environmentUp(
  ref: EnvRef & Pick<UpOptions, "build" | "offline">,
  reporter: Reporter = silentReporter(),
): Promise<EnvironmentInfo> {
  const ctx = await repoContext(ref.cwd ?? process.cwd());
  const env = await findEnvironment(ctx, ref.branch);
  const { upEnvironment } = await composeRun();
  const settings = await upEnvironment(
    ctx.config,
    ctx.worktreesRoot,
    env.path,
    env.settings,
    { build: ref.build, offline: ref.offline },
    reporter,
  );
  return describe(env.path, settings);
}

/** Builds the environment's `build:` images (`compose build`). Throws as {@link environmentUp}. */
export async function environmentBuild(
  ref: EnvRef,
  reporter: Reporter = silentReporter(),
): Promise<EnvironmentInfo> {
  await recoverDeadRuns(reporter);
  const ctx = await repoContext(ref.cwd ?? process.cwd());
  const env = await findEnvironment(ctx, ref.branch);
  const { upEnvironment } = await composeRun();
  const settings = await upEnvironment(
    ctx.config,
    ctx.worktreesRoot,
    env.path,
    env.settings,
    { buildOnly: true },
    reporter,
  );
  return describe(env.path, settings);
}

/** Stops and removes the environment's containers (`docker-compose down`; volumes kept). */
export async function environmentDown(
  ref: EnvRef,
  reporter: Reporter = silentReporter(),
): Promise<EnvironmentInfo> {
  await recoverDeadRuns(reporter);
  const ctx = await repoContext(ref.cwd ?? process.cwd());
  const env = await findEnvironment(ctx, ref.branch);
  reporter.info(`stopping ${env.settings.compose_project}`);
  await (await composeRun()).composeDown(env.path, env.settings.compose_project);
  return describe(env.path, env.settings);
}

/** The info of one environment. Throws `ENV_NOT_FOUND`. */
export async function environmentInfo(ref: EnvRef): Promise<EnvironmentInfo> {
  await recoverDeadRuns();
  const ctx = await repoContext(ref.cwd ?? process.cwd());
  const env = await findEnvironment(ctx, ref.branch);
  return describe(env.path, env.settings);
}

/** Every environment of the repository containing `cwd` (worktrees with `.dockpack/env.yml`). */
export async function listEnvironments(
  options: { cwd?: string } = {},
  reporter: Reporter = silentReporter(),
): Promise<{ environments: EnvironmentInfo[] }> {
  await recoverDeadRuns(reporter);
  const ctx = await repoContext(options.cwd ?? process.cwd());
  const environments: EnvironmentInfo[] = [];
  for (const wt of ctx.worktrees) {
    const settings = await readEnvSettings(wt.path).catch(() => null);
    if (settings) environments.push(await describe(wt.path, settings));
  }
  return { environments };
}
