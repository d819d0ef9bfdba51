/**
 * Import of the image section (package-images.ts), in two steps so that nothing reaches the
 * engine before every image is known to be whole:
 *
 * 1. {@link prepareImages} (before the import changes anything): the images the engine lacks
 *    (by image ID) have their delta members copied out of the package (re-checked against
 *    checksums.sha256) and rebuilt with `delta apply` into docker-archives in a temporary folder:
 *    every layer is checked against its diff_id and the config against the image ID, with the
 *    same codes as `delta apply` (`DIGEST_MISMATCH`, `DELTA_CONFIG_MISMATCH`, `DELTA_BASE_MISSING`
 *    when the engine lacks a layer the package expected the receiver to have, …). Layers shared
 *    with an image earlier in the section come from that image's archive.
 * 2. {@link loadImages}: each journaled first (op `image`, package-images-undo.ts), then loaded
 *    (`docker load`) and tagged with the names the compose files expect in the target compose
 *    project; an image the engine already has with the same ID is not loaded again (only a
 *    missing tag is added). Rollback removes only the images the import loaded and puts moved
 *    tags back.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { readTarStrict } from "../core/archive.js";
import { verifyingStream } from "../core/digest.js";
import { inspectImage, loadImage, tagImage } from "../core/docker/images.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { makeTempDir, removeTempDir } from "../core/fs.js";
import type { Reporter } from "../core/output.js";
import { applyDelta } from "../delta/apply.js";
import type { Journal } from "./journal.js";
import type { PackageImage, PackageMetadata } from "./package-format.js";
import { expectedTags } from "./package-images.js";

/** One image of the section, ready to load. */
export interface PreparedImage {
  entry: PackageImage;
  /** The docker-archive rebuilt from the delta; absent when the engine has the image already. */
  archive?: string;
}

/** Result of {@link prepareImages}; `close` removes the temporary folder. */
export interface PreparedImages {
  images: PreparedImage[];
  close: () => Promise<void>;
}

/** True when the engine has an image with exactly this ID. Throws when the engine fails. */
export async function engineHas(id: string): Promise<boolean> {
  try {
    return (await inspectImage(id)).Id === id;
  } catch (e) {
    if (toDockpackError(e).code === "IMAGE_NOT_FOUND") return false;
    throw e;
  }
}

/** Copies `members` of the package into `dir` (flat, by base name), checked against `checksums`. */
async function extractMembers(
  file: string,
  members: Set<string>,
  checksums: Map<string, string>,
  dir: string,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await readTarStrict(createReadStream(file, { highWaterMark: 1024 * 1024 }), async (entry, body) => {
    if (!members.has(entry.name) || entry.type !== "file" || out.has(entry.name)) {
      body.resume();
      return;
    }
    const target = join(dir, entry.name.slice("images/".length));
    await pipeline(
      body,
      verifyingStream(checksums.get(entry.name) ?? "", `${file}: member ${entry.name}`),
      createWriteStream(target, { mode: 0o600 }),
    );
    out.set(entry.name, target);
  });
  for (const m of members)
    if (!out.has(m)) throw new DockpackError("PACKAGE_MEMBER_MISSING", `${file}: member '${m}' is missing`);
  return out;
}

/**
 * Copies the image members `members` of the package `file` into `dir`, each checked against the
 * sha256 metadata.json records for it (`DIGEST_MISMATCH`). Returns member → path. Used by push
 * (registry-images.ts) to rebuild an image the pushing engine lacks.
 */
export async function extractImageMembers(
  file: string,
  meta: PackageMetadata,
  dir: string,
): Promise<Map<string, string>> {
  const sums = new Map((meta.images ?? []).map((i) => [i.member, i.sha256]));
  return extractMembers(file, new Set(sums.keys()), sums, dir);
}

/**
 * Rebuilds and checks the images the engine lacks (step 1 of the module docs). Returns them in
 * section order; call `close` when done (also after a failure of a later step).
 * @throws DockpackError with `delta apply`'s codes (`DIGEST_MISMATCH`, `DELTA_CONFIG_MISMATCH`,
 *   `DELTA_BASE_MISSING`, `DELTA_PACKAGE_INVALID`, …), `ENGINE_UNAVAILABLE`, `NO_SPACE`
 */
export async function prepareImages(
  file: string,
  meta: PackageMetadata,
  checksums: Map<string, string>,
  composeProject: string,
  reporter: Reporter,
): Promise<PreparedImages> {
  const dir = await makeTempDir("dockpack-import-images-");
  const close = () => removeTempDir(dir);
  try {
    const images: PreparedImage[] = [];
    for (const entry of meta.images ?? []) images.push({ entry });
    const missing = [];
    for (const i of images) if (!(await engineHas(i.entry.id))) missing.push(i);
    if (missing.length === 0) return { images, close };
    const deltas = await extractMembers(file, new Set(missing.map((i) => i.entry.member)), checksums, dir);
    const archives: string[] = [];
    for (const [n, i] of missing.entries()) {
      const archive = join(dir, `${n}.tar`);
      reporter.info(
        `rebuilding image ${i.entry.id.slice(0, 19)} (${i.entry.services.map((s) => s.service).join(", ")})`,
      );
      const res = await applyDelta(
        {
          package: deltas.get(i.entry.member) as string,
          output: archive,
          format: "docker-archive",
          baseArchives: archives.slice(),
          imageName: expectedTags(i.entry, composeProject)[0],
          force: true,
        },
        reporter,
      );
      if (res.imageId !== i.entry.id)
        throw new DockpackError(
          "DELTA_CONFIG_MISMATCH",
          `${file}: image ${i.entry.member} rebuilt as ${res.imageId}, metadata.json names ${i.entry.id}.`,
          { hint: "The package is corrupted or forged; export it again." },
        );
      archives.push(archive);
      i.archive = archive;
    }
    return { images, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** What {@link loadImages} did per image. */
export interface LoadedImage {
  id: string;
  tags: string[];
  /** True when the import loaded it; false when the engine had it already. */
  loaded: boolean;
}

/**
 * Loads and tags the prepared images (step 2 of the module docs), each recorded in `journal`
 * before it changes the engine.
 * @throws DockpackError `IMAGE_LOAD_FAILED`, `DELTA_LOAD_MISMATCH` (the engine loaded another ID)
 */
export async function loadImages(
  prepared: PreparedImages,
  composeProject: string,
  journal: Journal,
  reporter: Reporter,
): Promise<LoadedImage[]> {
  const out: LoadedImage[] = [];
  for (const i of prepared.images) {
    journal.checkpoint();
    const id = i.entry.id;
    const tags = expectedTags(i.entry, composeProject);
    const moves: { tag: string; previous: string | null }[] = [];
    for (const tag of tags) {
      const previous = await inspectImage(tag).then(
        (x) => x.Id,
        () => null,
      );
      if (previous !== id) moves.push({ tag, previous });
    }
    const added = i.archive !== undefined && !(await engineHas(id));
    out.push({ id, tags, loaded: added });
    if (!added && moves.length === 0) continue;
    await journal.will({ op: "image", id, added, tags: moves });
    if (added) {
      reporter.info(`loading image ${tags.join(", ")} (${id.slice(0, 19)})`);
      await loadImage(createReadStream(i.archive as string, { highWaterMark: 1024 * 1024 }));
      if (!(await engineHas(id)))
        throw new DockpackError("DELTA_LOAD_MISMATCH", `The engine did not load image ${id}.`, {
          hint: "Check the Docker Engine's log and free disk space.",
        });
    }
    for (const m of moves) await tagImage(id, m.tag);
  }
  return out;
}
