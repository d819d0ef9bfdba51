/**
 * The helper image `dockpack/helper:1`: an image with an empty root filesystem and a dummy CMD,
 * made locally with the equivalent of `tar cf - -T /dev/null | docker import -c 'CMD [...]' -`
 * (Docker Engine API `POST /images/create?fromSrc=-`). No registry is contacted.
 *
 * dockpack never starts a container from it: a container is only *created* with a named volume
 * mounted, so that the volume's files can be read and written through the archive endpoints.
 */
import { Readable } from "node:stream";
import type Docker from "dockerode";
import { DockpackError } from "../errors.js";
import { engineMessage, statusCode } from "./client.js";

/** The helper image's tag. */
export const HELPER_IMAGE = "dockpack/helper:1";

/** Labels put on every helper container, so that leftovers can be found and removed. */
export const HELPER_LABEL = "io.dockpack.helper";

let pending: Promise<string> | undefined;

/**
 * Ensures `dockpack/helper:1` exists, importing it from an empty tar (1024 zero bytes: the
 * end-of-archive marker) when missing. Returns the tag.
 * Throws `HELPER_IMAGE_FAILED` when the engine refuses the import.
 */
export function ensureHelperImage(docker: Docker): Promise<string> {
  if (!pending) {
    pending = build(docker).catch((err) => {
      pending = undefined;
      throw err;
    });
  }
  return pending;
}

async function build(docker: Docker): Promise<string> {
  try {
    await docker.getImage(HELPER_IMAGE).inspect();
    return HELPER_IMAGE;
  } catch (err) {
    if (statusCode(err) !== 404) throw wrap(err);
  }
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
