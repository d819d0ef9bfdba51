/**
 * Running an environment's compose project, and pausing it safely: every call to docker-compose
 * and every container stop/start an environment makes is in this file (and the volume removal
 * that has to wait for helper containers).
 *
 * Compose runs with the per-environment file `.dockpack/compose.yml` (regenerated from the model
 * compose resolves at every `up`/`build`), the compose project name of the environment, and
 * `--project-directory` set to compose's own project directory in the worktree (the first compose
 * file's folder), so the `.env` there is read as compose would (e.g. `COMPOSE_PROFILES`).
 */

import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { throwIfAborted, withoutSignal } from "../core/abort.js";
import { getDocker } from "../core/docker/client.js";
import { composeCommand, runCompose } from "../core/docker/compose.js";
import { listContainers, startContainers, stopContainers } from "../core/docker/containers.js";
import { HELPER_LABEL } from "../core/docker/helper-image.js";
import { removeVolume } from "../core/docker/volumes.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { onCleanup } from "../core/fs.js";
import type { Reporter } from "../core/output.js";
import type { PublishedPort } from "./compose-file.js";
import type { EnvConfig } from "./config.js";
import { portIsFree } from "./naming.js";
import {
  ENV_COMPOSE_FILE,
  type EnvSettings,
  environmentUrl,
  readEnvSettings,
  saveEnvSettings,
  writeEnvSettingsWithModel,
} from "./settings.js";

async function composeArgs(worktree: string, args: string[]) {
  const settings = await readEnvSettings(worktree).catch(() => null);
  return {
    cwd: worktree,
    files: [join(worktree, ENV_COMPOSE_FILE)],
    projectDirectory: resolve(worktree, settings?.project_directory ?? "."),
    args,
  };
}

/**
 * `compose up -d` for the environment in `worktree`: builds the images of `build:` services
 * that do not exist yet (all of them with `build`), as compose names them for the project.
 * Throws `COMPOSE_FAILED`.
 */
export async function composeUp(
  worktree: string,
  composeProject: string,
  options: { build?: boolean; offline?: boolean } = {},
): Promise<void> {
  // offline: every image is known to be present; compose must neither pull nor build
  const offline = options.offline
    ? [...(composeCommand().major === 2 ? ["--pull", "never"] : []), "--no-build"]
    : [];
  await runCompose({
    projectName: composeProject,
    ...(await composeArgs(worktree, ["up", "-d", ...(options.build ? ["--build"] : []), ...offline])),
  });
}

/** `compose build` for the environment in `worktree`. Throws `COMPOSE_FAILED`. */
export async function composeBuild(worktree: string, composeProject: string): Promise<void> {
  await runCompose({ projectName: composeProject, ...(await composeArgs(worktree, ["build"])) });
}

/** `docker-compose down` (containers and networks removed, named volumes kept). */
export async function composeDown(worktree: string, composeProject: string): Promise<void> {
  await runCompose({
    projectName: composeProject,
    ...(await composeArgs(worktree, ["down", "--remove-orphans"])),
  });
}

/**
 * The host ports the engine published for the compose project's containers
 * (`GET /containers/json`), matched to the model's ports by service, container port, protocol
 * and host IP: published and container-only (ephemeral) ones alike. Key → host port.
 */
export async function enginePorts(
  composeProject: string,
  ports: PublishedPort[],
): Promise<Record<string, number>> {
  const list = await getDocker().listContainers({
    all: false,
    filters: { label: [`com.docker.compose.project=${composeProject}`] },
  });
  const used = new Set<string>();
  const out: Record<string, number> = {};
  for (const p of ports) {
    for (const c of list) {
      if (c.Labels?.["com.docker.compose.service"] !== p.service) continue;
      const hit = (c.Ports ?? []).find(
        (b) =>
          b.PrivatePort === p.container &&
          b.Type === p.protocol &&
          b.PublicPort !== undefined &&
          (p.hostIp ? b.IP === p.hostIp : !b.IP || b.IP === "0.0.0.0" || b.IP === "::") &&
          !used.has(`${c.Id}:${b.PublicPort}/${b.Type}`),
      );
      if (!hit?.PublicPort) continue;
      used.add(`${c.Id}:${hit.PublicPort}/${hit.Type}`);
      out[p.key] = hit.PublicPort;
      break;
    }
  }
  return out;
}

