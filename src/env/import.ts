import { lstat, mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createVolume } from "../core/docker/volumes.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { ensureFreeSpace } from "../core/fs.js";
import {
  commitExists,
  deleteBranch,
  git,
  withoutGitHooks,
  worktreeAdd,
  worktreeList,
  worktreeRemove,
} from "../core/git.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { removeVolumeSoon } from "./compose-run.js";
import { CONFIG_FILE, type EnvConfig, loadEnvConfig, parseEnvConfigText } from "./config.js";
import { describe, type EnvironmentInfo, findRepoRoot } from "./environments.js";
import { failAt } from "./fail-hook.js";
import { findConflicts, moveAside } from "./import-aside.js";
import {
  createStandaloneRepo,
  dockerRootDir,
  removeFilesNotIn,
  restoreMembers,
  restoreVolume,
} from "./import-restore.js";
import { inspectVerified } from "./inspect.js";
import { composeWarnings } from "./inspect-compose.js";
import { Journal } from "./journal.js";
import { checkBranchName, composeProjectName, volumeName, worktreeFolder } from "./naming.js";
import { requireValidPackage } from "./package-reader.js";
import { excludeFromGit, volumeCreateOptions, writeEnvSettings } from "./settings.js";

/** Options of {@link importPackage}; the CLI flags and the MCP tool map onto these. */
export interface ImportOptions {
  /** A folder inside the target repository (default: process cwd). Ignored with `standalone`. */
  cwd?: string;
  /** The package file. */
  package: string;
  /** Branch to import as (default: the package's branch). */
  targetBranch?: string;
  /** Restore the volumes' data (default true); false: empty volumes. */
  restoreData?: boolean;
  /** Replace a conflicting branch/worktree/volumes (kept aside until the import succeeded). */
  force?: boolean;
  /** Create a fresh git repository in this folder from the package's code snapshot and import there. */
  standalone?: string;
  /** Restore device nodes and fifos found in volume tars (refused by default). */
  allowSpecialFiles?: boolean;
}

/** Result of {@link importPackage}: the new environment and what the import did. */
export interface ImportResult {
  environment: EnvironmentInfo;
  /** Repository root the environment belongs to. */
  repository: string;
  /** The commit the worktree was created at, and whether it was the package's commit. */
  commit: string;
  atPackageCommit: boolean;
  /** Things replaced under `force` (now removed). */
  replaced: string[];
  source: { project: string; branch: string; created_at: string };
  seconds: number;
}

/**
 * Imports a package; see the module docs for the steps and guarantees.
 * @throws DockpackError: the package's first problem code (`PACKAGE_CHECKSUM_MISMATCH`,
 *   `PACKAGE_VERSION_UNSUPPORTED`, …) with every problem in details; `IMPORT_CONFLICT` listing
 *   conflicts; `NO_SPACE`; `IMPORT_FAILED` naming the failed step (cause: the original error)
 */
export async function importPackage(
  options: ImportOptions,
  reporter: Reporter = silentReporter(),
): Promise<ImportResult> {
  // The package is untrusted: no git hook of any repository runs during an import.
  return withoutGitHooks(() => importSteps(options, reporter));
}

