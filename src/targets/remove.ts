/**
 * `targets remove`: takes a target out of `docs/packaging/registry.json` (atomically, other
 * entries and unknown fields kept) and, when asked, deletes the Dockerfile `targets add` made
 * for it under `ops/packaging/`.
 */
import { rm } from "node:fs/promises";
import { type Reporter, silentReporter } from "../core/output.js";
import { findTarget } from "./build.js";
import { relativeInside } from "./paths.js";
import { loadRegistry, saveRegistry } from "./registry.js";
import { PACKAGING_ROOT, type Target } from "./schema.js";

/** Options of {@link removeTarget}. */
export interface TargetsRemoveOptions {
  /** Project root. */
  root: string;
  /** The target id. */
  id: string;
  /** Also delete its Dockerfile when it lies under `ops/packaging/` (never elsewhere). */
  deleteDockerfile?: boolean;
  /** Say what would change, change nothing. */
  dryRun?: boolean;
}

/** Result of {@link removeTarget}. */
export interface TargetsRemoveResult {
  removed: Target;
  /** The Dockerfile deleted (relative to the root), if any. */
  dockerfileDeleted?: string;
  dryRun: boolean;
}

/**
 * Removes target `id` from the registry. Throws `TARGETS_NOT_INITIALIZED`, `REGISTRY_INVALID`,
 * `TARGET_NOT_FOUND` (usage, listing the ids).
 */
export async function removeTarget(
  options: TargetsRemoveOptions,
  reporter: Reporter = silentReporter(),
): Promise<TargetsRemoveResult> {
  const registry = await loadRegistry(options.root);
  const target = findTarget(registry, options.id);
  const dryRun = options.dryRun ?? false;
  const inside = relativeInside(PACKAGING_ROOT, target.dockerfile);
  const deleteFile = options.deleteDockerfile && inside !== null ? target.dockerfile : undefined;
  if (options.deleteDockerfile && !deleteFile)
    reporter.warn(`The Dockerfile ${target.dockerfile} is outside ${PACKAGING_ROOT}/; it is kept.`);
  if (!dryRun) {
    await saveRegistry(options.root, {
      ...registry,
      targets: registry.targets.filter((t) => t.id !== target.id),
    });
    if (deleteFile) await rm(`${options.root}/${deleteFile}`, { force: true });
  }
  reporter.debug(`${dryRun ? "would remove" : "removed"} target '${target.id}'`);
  return { removed: target, ...(deleteFile ? { dockerfileDeleted: deleteFile } : {}), dryRun };
}
