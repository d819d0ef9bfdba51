/**
 * The image section of an environment package (`packages export --images`): the images every
 * compose service of the environment runs, as the resolved compose model names them (`image:`,
 * or for a build-only service the name compose gives the built image), each distinct image ID
 * once, as one dockpack delta package (src/delta, format.ts) in a member `images/<n>-<id12>.delta`.
 *
 * Each image's delta is made against what the receiver will have when it is loaded:
 * - the images earlier in the section (so layers shared across services are stored once);
 * - with `missing-from INVENTORY` (a `dockpack delta inventory` file of the receiver's engine):
 *   the inventory's layers (referenced by diff_id, not shipped), and those of its images that this
 *   engine has too as byte bases, so a changed layer goes as a binary delta against the most
 *   similar layer the receiver has (similarity.ts) instead of whole.
 * metadata.json lists every image (member, ID, services, sizes: package-format.ts), so validate
 * checks the section without an engine (package-images-check.ts); import rebuilds and loads it
 * (package-images-load.ts).
 */
import { createReadStream } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MemberInfo, PackageTarWriter } from "../core/archive/file-writer.js";
import { composeCommand } from "../core/docker/compose.js";
import { inspectImage } from "../core/docker/images.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { makeTempDir, removeTempDir } from "../core/fs.js";
import type { Reporter } from "../core/output.js";
import { createDelta } from "../delta/create.js";
import { type LayerInventory, readInventoryIfAny } from "../delta/inventory.js";
import { resolveComposeModel } from "./compose-model.js";
import type { PackageImage } from "./package-format.js";
import type { ImagesMode } from "./package-images-option.js";

export { type ImagesMode, parseImagesOption } from "./package-images-option.js";

/** Adds `:latest` to a reference without a tag (and without a digest). */
export function withTag(ref: string): string {
  if (ref.includes("@")) return ref;
  const last = ref.slice(ref.lastIndexOf("/") + 1);
  return last.includes(":") ? ref : `${ref}:latest`;
}

/**
 * The name compose gives the image of a build-only service: `<project>_<service>` (compose v1)
 * or `<project>-<service>` (v2), tag `latest`.
 */
export function builtImageName(
  composeProject: string,
  service: string,
  major = composeCommand().major,
): string {
  return `${composeProject}${major === 1 ? "_" : "-"}${service}:latest`;
}

/** The tags an image of the section needs in the engine for `composeProject`'s services. */
export function expectedTags(image: PackageImage, composeProject: string): string[] {
  return [
    ...new Set(
      image.services.map((s) => (s.image ? withTag(s.image) : builtImageName(composeProject, s.service))),
    ),
  ];
}

export { renderImageLines } from "./package-images-render.js";

/** One distinct image the environment's services use. */
export interface ServiceImage {
  id: string;
  services: { service: string; image?: string }[];
  sourceTags: string[];
  diffIds: string[];
}

/**
 * The images of the environment in `worktree` (compose files `files`, project `composeProject`),
 * in service order, each image ID once. Throws `ENV_IMAGE_MISSING` naming the service and the
 * image when the engine lacks one (build or pull it first: `dockpack env build`).
 */
export async function serviceImages(
  worktree: string,
  files: string[],
  composeProject: string,
): Promise<ServiceImage[]> {
  const model = await resolveComposeModel(worktree, files);
  const defs = (model.doc.services ?? {}) as Record<string, { image?: unknown; build?: unknown }>;
  const byId = new Map<string, ServiceImage>();
  for (const service of model.services) {
    const def = defs[service] ?? {};
    const image = typeof def.image === "string" ? def.image : undefined;
    const ref = image ?? builtImageName(composeProject, service);
    let info: Awaited<ReturnType<typeof inspectImage>>;
    try {
      info = await inspectImage(ref);
    } catch (e) {
      if (toDockpackError(e).code !== "IMAGE_NOT_FOUND") throw e;
      throw new DockpackError(
        "ENV_IMAGE_MISSING",
        `Service '${service}' runs image '${ref}', which the engine does not have.`,
        {
          hint: image
            ? `Load or build '${ref}' first; dockpack never pulls.`
            : "Build the environment's images first ('dockpack env build BRANCH' or 'env up').",
          details: { service, image: ref },
        },
      );
    }
    const have = byId.get(info.Id);
    const entry = { service, ...(image ? { image } : {}) };
    if (have) have.services.push(entry);
    else
      byId.set(info.Id, {
        id: info.Id,
        services: [entry],
        sourceTags: info.RepoTags ?? [],
        diffIds: info.RootFS?.Layers ?? [],
      });
  }
  return [...byId.values()];
}