async function importSteps(options: ImportOptions, reporter: Reporter): Promise<ImportResult> {
  const started = Date.now();
  const file = resolve(options.cwd ?? process.cwd(), options.package);
  await lstat(file).catch(() => {
    throw new DockpackError("PACKAGE_NOT_FOUND", `Package ${file} does not exist.`, {
      hint: "List packages with 'dockpack packages list'.",
    });
  });
  reporter.info(`verifying ${file}`);
  const allowSpecialFiles = options.allowSpecialFiles === true;
  const verified = await requireValidPackage(file, reporter, { allowSpecialFiles });
  // what env up would do beyond the project, said before anything runs it
  for (const w of composeWarnings(inspectVerified(verified).compose)) reporter.warn(w);
  const meta = verified.metadata;
  const target = options.targetBranch ?? meta.branch;
  checkBranchName(target);
  failAt("import:verify");

  const journal = new Journal(reporter);
  try {
    let root: string;
    let standalone = false;
    if (options.standalone) {
      journal.step = "standalone";
      root = await createStandaloneRepo(
        resolve(options.standalone),
        file,
        meta,
        verified.checksums,
        target,
        journal,
        reporter,
      );
      standalone = true;
      failAt("import:standalone");
      journal.checkpoint();
    } else root = await mainRoot(await findRepoRoot(options.cwd ?? process.cwd()));

    journal.step = "conflicts";
    const config = await configFor(root, verified.configText);
    const worktreesRoot = resolve(root, config.worktrees_dir);
    const composeProject = composeProjectName(config.project, target);
    const path = join(worktreesRoot, worktreeFolder(target));
    const volumes = meta.volumes.map((v) => ({ ...v, target: volumeName(composeProject, v.name) }));
    const conflicts = await findConflicts(
      root,
      target,
      path,
      composeProject,
      volumes.map((v) => v.target),
    );
    if (conflicts.length && !options.force)
      throw new DockpackError(
        "IMPORT_CONFLICT",
        `Importing as '${target}' conflicts with what exists: ${conflicts.map((c) => `${c.kind} ${c.name}`).join(", ")}. Nothing was changed.`,
        {
          hint: "Import under another name with --target-branch, or pass --force to replace them (kept aside until the import succeeds).",
          details: { conflicts },
        },
      );
    failAt("import:conflicts");
    journal.checkpoint();

    journal.step = "space";
    const dataBytes = options.restoreData === false ? 0 : meta.volumes.reduce((a, v) => a + v.size, 0);
    await mkdir(worktreesRoot, { recursive: true });
    await ensureFreeSpace(
      worktreesRoot,
      verified.size - meta.volumes.reduce((a, v) => a + v.compressed_size, 0),
      "the worktree files",
    );
    const dockerRoot = await dockerRootDir();
    if (dockerRoot && dataBytes > 0) await ensureFreeSpace(dockerRoot, dataBytes, "the volume data");
    failAt("import:space");
    journal.checkpoint();

    journal.step = "aside";
    const replaced = conflicts.length
      ? await moveAside(
          root,
          target,
          path,
          composeProject,
          volumes.map((v) => v.target),
          conflicts,
          journal,
          reporter,
        )
      : [];
    failAt("import:aside");
    journal.checkpoint();

    journal.step = "worktree";
    await excludeFromGit(root, config.worktrees_dir);
    const atPackageCommit = meta.commit !== null && (await commitExists(meta.commit, root));
    if (!atPackageCommit && !standalone)
      reporter.warn(
        `commit ${meta.commit ?? "(none)"} of the package is not in this repository; the worktree starts at HEAD`,
      );
    const from = atPackageCommit ? (meta.commit as string) : "HEAD";
    reporter.info(`creating worktree ${path} for branch ${target} at ${from}`);
    await worktreeAdd(root, path, { branch: target, from, createBranch: true });
    journal.added(`remove worktree ${path} and branch ${target}`, async () => {
      await worktreeRemove(root, path, { force: true }).catch(() =>
        rm(path, { recursive: true, force: true }),
      );
      await deleteBranch(target, root, true).catch(() => {});
    });
    const commit = (await git(["rev-parse", "HEAD"], path)).trim();
    failAt("import:worktree");
    journal.checkpoint();

    journal.step = "code";
    if (meta.include_code) {
      const written = await restoreMembers(file, "code/", path, verified.checksums);
      await removeFilesNotIn(path, written);
      reporter.info(`restored ${written.size} code file(s)`);
    }
    failAt("import:code");
    journal.checkpoint();

    journal.step = "environment";
    await restoreMembers(file, "environment/", path, verified.checksums);
    failAt("import:environment");
    journal.checkpoint();

    journal.step = "settings";
    const settings = await writeEnvSettings(
      await loadEnvConfig(path).catch(() => config),
      path,
      worktreesRoot,
      target,
    );
    failAt("import:settings");
    journal.checkpoint();

    journal.step = "volumes";
    for (const v of volumes) {
      const dockerName = settings.volumes[v.name] ?? v.target;
      await createVolume(
        dockerName,
        {
          "com.docker.compose.project": composeProject,
          "com.docker.compose.volume": v.name,
        },
        volumeCreateOptions(settings, v.name),
      );
      journal.added(`remove volume ${dockerName}`, () => removeVolumeSoon(dockerName));
      if (options.restoreData === false) continue;
      reporter.info(`restoring volume ${dockerName}`);
      await restoreVolume(file, v.member, v.sha256, v.codec, dockerName, reporter, v.size, journal, {
        allowSpecialFiles,
      });
      journal.checkpoint();
    }
    failAt("import:volumes");

    journal.step = "finish";
    const environment = await describe(path, settings);
    failAt("import:finish");
    await journal.commit();
    return {
      environment,
      repository: root,
      commit,
      atPackageCommit,
      replaced,
      source: { project: meta.project, branch: meta.branch, created_at: meta.created_at },
      seconds: (Date.now() - started) / 1000,
    };
  } catch (e) {
    const err = toDockpackError(e);
    const step = journal.step;
    const failedUndo = await journal.rollback();
    if (err.code === "IMPORT_CONFLICT" && failedUndo.length === 0) throw err;
    throw new DockpackError(
      "IMPORT_FAILED",
      `Import failed at step '${step}': ${err.message}${failedUndo.length ? `; rollback incomplete: ${failedUndo.join("; ")}` : "; everything it changed was rolled back"}`,
      {
        hint: err.hint ?? "Fix the cause and run the import again.",
        cause: err,
        details: { step, code: err.code, rollbackFailures: failedUndo },
      },
    );
  }
}

async function mainRoot(root: string): Promise<string> {
  return (await worktreeList(root))[0]?.path ?? root;
}

/** The repository's own config when it has one, else the package's. */
async function configFor(root: string, packaged: string | null): Promise<EnvConfig> {
  try {
    return await loadEnvConfig(root);
  } catch (err) {
    if (toDockpackError(err).code !== "ENV_NOT_INITIALISED" || packaged === null) throw err;
    return parseEnvConfigText(packaged, `package:environment/${CONFIG_FILE}`);
  }
}
