/**
 * Where an import goes, decided from the package's head (metadata.json only) before the full
 * verification read: the repository (which must be initialised for the package's project) or the
 * `--standalone` folder with its own compose project, the target branch, worktree path, compose
 * project and Docker volume names — and the cheap conflict checks on them.
 */
import { readdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { listContainers } from "../core/docker/containers.js";
import { volumeExists } from "../core/docker/volumes.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { worktreeList } from "../core/git.js";
import { CONFIG_FILE, type EnvConfig, loadEnvConfig } from "./config.js";
import { findRepoRoot } from "./environments.js";
import { findConflicts, type ImportConflict } from "./import-aside.js";
import { checkBranchName, composeProjectName, sanitizeName, volumeName, worktreeFolder } from "./naming.js";
import type { PackageMetadata } from "./package-format.js";

/** The target of an import; see the module docs. */
export interface ImportTarget {
  /** Branch imported as. */
  branch: string;
  /** The project name of the target (the repository's, or the standalone copy's own). */
  project: string;
  composeProject: string;
  /** Logical volume → Docker volume, per package volume. */
  volumes: { name: string; target: string }[];
  /** The repository's main worktree and config (null for `--standalone`, created later). */
  root: string | null;
  config: EnvConfig | null;
  /** Worktree path (null for `--standalone`: known once the repository exists). */
  path: string | null;
  /** The `--standalone` folder, and whether it exists (empty). */
  standalone: { dir: string; existed: boolean } | null;
}

/** Options the target depends on (a subset of ImportOptions). */
export interface TargetOptions {
  cwd?: string;
  targetBranch?: string;
  standalone?: string;
  project?: string;
}

async function mainRoot(root: string): Promise<string> {
  return (await worktreeList(root))[0]?.path ?? root;
}

/**
 * Decides the target (see the module docs).
 * @throws DockpackError `ENV_BRANCH_INVALID`; `IMPORT_NOT_INITIALISED` (the repository has no
 *   `.dockpack/config.yml`) and `IMPORT_PROJECT_MISMATCH` (its project is another), both with a
 *   hint to `--standalone`; `IMPORT_PROJECT_INVALID` (`--project` not a usable name);
 *   `IMPORT_STANDALONE_NOT_EMPTY`; `ENV_NOT_A_REPO`
 */
export async function resolveTarget(options: TargetOptions, meta: PackageMetadata): Promise<ImportTarget> {
  const branch = options.targetBranch ?? meta.branch;
  checkBranchName(branch);
  const names = (project: string) => {
    const composeProject = composeProjectName(project, branch);
    return {
      composeProject,
      volumes: meta.volumes.map((v) => ({ name: v.name, target: volumeName(composeProject, v.name) })),
    };
  };
  if (options.standalone) {
    const dir = resolve(options.cwd ?? process.cwd(), options.standalone);
    const present = await readdir(dir).catch(() => null);
    if (present && present.length > 0)
      throw new DockpackError("IMPORT_STANDALONE_NOT_EMPTY", `${dir} exists and is not empty.`, {
        hint: "Name a new or empty folder for --standalone.",
      });
    const project = options.project ?? (sanitizeName(basename(dir)) || "standalone");
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(project))
      throw new DockpackError("IMPORT_PROJECT_INVALID", `'${project}' is not a usable project name.`, {
        hint: "Pass --project NAME: lower-case letters, digits, '-' and '_'.",
        usage: true,
      });
    return {
      branch,
      project,
      ...names(project),
      root: null,
      config: null,
      path: null,
      standalone: { dir, existed: present !== null },
    };
  }
  const root = await mainRoot(await findRepoRoot(options.cwd ?? process.cwd()));
  let config: EnvConfig;
  try {
    config = await loadEnvConfig(root);
  } catch (err) {
    if (toDockpackError(err).code !== "ENV_NOT_INITIALISED") throw err;
    throw new DockpackError(
      "IMPORT_NOT_INITIALISED",
      `${root} is not initialised for dockpack (no ${CONFIG_FILE}), so it is not a clone of the package's project '${meta.project}'. Nothing was changed.`,
      {
        hint: `Import inside a clone of '${meta.project}' (where 'dockpack env init' was run), or into a new repository with --standalone DIR.`,
        details: { repository: root, packageProject: meta.project },
      },
    );
  }
  if (options.project && options.project !== config.project)
    throw new DockpackError(
      "IMPORT_PROJECT_INVALID",
      `--project ${options.project} applies to --standalone only; ${root} is project '${config.project}'.`,
      { hint: "Drop --project, or add --standalone DIR.", usage: true },
    );
  if (config.project !== meta.project)
    throw new DockpackError(
      "IMPORT_PROJECT_MISMATCH",
      `The package is of project '${meta.project}', but ${root} is project '${config.project}'. Nothing was changed.`,
      {
        hint: `Import inside a clone of '${meta.project}', or into a new repository with --standalone DIR.`,
        details: { repository: root, project: config.project, packageProject: meta.project },
      },
    );
  return {
    branch,
    project: config.project,
    ...names(config.project),
    root,
    config,
    path: join(resolve(root, config.worktrees_dir), worktreeFolder(branch)),
    standalone: null,
  };
}

/**
 * What exists under the target's names. For `--standalone` only the engine is checked (the
 * folder is new): its volumes and containers would be another environment's, which an import
 * never replaces.
 */
export async function targetConflicts(t: ImportTarget): Promise<ImportConflict[]> {
  if (t.root && t.path)
    return findConflicts(
      t.root,
      t.branch,
      t.path,
      t.composeProject,
      t.volumes.map((v) => v.target),
    );
  const out: ImportConflict[] = [];
  for (const v of t.volumes) if (await volumeExists(v.target)) out.push({ kind: "volume", name: v.target });
  const containers = await listContainers({ labels: { "com.docker.compose.project": t.composeProject } });
  if (containers.length) out.push({ kind: "containers", name: `${t.composeProject} (${containers.length})` });
  return out;
}

/**
 * Throws `IMPORT_CONFLICT` listing the conflicts when there are any and they may not be replaced
 * (no `force`, or `--standalone`, which never replaces another environment's volumes).
 */
export function refuseConflicts(t: ImportTarget, conflicts: ImportConflict[], force: boolean): void {
  if (conflicts.length === 0 || (force && !t.standalone)) return;
  const list = conflicts.map((c) => `${c.kind} ${c.name}`).join(", ");
  throw new DockpackError(
    "IMPORT_CONFLICT",
    `Importing as '${t.branch}' (compose project ${t.composeProject}) conflicts with what exists: ${list}. Nothing was changed.`,
    {
      hint: t.standalone
        ? "These belong to another environment on this engine: choose another compose project with --project NAME (or another --target-branch)."
        : "Import under another name with --target-branch, or pass --force to replace them (kept aside until the import succeeds).",
      details: { conflicts },
    },
  );
}
