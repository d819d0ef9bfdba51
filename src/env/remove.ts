/**
 * `removeEnvironment`: takes an environment away — its containers, worktree, and optionally its
 * named volumes and branch — in one go, also when an import of it died halfway:
 *
 * - dead runs are recovered first (recover.ts): a half-imported environment is rolled back
 *   completely, and the result says so;
 * - under `force`, a worktree of the branch without environment settings (an import that died
 *   before writing them, and whose journal is gone) is removed too, with the volumes its names
 *   would have;
 * - everything that could block the removal is checked before anything is removed: helper
 *   containers of dead dockpack processes on its volumes are removed, and a volume used by any
 *   other container stops the removal (`VOLUME_IN_USE`) with the worktree still in place.
 *
 * Runs under the environment's lock, so it waits for an export or import of it to end.
 */
import { getDocker } from "../core/docker/client.js";
import { HELPER_LABEL } from "../core/docker/helper-image.js";
import { volumeExists } from "../core/docker/volumes.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { pidAlive } from "../core/exec.js";
import { branchExists, status, worktreeList } from "../core/git.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { composeDown, removeVolumeSoon } from "./compose-run.js";
import { type EnvRef, findEnvironment, repoContext } from "./environments.js";
import { Journal } from "./journal.js";
import { composeProjectName, volumeName } from "./naming.js";
import { recoverDeadRuns, withEnvLock } from "./recover.js";
import { removeWorktreeAndBranch } from "./recover-undo.js";
import { readEnvSettings } from "./settings.js";

/** Options of {@link removeEnvironment}. */
export interface RemoveOptions extends EnvRef {
  /** Also remove the environment's named volumes. */
  volumes?: boolean;
  /** Also delete the git branch. */
  deleteBranch?: boolean;
  /** Remove a worktree with uncommitted changes (they are lost), or a half-created one. */
  force?: boolean;
}

/** Result of {@link removeEnvironment}. */
export interface RemoveResult {
  branch: string;
  path: string;
  removedVolumes: string[];
  /** Docker volumes of the environment that still exist (without `volumes`); `env prune` removes them later. */
  keptVolumes: string[];
  branchDeleted: boolean;
  /** True when it was a half-imported environment, rolled back by the crash recovery. */
  rolledBack?: boolean;
}

/** Containers (other than dead processes' helpers, which are removed) that use the volume. */
async function blockingContainers(volume: string): Promise<string[]> {
  const docker = getDocker();
  const list = await docker.listContainers({ all: true, filters: { volume: [volume] } });
  const blocking: string[] = [];
  for (const c of list) {
    const labels = c.Labels ?? {};
    const pid = Number(labels["io.dockpack.pid"]);
    if (labels[HELPER_LABEL] && Number.isInteger(pid) && !pidAlive(pid)) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
      continue;
    }
    blocking.push((c.Names?.[0] ?? c.Id).replace(/^\//, ""));
  }
  return blocking;
}

/**
 * Removes an environment; see the module docs. Refuses a worktree with uncommitted or untracked
 * changes unless `force`.
 * @throws DockpackError `ENV_NOT_FOUND`, `ENV_DIRTY` (listing the changed files), `VOLUME_IN_USE`
 *   (naming the containers; nothing removed), `LOCKED`, `GIT_FAILED`
 */
export async function removeEnvironment(
  options: RemoveOptions,
  reporter: Reporter = silentReporter(),
): Promise<RemoveResult> {
  const recovered = await recoverDeadRuns(reporter);
  const ctx = await repoContext(options.cwd ?? process.cwd());
  const composeProject = composeProjectName(ctx.config.project, options.branch);
  return withEnvLock(composeProject, reporter, async () => {
    let env: Awaited<ReturnType<typeof findEnvironment>> | null = null;
    try {
      env = await findEnvironment(ctx, options.branch);
    } catch (err) {
      if (toDockpackError(err).code !== "ENV_NOT_FOUND") throw err;
      // the recovery just completed a killed remove of it, or rolled back its killed import/create
      const ran = recovered.find(
        (r) =>
          r.repo === ctx.root &&
          r.branch === options.branch &&
          ((r.kind === "remove" && r.outcome === "finished") ||
            ((r.kind === "import" || r.kind === "create") && r.outcome === "rolled-back")),
      );
      if (ran)
        return {
          branch: options.branch,
          path: ran.path ?? "",
          removedVolumes: ran.volumes,
          keptVolumes: [],
          branchDeleted: !(await branchExists(options.branch, ctx.root)),
          ...(ran.kind === "remove" ? {} : { rolledBack: true }),
        };
      const half = (await worktreeList(ctx.root)).find((w) => w.branch === options.branch);
      if (!half || !options.force || (await readEnvSettings(half.path).catch(() => null))) throw err;
      reporter.warn(`${half.path} has no environment settings (a half-created environment); removing it`);
      env = {
        path: half.path,
        settings: {
          branch: options.branch,
          project: ctx.config.project,
          compose_project: composeProject,
          volumes: Object.fromEntries(ctx.config.volumes.map((v) => [v, volumeName(composeProject, v)])),
          ports: {},
          url: null,
          created_at: "",
          project_directory: ".",
          volume_driver_opts: {},
          shared: { volumes: [], networks: [] },
        },
      };
    }
    const st = await status(env.path).catch(() => ({ dirty: false, entries: [] as string[] }));
    if (st.dirty && !options.force)
      throw new DockpackError(
        "ENV_DIRTY",
        `The worktree ${env.path} has uncommitted changes: ${st.entries.slice(0, 10).join(", ")}${st.entries.length > 10 ? ", …" : ""}`,
        { hint: "Commit or stash them, or pass --force to lose them.", details: { entries: st.entries } },
      );
    reporter.info(`stopping ${env.settings.compose_project}`);
    await composeDown(env.path, env.settings.compose_project).catch((err) => {
      // a half-created environment may have no compose file; its containers are none
      if (!options.force) throw err;
      reporter.debug(`docker-compose down: ${(err as Error).message}`);
    });
    const volumes: string[] = [];
    const keptVolumes: string[] = [];
    for (const v of Object.values(env.settings.volumes))
      if (await volumeExists(v)) (options.volumes ? volumes : keptVolumes).push(v);
    for (const v of volumes) {
      const users = await blockingContainers(v);
      if (users.length)
        throw new DockpackError(
          "VOLUME_IN_USE",
          `Volume ${v} of environment '${options.branch}' is used by container(s) ${users.join(", ")}; nothing was removed.`,
          {
            hint: "Remove those containers (docker rm -f NAME), then run env remove again.",
            details: { volume: v, containers: users },
          },
        );
    }
    // journaled first: a remove killed from here on is completed by the next dockpack command
    const journal = await Journal.open(
      { kind: "remove", repo: ctx.root, branch: options.branch, composeProject },
      reporter,
    );
    const branch = options.deleteBranch ? options.branch : null;
    const seq = await journal.will({ op: "removal", root: ctx.root, path: env.path, branch, volumes });
    const removedVolumes: string[] = [];
    try {
      await removeWorktreeAndBranch(ctx.root, env.path, branch);
      for (const v of volumes) {
        await removeVolumeSoon(v);
        removedVolumes.push(v);
      }
    } finally {
      // done or failed with an error to report: nothing for a recovery to complete
      await journal.mark(seq, "done");
      await journal.commit();
    }
    let branchDeleted = false;
    if (options.deleteBranch) branchDeleted = !(await branchExists(options.branch, ctx.root));
    return { branch: options.branch, path: env.path, removedVolumes, keptVolumes, branchDeleted };
  });
}