/** Host ports published by the running containers of a compose project. */
async function ownHostPorts(composeProject: string): Promise<Set<number>> {
  const list = await getDocker().listContainers({
    filters: { label: [`com.docker.compose.project=${composeProject}`] },
  });
  return new Set(
    list.flatMap((c) => (c.Ports ?? []).map((b) => b.PublicPort).filter((x) => x !== undefined)),
  );
}

/** Options of {@link upEnvironment}. */
export interface UpOptions {
  /** Build every `build:` image again (`up --build`); default: only missing ones. */
  build?: boolean;
  /** Only build (`compose build`), do not start. */
  buildOnly?: boolean;
  /**
   * Never pull or build: every service's image must be in the engine already (`ENV_IMAGE_MISSING`
   * naming the first missing one otherwise); compose runs with `--no-build` (v2: `--pull never`).
   */
  offline?: boolean;
}

/**
 * Starts (or only builds) an environment: regenerates `.dockpack/compose.yml` from the model
 * compose resolves now (host ports kept), runs `compose up -d` (or `compose build`), then reads
 * the published ports back from the engine (ephemeral ones included), records them and the URL
 * in `.dockpack/env.yml`.
 * @returns the updated settings
 * @throws DockpackError `COMPOSE_CONFIG_FAILED`, `COMPOSE_FAILED`, `ENV_NO_FREE_PORT`
 */
export async function upEnvironment(
  config: EnvConfig,
  worktreesRoot: string,
  worktree: string,
  settings: EnvSettings,
  options: UpOptions,
  reporter: Reporter,
): Promise<EnvSettings> {
  const cp = settings.compose_project;
  const regenerate = async () => {
    // the environment keeps its host ports unless another program took one meanwhile
    const keep = { ...settings.ports };
    const own = await ownHostPorts(cp);
    for (const [key, port] of Object.entries(keep))
      if (key.includes("/tcp") && !own.has(port) && !(await portIsFree(port))) {
        reporter.warn(`host port ${port} of ${key} is taken now; ${settings.branch} gets another one`);
        delete keep[key];
      }
    const made = await writeEnvSettingsWithModel(config, worktree, worktreesRoot, settings.branch, keep);
    made.settings.created_at = settings.created_at;
    return made;
  };
  let { settings: fresh, model } = await regenerate();
  if (options.buildOnly) {
    reporter.info(`building the images of ${cp}`);
    await composeBuild(worktree, cp);
    return fresh;
  }
  if (options.offline) {
    if (options.build)
      throw new DockpackError("USAGE", "--offline and --build exclude each other.", { usage: true });
    // Loaded here: package-images pulls in the delta and OCI code `env list` never needs (start-up).
    await (await import("./package-images.js")).serviceImages(worktree, config.compose_files, cp);
  }
  reporter.info(`starting ${cp}`);
  try {
    await composeUp(worktree, cp, { build: options.build, offline: options.offline });
  } catch (err) {
    // another program took a host port between our check and compose's bind: once more with fresh ports
    if (!/port is already allocated|address already in use/i.test(toDockpackError(err).message)) throw err;
    reporter.warn(`a host port of ${cp} was taken while it started; trying again with other ports`);
    ({ settings: fresh, model } = await regenerate());
    await composeUp(worktree, cp, { build: options.build, offline: options.offline });
  }
  const engine = await enginePorts(cp, model.ports);
  const published = new Set(model.ports.filter((p) => p.host !== 0).map((p) => p.key));
  const ports: Record<string, number> = {};
  for (const p of model.ports) {
    const host = published.has(p.key) ? (fresh.ports[p.key] ?? engine[p.key]) : engine[p.key];
    if (host !== undefined) ports[p.key] = host;
  }
  const final = { ...fresh, ports, url: environmentUrl(config, model.ports, ports) };
  await saveEnvSettings(worktree, final);
  return final;
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
