/**
 * The optional project blueprint `init/project-blueprint.json`: the parts dockpack's targets read.
 *
 * ```json
 * { "features": { "packaging": true },
 *   "packaging": { "enabled": true, "containerize": ["service", "job"],
 *                  "registry": "ghcr.io/acme", "targets": [ { "id": "api", … } ] } }
 * ```
 * - `features.packaging: false` or `packaging.enabled: false` (or `containerize: false`): packaging
 *   is switched off; `init` refuses.
 * - `containerize`: `true`, or the target types to set up (`service`, `job`, `app`); the folders of
 *   other types are not created.
 * - `registry`: image name prefix used by `build` when no `--registry` and no registry-level
 *   `registry` field is given.
 * - `targets`: entries seeded into a new registry.json by `init`; words (`"services"`, `"jobs"`,
 *   `"apps"`, singular or plural, as the seed writes them, also at the top level) name the
 *   target types to set up instead.
 * Other fields are ignored.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";
import { DockpackError } from "../core/errors.js";
import {
  BLUEPRINT_PATH,
  jsonPath,
  TARGET_TYPES,
  type Target,
  TargetSchema,
  type TargetType,
} from "./schema.js";

/** A target type as a word: `service`/`services`, `job`/`jobs`, `app`/`apps` (any case). */
const TargetTypeWord = z
  .string()
  .transform((w) => w.trim().toLowerCase().replace(/s$/, ""))
  .pipe(z.enum(TARGET_TYPES));

const BlueprintSchema = z.looseObject({
  features: z.looseObject({ packaging: z.boolean().optional() }).optional(),
  packaging: z
    .looseObject({
      enabled: z.boolean().optional(),
      containerize: z.union([z.boolean(), z.array(z.enum(TARGET_TYPES))]).optional(),
      registry: z.string().optional(),
      targets: z.array(z.union([TargetTypeWord, TargetSchema])).optional(),
    })
    .optional(),
  /** The seed's form: `"targets": ["services", "jobs"]` — the target types to set up. */
  targets: z.array(z.union([TargetTypeWord, TargetSchema])).optional(),
});

/** Splits a `targets` list into type words (the string form) and target entries. */
function splitTargets(list: (TargetType | Target)[] | undefined): { types: TargetType[]; targets: Target[] } {
  const types: TargetType[] = [];
  const targets: Target[] = [];
  for (const t of list ?? []) {
    if (typeof t === "string") {
      if (!types.includes(t)) types.push(t);
    } else targets.push(t);
  }
  return { types, targets };
}

/** What the blueprint says about packaging. */
export interface PackagingBlueprint {
  /** Absolute path of the blueprint file, or null when there is none. */
  file: string | null;
  /** False when the blueprint switches packaging off. */
  enabled: boolean;
  /** Target types to set up. */
  types: TargetType[];
  /** Image name prefix, when given. */
  registry?: string;
  /** Targets to seed a new registry with. */
  targets: Target[];
}

/**
 * Reads `init/project-blueprint.json` under `root` (or `path`, relative to `root`; then a missing
 * file is `BLUEPRINT_NOT_FOUND`). A missing file gives the defaults (enabled,
 * every type, no prefix, no targets). Throws `BLUEPRINT_INVALID` naming the file and JSON path
 * when it is not JSON or its packaging fields have the wrong shape.
 */
export async function readBlueprint(root: string, path?: string): Promise<PackagingBlueprint> {
  const file = path ? resolve(root, path) : join(root, BLUEPRINT_PATH);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && path) {
      throw new DockpackError("BLUEPRINT_NOT_FOUND", `The blueprint ${file} does not exist.`, {
        hint: "Check the --blueprint path.",
      });
    }
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return { file: null, enabled: true, types: [...TARGET_TYPES], targets: [] };
    }
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DockpackError("BLUEPRINT_INVALID", `${file} is not valid JSON: ${(err as Error).message}`, {
      hint: "Fix the JSON syntax of the blueprint.",
    });
  }
  const res = BlueprintSchema.safeParse(value);
  if (!res.success) {
    const lines = res.error.issues.map((i) => `${jsonPath(i.path)}: ${i.message}`).join("\n");
    throw new DockpackError("BLUEPRINT_INVALID", `${file} has invalid packaging settings:\n${lines}`, {
      hint: "Fix the values at the JSON paths above.",
    });
  }
  const bp = res.data;
  const containerize = bp.packaging?.containerize;
  const enabled =
    bp.features?.packaging !== false && bp.packaging?.enabled !== false && containerize !== false;
  const fromPackaging = splitTargets(bp.packaging?.targets);
  const fromTop = splitTargets(bp.targets);
  const words = [...new Set([...fromPackaging.types, ...fromTop.types])];
  return {
    file,
    enabled,
    types: Array.isArray(containerize) ? containerize : words.length > 0 ? words : [...TARGET_TYPES],
    ...(bp.packaging?.registry ? { registry: bp.packaging.registry } : {}),
    targets: [...fromPackaging.targets, ...fromTop.targets],
  };
}
