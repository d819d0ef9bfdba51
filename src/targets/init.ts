/**
 * `targets init`: lays out the packaging tree of a project, copy-if-missing.
 *
 * Creates `ops/packaging/{services,jobs,apps,templates,scripts,workdocs}/`,
 * `ops/packaging/AGENTS.md`, the templates in `ops/packaging/templates/` and an empty
 * `docs/packaging/registry.json` (seeded from the blueprint's `packaging.targets` and
 * `packaging.registry` when present). Never overwrites anything that exists.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { DockpackError } from "../core/errors.js";
import { atomicWriteFile } from "../core/fs.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { readBlueprint } from "./blueprint.js";
import { registryText } from "./registry.js";
import { PACKAGING_ROOT, REGISTRY_PATH, type Registry, type TargetType } from "./schema.js";
import { TEMPLATE_NAMES, templatesDir } from "./templates.js";

/** Options of {@link initTargets}. */
export interface TargetsInitOptions {
  /** Project root (absolute or relative to the cwd). */
  root: string;
  /** List what would be created, write nothing. */
  dryRun?: boolean;
  /** The blueprint to read, relative to the root (default `init/project-blueprint.json`). */
  blueprint?: string;
}

/**
 * The `.dockerignore` written at the root when there is none: the default build context is the
 * project root, so without it `.git`, dependencies and local secrets go into every build.
 */
export const DEFAULT_DOCKERIGNORE = `# Written by 'dockpack targets init': the default build context of every target is the
# project root. Keep what no image needs out of it (see docs/commands/targets.md).
.git
**/node_modules
**/.env
**/.env.*
.dockpack
**/*.log
ops/packaging/workdocs
`;

/** Result of {@link initTargets}. Paths are relative to the root. */
export interface TargetsInitResult {
  root: string;
  dryRun: boolean;
  /** Folders and files created (or, under dry run, that would be). */
  created: string[];
  /** Those that already existed and were left alone. */
  existing: string[];
  /** The blueprint read, or null. */
  blueprint: string | null;
}

const TYPE_DIRS: Record<TargetType, string> = { service: "services", job: "jobs", app: "apps" };

/**
 * Creates the packaging tree under `options.root`. Idempotent: a second run creates nothing.
 * Throws `PACKAGING_DISABLED` when the blueprint switches packaging off, `BLUEPRINT_INVALID`
 * when the blueprint is malformed, `FS_*` on write errors.
 */
export async function initTargets(
  options: TargetsInitOptions,
  reporter: Reporter = silentReporter(),
): Promise<TargetsInitResult> {
  const root = options.root;
  const dryRun = options.dryRun ?? false;
  const bp = await readBlueprint(root, options.blueprint);
  if (!bp.enabled) {
    throw new DockpackError("PACKAGING_DISABLED", `Packaging is switched off in ${bp.file}.`, {
      hint: "Set features.packaging and packaging.enabled to true in the blueprint to use dockpack targets.",
    });
  }
  const dirs = [
    ...bp.types.map((t) => `${PACKAGING_ROOT}/${TYPE_DIRS[t]}`),
    ...["templates", "scripts", "workdocs"].map((d) => `${PACKAGING_ROOT}/${d}`),
    dirname(REGISTRY_PATH),
  ];
  const files: { rel: string; content: () => Promise<string> }[] = [
    { rel: ".dockerignore", content: async () => DEFAULT_DOCKERIGNORE },
    {
      rel: `${PACKAGING_ROOT}/AGENTS.md`,
      content: () => readFile(join(templatesDir(), "AGENTS.md"), "utf8"),
    },
    ...TEMPLATE_NAMES.map((name) => ({
      rel: `${PACKAGING_ROOT}/templates/Dockerfile.${name}`,
      content: () => readFile(join(templatesDir(), `Dockerfile.${name}`), "utf8"),
    })),
    {
      rel: REGISTRY_PATH,
      content: async () => {
        const registry: Registry = {
          version: 1,
          ...(bp.registry ? { registry: bp.registry } : {}),
          targets: bp.targets,
        };
        return registryText(registry);
      },
    },
  ];
  const created: string[] = [];
  const existing: string[] = [];
  for (const rel of dirs) {
    if (existsSync(join(root, rel))) existing.push(`${rel}/`);
    else {
      created.push(`${rel}/`);
      if (!dryRun) await mkdir(join(root, rel), { recursive: true });
    }
  }
  for (const f of files) {
    if (existsSync(join(root, f.rel))) existing.push(f.rel);
    else {
      created.push(f.rel);
      if (!dryRun) await atomicWriteFile(join(root, f.rel), await f.content());
    }
  }
  for (const rel of created) reporter.debug(`${dryRun ? "would create" : "created"} ${rel}`);
  if (created.length === 0) reporter.debug("packaging tree already complete; nothing to do");
  return { root, dryRun, created, existing, blueprint: bp.file };
}
