/**
 * Images in the local Docker Engine (API v1.41): existence, inspect, tag, and streaming
 * `docker save` / `docker load` (docker-archive tars: `manifest.json`, `repositories`, config
 * and layer blobs; OCI layout entries too with Docker ≥ 25). Never pulls.
 */

import type { Readable } from "node:stream";
import type Docker from "dockerode";
import { interrupted, onAbort } from "../abort.js";
import { DockpackError } from "../errors.js";
import { engineMessage, requireEngine, statusCode } from "./client.js";

function notFound(ref: string, err?: unknown): DockpackError {
  return new DockpackError("IMAGE_NOT_FOUND", `Image '${ref}' is not in the local Docker Engine.`, {
    hint: "List local images with 'docker images'; dockpack never pulls, build or load the image first.",
    cause: err,
    details: { image: ref },
  });
}

function failed(what: string, ref: string, err: unknown): DockpackError {
  return new DockpackError("IMAGE_FAILED", `${what} of image '${ref}' failed: ${engineMessage(err)}`, {
    hint: "Check that the Docker Engine is running and has free disk space.",
    cause: err,
    details: { image: ref },
  });
}

/**
 * True when `ref` can be put in an Engine API path as it is: the characters of image names, tags,
 * digests and IDs only ([A-Za-z0-9] first, then `._-/:@`), no `..`, no `//`, at most 1024
 * characters. Anything else (a leading `/`, `..`, `?`, `%`, spaces) names no image and would change
 * the request instead: the engine answers `/images//etc/passwd/json` with a redirect that the
 * client followed to another host.
 */
export function isSafeImageRef(ref: string): boolean {
  return ref.length <= 1024 && /^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/.test(ref) && !/\.\.|\/\//.test(ref);
}

function unsafe(ref: string): DockpackError {
  return new DockpackError(
    "IMAGE_NOT_FOUND",
    `'${ref.slice(0, 200)}' is not an image name, tag, digest or ID.`,
    {
      hint: "Name an image as repository:tag, repository@sha256:… or by its ID.",
      details: { image: ref.slice(0, 1024) },
    },
  );
}

/** True when `ref` (name:tag, id or digest reference) is a local image (GET /images/{ref}/json). */
export async function imageExists(ref: string): Promise<boolean> {
  if (!isSafeImageRef(ref)) return false;
  const docker = await requireEngine();
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    throw failed("Inspection", ref, err);
  }
}

/**
 * The engine's image inspect document (GET /images/{ref}/json): `Id` (`sha256:…` config digest),
 * `RepoTags`, `RootFS.Layers` (diff_ids), `Size` (bytes), `Config`, `Architecture`, `Os`, ….
 * Throws `IMAGE_NOT_FOUND` (also when `ref` is no image reference at all: {@link isSafeImageRef}).
 */
export async function inspectImage(ref: string): Promise<Docker.ImageInspectInfo> {
  if (!isSafeImageRef(ref)) throw unsafe(ref);
  const docker = await requireEngine();
  try {
    return await docker.getImage(ref).inspect();
  } catch (err) {
    if (statusCode(err) === 404) throw notFound(ref, err);
    throw failed("Inspection", ref, err);
  }
}

/**
 * Tags the image `id` (id or reference) as `repoTag` (`repo[:tag]`, tag default `latest`;
 * POST /images/{id}/tag). Moves the tag when it exists. Throws `IMAGE_NOT_FOUND`,
 * `IMAGE_TAG_INVALID` (usage) for a malformed reference.
 */