/** Repository part of a `name:tag`. */
function repoOf(tag: string): string {
  const colon = tag.lastIndexOf(":");
  return colon > tag.lastIndexOf("/") ? tag.slice(0, colon) : tag;
}

/**
 * Images of `inventory` this engine has too (same ID) that can serve as byte bases for `image`:
 * sharing a layer or a repository name with it; at most three, most shared layers first.
 */
async function byteBases(inv: LayerInventory, image: ServiceImage): Promise<string[]> {
  const repos = new Set(image.sourceTags.map(repoOf));
  const mine = new Set(image.diffIds);
  const scored: { id: string; score: number }[] = [];
  for (const i of inv.images) {
    if (i.id === image.id) continue;
    const shared = i.diffIds.filter((d) => mine.has(d)).length;
    const sameRepo = i.repoTags.some((t) => repos.has(repoOf(t)));
    if (!shared && !sameRepo) continue;
    const local = await inspectImage(i.id).catch(() => null);
    if (local?.Id !== i.id) continue;
    scored.push({ id: i.id, score: shared + (sameRepo ? 1000 : 0) });
  }
  return scored
    .sort((a, b) => b.score - a.score)
    .slice(0, 3)
    .map((s) => `docker-daemon:${s.id}`);
}

/** Reads the receiver's inventory. Throws `INVENTORY_INVALID`, `INVENTORY_NOT_FOUND`. */
async function readInventory(file: string): Promise<LayerInventory> {
  const inv = await readInventoryIfAny(file);
  if (inv) return inv;
  const exists = await stat(file).then(
    () => true,
    () => false,
  );
  throw new DockpackError(
    exists ? "INVENTORY_INVALID" : "INVENTORY_NOT_FOUND",
    exists ? `${file}: not a dockpack layer inventory.` : `The inventory ${file} does not exist.`,
    { hint: "Write one on the receiving machine with 'dockpack delta inventory -o FILE'." },
  );
}

/** Result of {@link writeImageSection}. */
export interface ImageSection {
  images: PackageImage[];
  members: MemberInfo[];
}

/**
 * Writes the image section into `writer`: one delta package member per image of `images`
 * (see the module docs). Temporary delta files live in a temp folder removed at the end.
 * @throws what `createDelta` throws (`IMAGE_NOT_FOUND`, `DIGEST_MISMATCH`, `PROGRAM_MISSING`, …),
 *   `INVENTORY_INVALID`
 */
export async function writeImageSection(
  writer: PackageTarWriter,
  images: ServiceImage[],
  mode: Exclude<ImagesMode, { mode: "none" }>,
  reporter: Reporter,
  checkpoint: () => void = () => {},
): Promise<ImageSection> {
  const tmp = await makeTempDir("dockpack-export-images-");
  const out: ImageSection = { images: [], members: [] };
  try {
    const inventory = mode.mode === "missing-from" ? await readInventory(mode.inventory) : undefined;
    for (const [n, image] of images.entries()) {
      checkpoint();
      const bases = images.slice(0, n).map((i) => `docker-daemon:${i.id}`);
      if (inventory) {
        // only the receiver's images that share a layer with this one: the delta's metadata
        // lists its bases, and an inventory of a whole engine may list hundreds
        const mine = new Set(image.diffIds);
        const part = join(tmp, `${n}.inventory.json`);
        const shared = inventory.images.filter((i) => i.diffIds.some((d) => mine.has(d)));
        await writeFile(part, JSON.stringify({ ...inventory, images: shared }));
        bases.push(part, ...(await byteBases(inventory, image)));
      }
      const file = join(tmp, `${n}.delta`);
      reporter.info(
        `adding image ${image.sourceTags[0] ?? image.id} (${image.services.map((s) => s.service).join(", ")})`,
      );
      const made = await createDelta(
        {
          image: `docker-daemon:${image.id}`,
          output: file,
          bases: [...new Set(bases)],
          method: "xdelta3",
          compression: "zstd",
          measureGzip: false,
        },
        reporter,
      );
      const member = `images/${n}-${image.id.slice(7, 19)}.delta`;
      const info = await writer.addStream(member, createReadStream(file, { highWaterMark: 1024 * 1024 }));
      const rows = made.metadata.layers;
      out.members.push(info);
      out.images.push({
        member,
        id: image.id,
        services: image.services,
        source_tags: image.sourceTags,
        size: info.size,
        sha256: info.sha256,
        image_size: made.metadata.totals.imageSize,
        layers: {
          total: rows.length,
          full: rows.filter((l) => l.ship === "full").length,
          delta: rows.filter((l) => l.ship === "delta").length,
          reused: rows.filter((l) => l.ship === "reused" || l.ship === "duplicate").length,
        },
      });
    }
    return out;
  } finally {
    await removeTempDir(tmp);
  }
}
