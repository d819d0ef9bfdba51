/**
 * `packages import REF` and the images a package artifact references (registry-images.ts): before
 * the import runs, the images the artifact lists and the engine lacks are loaded from the
 * registry, fetching only the layers the engine does not have; the import then finds them by ID
 * (so it does not rebuild them from the package's delta members) and tags them for the compose
 * project, journaled as for any image it tags. When the import fails, the images loaded here are
 * removed again (only those, and only while no container uses them or a tag names them).
 */
import { openRepository } from "../core/oci/client.js";
import { formatReference, referenceTarget } from "../core/oci/reference.js";
import type { RegistryOptions } from "../core/oci/transport.js";
import type { Reporter } from "../core/output.js";
import { undoImageEntry } from "./package-images-undo.js";
import { readRemotePackage } from "./registry.js";
import { loadRegistryImages, type RegistryImageLoad } from "./registry-images.js";
import { openPendingRegistryImages } from "./registry-images-pending.js";
import { verifyPackageSignature } from "./registry-sign.js";

/** Options of {@link withRegistryImages}. */
export interface RegistryImagesImportOptions extends RegistryOptions {
  reference: string;
  /** False: load no images (`--no-images`). */
  images?: boolean;
  /** SSH public key: the artifact's signature is checked before anything is loaded. */
  verifyKey?: string;
}

/**
 * Loads the artifact's registry images (see the module docs), then runs `run` (the import) with
 * the IDs of the images the engine now has from that list (each loaded or already there; the
 * import need not read their image members). An artifact without registry images only runs
 * `run` (with no IDs). Returns what `run` returned plus one row per image (`registryImages`).
 * @throws what `loadRegistryImages` and `run` throw; the signature check's codes
 */
export async function withRegistryImages<T extends object>(
  options: RegistryImagesImportOptions,
  reporter: Reporter,
  run: (present: ReadonlySet<string>) => Promise<T>,
): Promise<T & { registryImages?: RegistryImageLoad[] }> {
  if (options.images === false) return run(new Set());
  const { repo, ref } = await openRepository(options.reference, { ...options, reporter });
  const rows: RegistryImageLoad[] = [];
  const pending = openPendingRegistryImages();
  try {
    try {
      const remote = await readRemotePackage(repo, referenceTarget(ref));
      if (!remote.config.images?.length) return await run(new Set());
      if (options.verifyKey)
        await verifyPackageSignature(repo, remote.bytes, options.verifyKey, formatReference(ref));
      await loadRegistryImages(repo, remote.config.images, reporter, rows, (id) => pending.add(id));
    } catch (e) {
      await undo(rows, reporter);
      throw e;
    } finally {
      await repo.transport.close();
    }
    try {
      return { ...(await run(new Set(rows.map((r) => r.id)))), registryImages: rows };
    } catch (e) {
      await undo(rows, reporter);
      throw e;
    }
  } finally {
    await pending.close();
  }
}

async function undo(rows: RegistryImageLoad[], reporter: Reporter): Promise<void> {
  for (const r of rows)
    if (r.loaded)
      await undoImageEntry({ op: "image", id: r.id, added: true, tags: [] }, reporter).catch((e) =>
        reporter.warn(`could not remove image ${r.id} loaded for the import: ${(e as Error).message}`),
      );
}
