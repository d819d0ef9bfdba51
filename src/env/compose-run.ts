/**
 * Running an environment's compose project, and pausing it safely: every call to docker-compose
 * and every container stop/start an environment makes is in this file (and the volume removal
 * that has to wait for helper containers).
 *
 * Compose runs with the per-environment file `.dockpack/compose.yml`, the compose project name of
 * the environment, and `--project-directory <worktree>` so that relative paths in the user's
 * compose files (build contexts, bind mounts, env_file) and the worktree's `.env` keep working.
 */

import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { throwIfAborted, withoutSignal } from "../core/abort.js";
import { getDocker } from "../core/docker/client.js";
import { runCompose } from "../core/docker/compose.js";
import { listContainers, startContainers, stopContainers } from "../core/docker/containers.js";
import { HELPER_LABEL } from "../core/docker/helper-image.js";
import { removeVolume } from "../core/docker/volumes.js";
import { toDockpackError } from "../core/errors.js";
import { onCleanup } from "../core/fs.js";
import type { Reporter } from "../core/output.js";
import { ENV_COMPOSE_FILE } from "./settings.js";

function composeArgs(worktree: string, args: string[]) {
  return {
    cwd: worktree,
    files: [join(worktree, ENV_COMPOSE_FILE)],
    args: ["--project-directory", worktree, ...args],
  };
}

/** `docker-compose up -d` for the environment in `worktree`. Throws `COMMAND_FAILED`. */
export async function composeUp(worktree: string, composeProject: string): Promise<void> {
  await runCompose({ projectName: composeProject, ...composeArgs(worktree, ["up", "-d", "--no-build"]) });
}

/** `docker-compose down` (containers and networks removed, named volumes kept). */
export async function composeDown(worktree: string, composeProject: string): Promise<void> {
  await runCompose({ projectName: composeProject, ...composeArgs(worktree, ["down", "--remove-orphans"]) });
}

/** Ids of the running containers of a compose project. */
export async function runningContainers(composeProject: string): Promise<string[]> {
  const list = await listContainers({ labels: { "com.docker.compose.project": composeProject } });
  return list.filter((c) => c.state === "running").map((c) => c.id);
}

/**
 * Runs `fn` with the running containers of `composeProject` stopped, and starts them again
 * afterwards — also when `fn` fails or the ambient abort signal (core/abort.ts) fires, and,
 * as a safety net when the process ends first, through a core/fs cleanup hook (with a synchronous `docker start` for a second Ctrl-C or `process.exit`).
 */
export async function withStoppedContainers<T>(
  composeProject: string,
  reporter: Reporter,
  fn: () => Promise<T>,
): Promise<T> {
  const ids = await runningContainers(composeProject);
  if (ids.length === 0) return fn();
  reporter.info(`stopping ${ids.length} running container(s) of ${composeProject}`);
  // one shared start: a signal arriving while the normal path is starting them again must wait
  // for that same start instead of exiting before it happened
  let restarting: Promise<void> | undefined;
  let restartedSync = false;
  const restart = () => {
    restarting ??= withoutSignal(() => startContainers(ids));
    return restarting;
  };
  // the synchronous variant runs when the process must exit at once (a second Ctrl-C, process.exit)
  const restartSync = () => {
    if (restartedSync) return;
    restartedSync = true;
    execFileSync("docker", ["start", ...ids], { stdio: "ignore", timeout: 60_000 });
  };
  const unregister = onCleanup(restart, restartSync);
  try {
    await stopContainers(ids);
    throwIfAborted();
    return await fn();
  } finally {
    try {
      reporter.info(`starting ${ids.length} container(s) of ${composeProject} again`);
      await restart();
    } finally {
      unregister();
    }
  }
}

/**
 * Removes a Docker volume, retrying for up to `seconds` while the engine still reports it in use
 * (`VOLUME_IN_USE`): after an aborted upload the engine may need a moment to let go of the
 * helper container. Other errors are thrown at once.
 */
export async function removeVolumeSoon(name: string, seconds = 15): Promise<void> {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    try {
      await removeVolume(name);
      return;
    } catch (err) {
      if (toDockpackError(err).code !== "VOLUME_IN_USE" || Date.now() > until) throw err;
      // a helper container left by an aborted upload: remove it, then try again
      for (const c of await listContainers({ labels: { [HELPER_LABEL]: "1", "io.dockpack.volume": name } }))
        await getDocker()
          .getContainer(c.id)
          .remove({ force: true })
          .catch(() => {});
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
