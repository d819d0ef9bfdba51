/**
 * Human lines for the image section of a package, apart from package-images.ts (which re-exports
 * them) so that `packages inspect`/`validate` print them without loading the engine client, the
 * delta code and the registry client that making a section needs (issue 14 C18).
 */
import type { PackageImage } from "./package-format.js";

/**
 * Human lines for the image section (export, inspect, validate): the names the services use, the
 * image ID, bytes shipped vs the image's full (uncompressed) size, and how its layers travel.
 */
export function renderImageLines(images: PackageImage[], formatBytes: (n: number) => string): string {
  return images
    .map(
      (i) =>
        `  image ${i.services.map((s) => s.image ?? `(built: ${s.service})`).join(", ")} ${i.id.slice(7, 19)}: ` +
        `${formatBytes(i.size)} shipped of ${formatBytes(i.image_size)} ` +
        `(${i.layers.full} whole, ${i.layers.delta} delta, ${i.layers.reused} not shipped, of ${i.layers.total} layers)`,
    )
    .join("\n");
}
