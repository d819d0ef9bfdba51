/**
 * Layer inventories: what a target machine already has, written there by
 * `dockpack delta inventory [IMAGE...] -o FILE` and carried to the source, so `delta create` can
 * skip those layers without the target's bytes. An inventory lists images (ID, tags) and their
 * layer diff_ids; it has no layer bytes, so a changed layer can be shipped as a delta only
 * against a base given as an image (`--base IMAGE`); against an inventory alone it ships whole.
 */
import { constants } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { z } from "zod";
import { getDocker, requireEngine } from "../core/docker/client.js";
import { inspectImage } from "../core/docker/images.js";
import { DockpackError } from "../core/errors.js";
import { atomicWriteFile } from "../core/fs.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { openImage, parseImageRef } from "../image/open.js";

/** Largest inventory file read (bytes): a few hundred bytes per image, 64 MiB is ~100 000 images. */
export const INVENTORY_LIMIT = 64 * 1024 * 1024;

/** The inventory format identifier. */
export const INVENTORY_FORMAT = "dockpack-layer-inventory";

/** One image of an inventory. */
export const LayerInventoryImageSchema = z.object({
  ref: z.string(),
  /** Image ID (`sha256:` of the config). */
  id: z.string(),
  repoTags: z.array(z.string()),
  diffIds: z.array(z.string().regex(/^sha256:[a-f0-9]{64}$/)),
});

/** The inventory file (JSON). */
export const LayerInventorySchema = z.object({
  format: z.literal(INVENTORY_FORMAT),
  formatVersion: z.literal(1),
  created: z.string(),
  host: z.string().optional(),
  images: z.array(LayerInventoryImageSchema),
});
/** A layer inventory. */
export type LayerInventory = z.infer<typeof LayerInventorySchema>;

/** Options of {@link createInventory}. */
export interface LayerInventoryOptions {
  /** Image references (any form); empty: every image in the local engine. */
  images: string[];
  /** Where to write the JSON file. */
  output: string;
  /** Overwrite an existing file. */
  force?: boolean;
}

/** Result of {@link createInventory}. */
export interface LayerInventoryResult {
  output: string;
  images: number;
  layers: number;
}

/** Reads image ID, tags and diff_ids of an engine image by inspecting it (no save). Throws `IMAGE_NOT_FOUND`. */
async function inspectDaemon(ref: string): Promise<z.infer<typeof LayerInventoryImageSchema>> {
  const info = await inspectImage(ref);
  const repoTags = info.RepoTags ?? [];
  return { ref: repoTags[0] ?? ref, id: info.Id, repoTags, diffIds: info.RootFS?.Layers ?? [] };
}

/**
 * Writes an inventory of `images` (or of every engine image) to `output`, atomically.
 * Throws `FS_EXISTS`-style `INVENTORY_EXISTS` without `force`, `IMAGE_NOT_FOUND`, `ENGINE_UNAVAILABLE`.
 */
export async function createInventory(
  options: LayerInventoryOptions,
  reporter: Reporter = silentReporter(),
): Promise<LayerInventoryResult> {
  if (!options.force) {
    try {
      await readFile(options.output);
      throw new DockpackError("INVENTORY_EXISTS", `The file '${options.output}' exists.`, {
        hint: "Pass -f/--force to overwrite it, or choose another name.",
      });
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw e;
    }
  }
  const images: z.infer<typeof LayerInventoryImageSchema>[] = [];
  let refs = options.images;
  if (refs.length === 0) {
    const docker = await requireEngine();
    refs = (await docker.listImages()).map((i) => i.Id);
  }
  for (const raw of refs) {
    const ref = await parseImageRef(raw);
    if (ref.transport === "docker-daemon") {
      images.push(await inspectDaemon(ref.path));
    } else {
      const image = await openImage(raw, reporter);
      try {
        images.push({
          ref: raw,
          id: image.configDigest,
          repoTags: image.repoTags,
          diffIds: image.layers.map((l) => l.diffId),
        });
      } finally {
        await image.close();
      }
    }
    reporter.debug(`inventory: ${raw}`);
  }
  const inventory: LayerInventory = {
    format: INVENTORY_FORMAT,
    formatVersion: 1,
    created: new Date().toISOString(),
    host: hostname(),
    images,
  };
  await atomicWriteFile(options.output, `${JSON.stringify(inventory, null, 2)}\n`);
  return {
    output: options.output,
    images: images.length,
    layers: new Set(images.flatMap((i) => i.diffIds)).size,
  };
}

/**
 * Reads `path` as an inventory when it is one; returns undefined for anything else (an image
 * archive), so `--base` accepts both. Throws `INVENTORY_INVALID` for a malformed inventory.
 */
export async function readInventoryIfAny(path: string): Promise<LayerInventory | undefined> {
  let text: string;
  try {
    // non-blocking: a fifo given as --base is not waited on (it is no inventory)
    const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile()) return undefined;
      const first = Buffer.alloc(1);
      await fh.read(first, 0, 1, 0);
      if (first.toString() !== "{") return undefined;
      if (st.size > INVENTORY_LIMIT)
        throw new DockpackError(
          "INVENTORY_INVALID",
          `${path}: ${st.size} bytes; a layer inventory over ${INVENTORY_LIMIT} bytes is refused.`,
          { hint: "Write one on the target with 'dockpack delta inventory -o FILE'." },
        );
      text = await fh.readFile("utf8");
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as { code?: string }).code === "INVENTORY_INVALID") throw e;
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DockpackError("INVENTORY_INVALID", `${path}: not valid JSON.`, { cause: e });
  }
  const parsed = LayerInventorySchema.safeParse(raw);
  if (!parsed.success) {
    throw new DockpackError(
      "INVENTORY_INVALID",
      `${path}: not a dockpack layer inventory (${parsed.error.issues[0]?.message}).`,
      {
        hint: "Write one on the target with 'dockpack delta inventory -o FILE'.",
      },
    );
  }
  return parsed.data;
}

/** Used by tests and `delta apply`: lists engine images by inspecting each (ID, tags, diff_ids). */
export async function engineInventory(): Promise<z.infer<typeof LayerInventoryImageSchema>[]> {
  const docker = getDocker();
  const out: z.infer<typeof LayerInventoryImageSchema>[] = [];
  for (const i of await docker.listImages()) out.push(await inspectDaemon(i.Id));
  return out;
}