export async function tagImage(id: string, repoTag: string): Promise<void> {
  if (!isSafeImageRef(id)) throw unsafe(id);
  const docker = await requireEngine();
  const m = /^(.+?)(?::([\w][\w.-]{0,127}))?$/.exec(repoTag);
  if (!m || m[1].includes("@") || /[A-Z\s]/.test(m[1])) {
    throw new DockpackError(
      "IMAGE_TAG_INVALID",
      `'${repoTag}' is not a valid image reference (repo[:tag]).`,
      {
        hint: "Use lowercase names like example/app:1.0.",
        usage: true,
      },
    );
  }
  try {
    await docker.getImage(id).tag({ repo: m[1], tag: m[2] ?? "latest" });
  } catch (err) {
    if (statusCode(err) === 404) throw notFound(id, err);
    if (statusCode(err) === 400) {
      throw new DockpackError(
        "IMAGE_TAG_INVALID",
        `'${repoTag}' is not a valid image reference: ${engineMessage(err)}`,
        {
          usage: true,
          cause: err,
        },
      );
    }
    throw failed("Tagging", id, err);
  }
}

/**
 * Streams `docker save` of one or more images (GET /images/get?names=…) as an uncompressed
 * docker-archive tar. Nothing is buffered. Checks first that each ref exists: `IMAGE_NOT_FOUND`
 * names the first missing one.
 */
export async function saveImage(refs: string[]): Promise<Readable> {
  const docker = await requireEngine();
  if (refs.length === 0) {
    throw new DockpackError("IMAGE_FAILED", "saveImage needs at least one image reference.", { usage: true });
  }
  for (const ref of refs) {
    if (!(await imageExists(ref))) throw notFound(ref);
  }
  try {
    // dockerode's getImages (GET /images/get?names=a&names=b) is missing from its type declarations.
    const api = docker as unknown as { getImages(opts: { names: string[] }): Promise<Readable> };
    const out = await api.getImages({ names: refs });
    // the ambient abort signal (core/abort.ts) cuts the download
    const off = onAbort(() => out.destroy());
    out.once("close", off);
    return out;
  } catch (err) {
    throw failed("docker save", refs.join(", "), err);
  }
}

/** Result of {@link loadImage}. */
export interface LoadResult {
  /** What the engine loaded: `repo:tag` for tagged images, `sha256:…` ids for untagged ones. */
  loaded: string[];
}

/**
 * Streams a docker-archive tar into the engine (`docker load`, POST /images/load?quiet=1) and
 * returns what it loaded. The input is streamed, not buffered. Throws `IMAGE_LOAD_FAILED` with
 * the engine's message (e.g. a broken or truncated archive) or the input stream's error.
 */
export async function loadImage(tar: Readable): Promise<LoadResult> {
  const docker = await requireEngine();
  let inputError: unknown;
  tar.once("error", (err) => {
    inputError = err;
  });
  // the ambient abort signal (core/abort.ts) cuts the upload
  const off = onAbort(() => tar.destroy(interrupted()));
  tar.once("close", off);
  const fail = (err: unknown) =>
    new DockpackError("IMAGE_LOAD_FAILED", `docker load failed: ${engineMessage(err)}`, {
      hint: "Check that the input is a complete docker-archive (docker save) tar.",
      cause: err,
    });
  let res: NodeJS.ReadableStream;
  try {
    res = (await docker.loadImage(tar as unknown as string, { quiet: true })) as NodeJS.ReadableStream;
  } catch (err) {
    throw fail(inputError ?? err);
  }
  const messages: Array<{ stream?: string; error?: string; errorDetail?: { message?: string } }> = [];
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(res, (err: Error | null, out: typeof messages) => {
      if (err) reject(fail(err));
      else {
        messages.push(...(out ?? []));
        resolve();
      }
    });
  });
  if (inputError) throw fail(inputError);
  const bad = messages.find((m) => m.error || m.errorDetail);
  if (bad) throw fail(new Error(bad.errorDetail?.message ?? bad.error));
  const loaded: string[] = [];
  for (const m of messages) {
    for (const line of (m.stream ?? "").split("\n")) {
      const hit = /^Loaded image(?: ID)?: (.+)$/.exec(line.trim());
      if (hit) loaded.push(hit[1]);
    }
  }
  return { loaded };
}
