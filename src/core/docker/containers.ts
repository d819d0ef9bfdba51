/**
 * Containers through the Docker Engine API (v1.41): list by label, stop and start. Used to find
 * a compose project's containers (label `com.docker.compose.project`) and to pause them while
 * their volumes are read.
 */
import type Docker from "dockerode";
import { DockpackError } from "../errors.js";
import { engineMessage, requireEngine, statusCode } from "./client.js";

/** One container, as listed by {@link listContainers}. */
export interface ContainerSummary {
  /** Full container id (64 hex). */
  id: string;
  /** Name without the leading slash, e.g. `myproj_db_1`. */
  name: string;
  /** Image reference the container was created from. */
  image: string;
  /** Engine state: `created`, `running`, `paused`, `restarting`, `exited`, `dead`, `removing`. */
  state: string;
  /** Human status, e.g. `Up 3 minutes`. */
  status: string;
  /** Container labels. */
  labels: Record<string, string>;
}

/**
 * Lists containers, running or not (`GET /containers/json?all=1`), that carry every given label
 * (`{ key: value }` matches `key=value`; an empty value matches the key with any value). Sorted by
 * name. Throws `ENGINE_UNAVAILABLE` or `CONTAINER_FAILED`.
 */
export async function listContainers(
  options: { labels?: Record<string, string> } = {},
): Promise<ContainerSummary[]> {
  const docker = await requireEngine();
  const label = Object.entries(options.labels ?? {}).map(([k, v]) => (v === "" ? k : `${k}=${v}`));
  try {
    const list = await docker.listContainers({ all: true, filters: label.length ? { label } : {} });
    return list
      .map((c) => ({
        id: c.Id,
        name: (c.Names?.[0] ?? c.Id).replace(/^\//, ""),
        image: c.Image,
        state: c.State,
        status: c.Status,
        labels: c.Labels ?? {},
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    throw new DockpackError("CONTAINER_FAILED", `Listing containers failed: ${engineMessage(err)}`, {
      cause: err,
    });
  }
}

/**
 * Stops the containers (`POST /containers/{id}/stop`, SIGTERM then SIGKILL after `timeoutSeconds`,
 * default 10 s), one after the other. Already stopped containers are fine (304). Throws
 * `CONTAINER_NOT_FOUND` naming the id, or `CONTAINER_FAILED`.
 */
export async function stopContainers(
  ids: string[],
  options: { timeoutSeconds?: number } = {},
): Promise<void> {
  await eachContainer(ids, "stop", (c) => c.stop({ t: options.timeoutSeconds ?? 10 }));
}

/**
 * Restarts the containers (`POST /containers/{id}/restart`, SIGTERM then SIGKILL after
 * `timeoutSeconds`, default 10 s, then start), one after the other. Unlike a start, a restart
 * also waits out a stop another client left in flight: the engine finishes a stop whose client
 * died (a start issued meanwhile is a no-op on the still running container, and the stop then
 * wins). A stopped container is simply started. Throws `CONTAINER_NOT_FOUND` naming the id, or
 * `CONTAINER_FAILED`.
 */
export async function restartContainers(
  ids: string[],
  options: { timeoutSeconds?: number } = {},
): Promise<void> {
  await eachContainer(ids, "restart", (c) => c.restart({ t: options.timeoutSeconds ?? 10 }));
}

/**
 * Starts the containers (`POST /containers/{id}/start`), one after the other. Already running
 * containers are fine (304). Throws `CONTAINER_NOT_FOUND` naming the id, or `CONTAINER_FAILED`.
 */
export async function startContainers(ids: string[]): Promise<void> {
  await eachContainer(ids, "start", (c) => c.start());
}

/**
 * Runs `call` on each container, one after the other; "not modified" (304: already stopped or
 * running) counts as done. Throws `CONTAINER_NOT_FOUND` or `CONTAINER_FAILED` naming `what` and the id.
 */
async function eachContainer(
  ids: string[],
  what: string,
  call: (container: Docker.Container) => Promise<unknown>,
): Promise<void> {
  const docker = await requireEngine();
  for (const id of ids) {
    try {
      await call(docker.getContainer(id));
    } catch (err) {
      if (statusCode(err) === 304) continue;
      throw failed(what, id, err);
    }
  }
}

function failed(what: string, id: string, err: unknown): DockpackError {
  if (statusCode(err) === 404) {
    return new DockpackError("CONTAINER_NOT_FOUND", `Container ${id.slice(0, 12)} does not exist.`, {
      hint: "It may have been removed meanwhile; list containers with 'docker ps -a'.",
      cause: err,
      details: { container: id },
    });
  }
  return new DockpackError(
    "CONTAINER_FAILED",
    `Could not ${what} container ${id.slice(0, 12)}: ${engineMessage(err)}`,
    {
      hint: "Check the container's logs with 'docker logs'.",
      cause: err,
      details: { container: id },
    },
  );
}
