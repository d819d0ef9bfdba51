/** `targets list`: the registry's targets as they are written. */
import { loadRegistry } from "./registry.js";
import type { Target } from "./schema.js";

/** Result of {@link listTargets}. */
export interface ListResult {
  /** Image name prefix from the registry file, if any. */
  registry?: string;
  targets: Target[];
}

/**
 * Lists the targets of `docs/packaging/registry.json` under `root` (unknown fields included).
 * Throws `TARGETS_NOT_INITIALIZED` or `REGISTRY_INVALID` (with JSON paths).
 */
export async function listTargets(options: { root: string }): Promise<ListResult> {
  const reg = await loadRegistry(options.root);
  return { ...(reg.registry ? { registry: reg.registry } : {}), targets: reg.targets };
}
