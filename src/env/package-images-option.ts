/**
 * `packages export --images[=all|none|missing-from INVENTORY]`: the option's value, parsed
 * without loading the image section's code (package-images.ts, src/delta and their
 * dependencies), so that an export without images starts faster.
 */
import { DockpackError } from "../core/errors.js";

/** `--images` of export: none (default), every image, or what the receiver's inventory lacks. */
export type ImagesMode = { mode: "none" } | { mode: "all" } | { mode: "missing-from"; inventory: string };

/**
 * Parses the CLI value of `--images[=all|none|missing-from INVENTORY]` (`true`: all).
 * @throws DockpackError `USAGE` for anything else
 */
export function parseImagesOption(value: string | boolean | undefined, inventory?: string): ImagesMode {
  if (value === undefined || value === false || value === "none") return { mode: "none" };
  if (value === true || value === "all") return { mode: "all" };
  const m = /^missing-from(?:[= ](.+))?$/.exec(value);
  const file = m?.[1] ?? inventory;
  if (m && file) return { mode: "missing-from", inventory: file };
  throw new DockpackError("USAGE", `--images takes all, none or missing-from INVENTORY (got '${value}').`, {
    usage: true,
    hint: "Write the inventory on the receiving machine with 'dockpack delta inventory -o FILE'.",
  });
}
