/**
 * The packaging-target registry (`docs/packaging/registry.json`): its zod schema, the types
 * inferred from it, and the naming rules for target ids and image names.
 *
 * Unknown fields, at the top level and in each target, are kept (zod `looseObject`) so that a
 * registry edited by hand or by another tool survives a load/save round trip unchanged.
 */
import { z } from "zod";

/** Where the registry lives, relative to the project root. */
export const REGISTRY_PATH = "docs/packaging/registry.json";
/** The packaging root, relative to the project root. */
export const PACKAGING_ROOT = "ops/packaging";
/** The optional project blueprint read by `init` and `build`, relative to the project root. */
export const BLUEPRINT_PATH = "init/project-blueprint.json";

/** The kinds of deployable a target can be. */
export const TARGET_TYPES = ["service", "job", "app"] as const;
/** One of {@link TARGET_TYPES}. */
export type TargetType = (typeof TARGET_TYPES)[number];

/** Target ids: lowercase letters, digits and dashes, starting with a letter or digit. */
export const TARGET_ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * An image repository name without tag or digest, following the Docker reference grammar
 * (distribution/reference): optional `host[:port]/`, then `/`-separated lowercase components
 * made of `[a-z0-9]` joined by `.`, `_`, `__` or dashes.
 */
export const IMAGE_NAME_RE =
  /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** A Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. */
export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Fills what the seed's registry entries leave out (issue 12 A14): `context` defaults to `.`
 * (the project root) and `image` to the target id. Entries with only id/type/module/dockerfile
 * are valid.
 */
function withTargetDefaults(value: unknown): unknown {
  if (!value || typeof value !== "object" || Array.isArray(value)) return value;
  const v = value as Record<string, unknown>;
  return {
    ...v,
    ...(v.context === undefined ? { context: "." } : {}),
    ...(v.image === undefined && typeof v.id === "string" ? { image: v.id } : {}),
  };
}

/** One packaging target. Paths are relative to the project root, with `/` separators. */
export const TargetObjectSchema = z.looseObject({
  /** Unique id, see {@link TARGET_ID_RE}. */
  id: z.string().regex(TARGET_ID_RE, "must be lowercase letters, digits and dashes ([a-z0-9-])"),
  /** service | job | app. */
  type: z.enum(TARGET_TYPES),
  /** The source folder of the deployable. */
  module: z.string().min(1),
  /** The Dockerfile used to build it. */
  dockerfile: z.string().min(1),
  /** The build context folder (default: `.`, the project root). */
  context: z.string().min(1),
  /** Image repository name without tag (default: the id); the registry prefix is put before it at build time. */
  image: z.string().min(1),
  /** Build args always passed for this target (`--build-arg` on the command line wins). */
  buildArgs: z.record(z.string(), z.string()).optional(),
  /** Target platform, e.g. `linux/amd64` (`--platform` wins). */
  platform: z.string().optional(),
});
/** {@link TargetObjectSchema} with the defaults of `context` (`.`) and `image` (the id). */
export const TargetSchema = z.preprocess(withTargetDefaults, TargetObjectSchema);
/** One packaging target, see {@link TargetSchema}. */
export type Target = z.infer<typeof TargetObjectSchema>;

/** The whole registry file. */
export const RegistrySchema = z.looseObject({
  /** Format version; 1. */
  version: z.literal(1).optional(),
  /** Image name prefix, e.g. `ghcr.io/acme` (`--registry` wins). */
  registry: z.string().optional(),
  targets: z.array(TargetSchema),
});
/** The registry file, see {@link RegistrySchema}. */
export type Registry = z.infer<typeof RegistrySchema>;

/** Turns a zod issue path into a JSON path such as `$.targets[2].id`. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = "$";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && /^[A-Za-z_$][\w$]*$/.test(key)) out += `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}
