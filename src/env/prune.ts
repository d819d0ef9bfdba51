/**
 * `pruneEnvironments`: finds the Docker volumes left by environments that are gone (removed
 * without `--volumes`, or whose worktree was deleted by hand) and removes them. A volume is an
 * orphan when compose (or dockpack) labelled it with a compose project of this repository's
 * project — `com.docker.compose.project` = `<project>-<branch>` — and no environment of the
 * repository has that compose project any more.
 */
import { requireEngine } from "../core/docker/client.js";
import { removeVolume } from "../core/docker/volumes.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { listEnvironments, repoContext } from "./environments.js";

/** Options of {@link pruneEnvironments}. */
export interface PruneOptions {
  /** A folder inside the repository (default: process cwd). */
  cwd?: string;
  /** Only list the orphans, remove nothing. */
  dryRun?: boolean;
}

/** One orphaned volume. */
export interface OrphanVolume {
  /** Docker volume name. */
  volume: string;
  /** Its compose project (`<project>-<branch>`). */
  composeProject: string;
  /** The logical volume name (`com.docker.compose.volume`), or null. */
  name: string | null;
}

/** Result of {@link pruneEnvironments}. */
export interface PruneResult {
  dryRun: boolean;
  /** The orphans found (removed unless dryRun). */
  volumes: OrphanVolume[];
  /** Volume names removed. */
  removed: string[];
}

/**
 * Lists (dryRun) or removes the volumes of environments of this repository that no longer exist.
 * @throws DockpackError `ENV_NOT_CONFIGURED` outside a configured repository, `ENGINE_UNAVAILABLE`,
 *   `VOLUME_IN_USE` when a container still uses one (nothing after it is removed)
 */
export async function pruneEnvironments(
  options: PruneOptions = {},
  reporter: Reporter = silentReporter(),
): Promise<PruneResult> {
  const cwd = options.cwd ?? process.cwd();
  const ctx = await repoContext(cwd);
  const live = new Set((await listEnvironments({ cwd })).environments.map((e) => e.composeProject));
  const prefix = `${ctx.config.project}-`;
  const docker = await requireEngine();
  const list = await docker.listVolumes({ filters: { label: ["com.docker.compose.project"] } });
  const volumes: OrphanVolume[] = [];
  for (const v of list.Volumes ?? []) {
    const project = v.Labels?.["com.docker.compose.project"] ?? "";
    if (!project.startsWith(prefix) || live.has(project)) continue;
    volumes.push({
      volume: v.Name,
      composeProject: project,
      name: v.Labels?.["com.docker.compose.volume"] ?? null,
    });
  }
  volumes.sort((a, b) => a.volume.localeCompare(b.volume));
  const removed: string[] = [];
  if (!options.dryRun)
    for (const v of volumes) {
      reporter.info(`removing volume ${v.volume} (environment ${v.composeProject} is gone)`);
      await removeVolume(v.volume);
      removed.push(v.volume);
    }
  return { dryRun: Boolean(options.dryRun), volumes, removed };
}
