/**
 * `tool compile --push REF`: builds the compiled build folder through the Docker Engine
 * (POST /build, the folder as context honouring its .dockerignore), tags the image REF and pushes
 * it through the engine (POST /images/{name}/push) with X-Registry-Auth from dockpack's
 * credential lookup — the same path as `targets build --push`.
 */
import { join } from "node:path";
import { requireEngine } from "../core/docker/client.js";
import { DockpackError } from "../core/errors.js";
import { formatReference, parseReference } from "../core/oci/reference.js";
import type { Reporter } from "../core/output.js";
import { packContext } from "../targets/context.js";
import { engineBuild } from "../targets/engine-build.js";
import { pushImage } from "../targets/engine-stream.js";

/** What {@link buildAndPush} pushed. */
export interface PushedImage {
  /** The reference pushed, e.g. `registry.example:5000/tools/upper:1.0.0`. */
  reference: string;
  /** `sha256:…` digest of the pushed manifest (as the registry stores it). */
  digest?: string;
  /** `sha256:…` local image ID (the digest of the image config). */
  image_id: string;
}

/**
 * Checks `ref` is a tag reference the engine can push (no digest; `docker://` is not accepted
 * here) and returns it in full form. @throws DockpackError `OCI_REFERENCE_INVALID` (usage).
 */
export function pushReference(ref: string): string {
  const parsed = parseReference(ref);
  if (parsed.digest || ref.startsWith("docker://"))
    throw new DockpackError("OCI_REFERENCE_INVALID", `--push needs registry/repository:tag, got '${ref}'.`, {
      hint: "Give a tag reference, e.g. localhost:5000/tools/upper:1.0.0.",
      usage: true,
    });
  return ref.includes(":") && ref.lastIndexOf(":") > ref.lastIndexOf("/") ? ref : formatReference(parsed);
}

/**
 * Builds `dir` (which holds the Dockerfile) as `ref` and pushes it.
 * @throws DockpackError `ENGINE_UNAVAILABLE`, `TOOL_IMAGE_BUILD_FAILED` (the failing step and the
 *   log tail in details), `TARGET_PUSH_FAILED` (the engine's push error)
 */
export async function buildAndPush(dir: string, ref: string, reporter: Reporter): Promise<PushedImage> {
  const docker = await requireEngine();
  const ctx = await packContext(dir, "Dockerfile", join(dir, "Dockerfile"));
  reporter.info(`building ${ref} from ${dir} (${ctx.entries} entries)`);
  const out = await engineBuild(docker, ctx.stream, { dockerfile: ctx.dockerfile, t: [ref] }, (l) =>
    reporter.info(l),
  );
  if (!out.imageId) {
    const why = out.failure ?? "the engine reported no image ID";
    throw new DockpackError(
      "TOOL_IMAGE_BUILD_FAILED",
      `Building ${ref} from ${dir} failed${out.step ? ` at ${out.step}` : ""}: ${why}`,
      {
        hint: "The build folder is kept: fix the cause (a base image missing from the engine? pass --base-image with a local one) and run its build.sh, or compile again with --force.",
        details: { reference: ref, step: out.step, error: why, logTail: out.tail },
      },
    );
  }
  reporter.info(`built ${out.imageId} as ${ref}; pushing`);
  const digest = await pushImage(docker, ref, (l) => reporter.info(l));
  if (digest) reporter.info(`pushed ${ref}@${digest}`);
  return { reference: ref, ...(digest ? { digest } : {}), image_id: out.imageId };
}
