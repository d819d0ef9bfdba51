/**
 * The helper image `dockpack/helper:1`: an image with an empty root filesystem and a dummy CMD,
 * made locally with the equivalent of `tar cf - -T /dev/null | docker import -c 'CMD [...]' -`
 * (Docker Engine API `POST /images/create?fromSrc=-`). No registry is contacted.
 *
 * dockpack never starts a container from it: a container is only *created* with a named volume
 * mounted, so that the volume's files can be read and written through the archive endpoints.
 */
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type Docker from "dockerode";
import { DockpackError } from "../errors.js";
import { pidAlive } from "../exec.js";
import { withLock } from "../fs.js";
import { engineMessage, statusCode } from "./client.js";

/** The helper image's tag. */
export const HELPER_IMAGE = "dockpack/helper:1";

/** Labels put on every helper container, so that leftovers can be found and removed. */
export const HELPER_LABEL = "io.dockpack.helper";

/**
 * The labels of a helper container made by this process: {@link HELPER_LABEL}, the creating
 * process's pid and host name (see {@link removeStaleHelpers}).
 */
export function helperLabels(): Record<string, string> {
  return { [HELPER_LABEL]: "1", "io.dockpack.pid": String(process.pid), "io.dockpack.host": hostname() };
}

/**
 * Removes helper containers left behind by dockpack processes on this host that no longer run
 * (killed with SIGKILL, power loss): those whose `io.dockpack.pid` is dead. Containers of live
 * processes and of other hosts are left alone. Returns how many were removed; never throws.
 */
export async function removeStaleHelpers(docker: Docker): Promise<number> {
  let removed = 0;
  try {
    const list = await docker.listContainers({ all: true, filters: { label: [HELPER_LABEL] } });
    for (const c of list) {
      const pid = Number(c.Labels?.["io.dockpack.pid"]);
      if (c.Labels?.["io.dockpack.host"] !== hostname() || !Number.isInteger(pid) || pid <= 0) continue;
      if (pidAlive(pid)) continue;
      try {
        await docker.getContainer(c.Id).remove({ force: true });
        removed++;
      } catch {
        // another process removed it
      }
    }
  } catch {
    // best effort
  }
  return removed;
}

let pending: Promise<string> | undefined;

/**
 * Ensures `dockpack/helper:1` exists, importing it from an empty tar (1024 zero bytes: the
 * end-of-archive marker) when missing, under a lock in the temp directory so that concurrent
 * processes import it once. The first call per process also removes stale helper containers
 * ({@link removeStaleHelpers}). Returns the tag.
 * Throws `HELPER_IMAGE_FAILED` when the engine refuses the import.
 */
export function ensureHelperImage(docker: Docker): Promise<string> {
  if (!pending) {
    pending = (async () => {
      await removeStaleHelpers(docker);
      if (await present(docker)) return HELPER_IMAGE;
      return withLock(join(tmpdir(), "dockpack-helper-image.lock"), () => build(docker), {
        wait: true,
        timeoutSeconds: 120,
      });
    })().catch((err) => {
      pending = undefined;
      throw err;
    });
  }
  return pending;
}

async function present(docker: Docker): Promise<boolean> {
  try {
    await docker.getImage(HELPER_IMAGE).inspect();
    return true;
  } catch (err) {
    if (statusCode(err) !== 404) throw wrap(err);
    return false;
  }
}

async function build(docker: Docker): Promise<string> {
  if (await present(docker)) return HELPER_IMAGE;
  try {
    const [repo, tag] = HELPER_IMAGE.split(":");
    const res = (await docker.importImage(Readable.from([Buffer.alloc(1024)]) as unknown as string, {
      repo,
      tag,
      changes: 'CMD ["/dockpack-helper-never-started"]',
    })) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(res, (err: Error | null, out: Array<{ error?: string }>) => {
        const failed = out?.find((o) => o.error);
        if (err || failed) reject(err ?? new Error(failed?.error));
        else resolve();
      });
    });
    return HELPER_IMAGE;
  } catch (err) {
    throw wrap(err);
  }
}

function wrap(err: unknown): DockpackError {
  return new DockpackError(
    "HELPER_IMAGE_FAILED",
    `Could not create the helper image ${HELPER_IMAGE}: ${engineMessage(err)}`,
    { hint: "Check that the Docker Engine is running and has free disk space.", cause: err },
  );
}
