/**
 * `importPackage`: recreates an environment from a package.
 *
 * Steps, in order (the step names appear in errors): recover dead runs (recover.ts) → `target`:
 * read the package's head and decide where it goes (import-target.ts: the repository must be
 * initialised for the package's project, or `--standalone` gets its own compose project), cheap
 * conflict checks → `verify`: the full verification read (the volumes' contents excepted: each is
 * checked in the one read that restores it, in `volumes`) → the environment's lock (an export of
 * it or another import into it waits) → `conflicts` (again, under the lock) → `space` →
 * `standalone` → `aside` → `worktree` → `code` → `environment` → `settings` → `images` →
 * `volumes` → `finish` (the commit point). The `volumes` step starts right after `aside` and runs
 * in the background meanwhile (import-volumes.ts), so compose's start-up and the other steps cost
 * no time next to the restore; its failure stops the import at the next step boundary.
 *
 * Every change is recorded in the run journal (journal.ts) before it is made. A failure or an
 * interruption (`options.signal`, Ctrl-C) before the commit point rolls back everything and puts
 * back what `--force` moved aside; after kill -9 the next dockpack command does the same. After
 * the commit point an interruption changes nothing: the import has happened.
 */
import { lstat, mkdir, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { withSignal } from "../core/abort.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { ensureFreeSpace } from "../core/fs.js";
import { commitAsDockpack, commitExists, git, withoutGitHooks } from "../core/git.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { CONFIG_FILE, loadEnvConfig, parseEnvConfigText, renderEnvConfig } from "./config.js";
import { describe, type EnvironmentInfo } from "./environments.js";
import { failAt } from "./fail-hook.js";
import { moveAside } from "./import-aside.js";
import { createStandaloneRepo, dockerRootDir, removeFilesNotIn, restoreMembers } from "./import-restore.js";
import { type ImportTarget, refuseConflicts, resolveTarget, targetConflicts } from "./import-target.js";
import { prepareVolumeHelpers, startVolumes, type VolumeJob } from "./import-volumes.js";
import { composeWarnings } from "./inspect-compose.js";
import { inspectVerified } from "./inspect-verified.js";
import { Journal } from "./journal.js";
import { worktreeFolder } from "./naming.js";
import { decryptMembers, readPackageEncryption, writePlain } from "./package-crypto.js";
import { unwrapPackageKey } from "./package-crypto-stream.js";
import type { LoadedImage, PreparedImages } from "./package-images-load.js";
import { readPackageHead, requireValidPackage } from "./package-reader.js";
import { recoverDeadRuns, withEnvLock } from "./recover.js";
import type { SealedRestore } from "./restore-files.js";
import { excludeFromGit, writeEnvSettings } from "./settings.js";

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
  /**
   * With `standalone`: the new repository's project name, hence compose project
   * `<project>-<branch>` (default: the folder's name, sanitised).
   */
  project?: string;
  /** Restore device nodes and fifos found in volume tars (refused by default). */
  allowSpecialFiles?: boolean;
  /** age identity files to decrypt encrypted env files with (package-crypto.ts). */
  identity?: string[];
  /** The passphrase encrypted env files were encrypted to. */
  passphrase?: string;
  /** Aborts the import (everything it changed is rolled back; the error is `IMPORT_FAILED`/`INTERRUPTED`). */
  signal?: AbortSignal;
  /** Load the package's image section (default true; `--no-images`: false). package-images-load.ts. */
  images?: boolean;
  /**
   * Streaming registry import (registry-import.ts): `package` is a skeleton whose volume data
   * are holes; each volume member's bytes (at `at` in the package) are read from this stream
   * instead, checked in the same one pass as a file's. Volume contents are then never read from
   * `package` (also with `restoreData: false`).
   */
  volumeSource?: (member: string, at: { offset: number; size: number }) => Readable;
  /**
   * Image IDs the engine has already, verified (loaded from a registry: registry-images-import.ts);
   * their image members are not read (package-reader.ts `imagesElsewhere`), they may be holes.
   */
  imagesElsewhere?: ReadonlySet<string>;
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
  /** The images of the package's image section: loaded, or already in the engine (absent without one). */
  images?: LoadedImage[];
}

/**
 * Imports a package; see the module docs for the steps and guarantees.
 * @throws DockpackError: `PACKAGE_NOT_FOUND`; the package's first problem code
 *   (`PACKAGE_CHECKSUM_MISMATCH`, `PACKAGE_VERSION_UNSUPPORTED`, …) with every problem in details;
 *   `IMPORT_NOT_INITIALISED` / `IMPORT_PROJECT_MISMATCH` (not a clone of the package's project);
 *   `IMPORT_CONFLICT` listing conflicts; `PACKAGE_ENCRYPTED` (no key for its encrypted env files),
 *   `PACKAGE_DECRYPT_FAILED`, `IDENTITY_INVALID`; `IMPORT_STANDALONE_NOT_EMPTY`; `NO_SPACE`; `LOCKED`;
 *   `IMPORT_FAILED` naming the failed step (cause: the original error, e.g. `INTERRUPTED`)
 */
export async function importPackage(
  options: ImportOptions,
  reporter: Reporter = silentReporter(),
): Promise<ImportResult> {
  // The package is untrusted: no git hook of any repository runs during an import.
  return withSignal(options.signal, () => withoutGitHooks(() => importSteps(options, reporter)));
}

async function importSteps(options: ImportOptions, reporter: Reporter): Promise<ImportResult> {
  const started = Date.now();
  await recoverDeadRuns(reporter);
  const file = resolve(options.cwd ?? process.cwd(), options.package);
  await lstat(file).catch(() => {
    throw new DockpackError("PACKAGE_NOT_FOUND", `Package ${file} does not exist.`, {
      hint: "List packages with 'dockpack packages list'.",
    });
  });
  // cheap checks first: where it goes, and what is in the way, from metadata.json alone
  const head = await readPackageHead(file);
  const target = await resolveTarget(options, head);
  refuseConflicts(target, await targetConflicts(target), Boolean(options.force));
  failAt("import:target");
  // --encrypt-all: the package key first (no key or a wrong one: nothing was changed)
  const keys = { identityFiles: options.identity, passphrase: options.passphrase };
  const packageIdentity = head.encryption?.all
    ? await unwrapPackageKey(head.encryption.key ?? "", keys, basename(file))
    : undefined;

  reporter.info(`verifying ${file}`);
  // one pass over the volume data: its content is checked while it is restored (restoreVolume),
  // everything else now; a volume that fails its check rolls the whole import back
  const verified = await requireValidPackage(file, reporter, {
    allowSpecialFiles: options.allowSpecialFiles === true,
    deferVolumes: options.restoreData !== false || options.volumeSource !== undefined,
    imagesElsewhere: options.imagesElsewhere,
    packageIdentity,
  });
  if (verified.metadata.encryption?.key !== head.encryption?.key)
    throw new DockpackError(
      "PACKAGE_CHANGED",
      `${file} changed while it was being read; nothing was changed.`,
      {
        hint: "Do not modify the package while importing; run the import again.",
      },
    );
  // the package is sound: the helper image and the sweep of dead helpers start now, so the first
  // volume's helper is made at once when its volume exists
  if (verified.metadata.volumes.length > 0 && options.restoreData !== false) prepareVolumeHelpers();
  // what env up would do beyond the project, said before anything runs it
  for (const w of composeWarnings(inspectVerified(verified).compose)) reporter.warn(w);
  failAt("import:verify");
  if (options.signal?.aborted)
    throw new DockpackError("INTERRUPTED", "Interrupted; nothing was changed.", {
      hint: "Run the import again.",
    });
  // encrypted env files are decrypted (in memory) before anything changes: a wrong key changes nothing
  const enc = packageIdentity ? null : await readPackageEncryption(file);
  const plain = enc
    ? await decryptMembers(file, enc, { identityFiles: options.identity, passphrase: options.passphrase })
    : new Map<string, Buffer>();
  // the verified metadata is what counts (the head was read before the full check)
  const t = await resolveTarget(options, verified.metadata);
  const sealed =
    packageIdentity && verified.sealed
      ? { identity: packageIdentity, plain: verified.sealed.plain }
      : undefined;
  // every image the engine lacks is rebuilt and checked against its diff_ids and ID before
  // anything is created (package-images-load.ts; with the delta code, loaded only for a package
  // with images: an import without them does not pay for its start-up)
  const prepared =
    options.images !== false && verified.metadata.images?.length
      ? await (await import("./package-images-load.js")).prepareImages(
          file,
          verified.metadata,
          verified.checksums,
          t.composeProject,
          reporter,
        )
      : undefined;
  failAt("import:images-verify");
  try {
    return await withEnvLock(t.composeProject, reporter, () =>
      importLocked(options, reporter, started, file, verified, t, plain, prepared, sealed),
    );
  } finally {
    await prepared?.close();
  }
}

async function importLocked(
  options: ImportOptions,
  reporter: Reporter,
  started: number,
  file: string,
  verified: Awaited<ReturnType<typeof requireValidPackage>>,
  t: ImportTarget,
  plain: Map<string, Buffer>,
  prepared: PreparedImages | undefined,
  sealed: SealedRestore | undefined,
): Promise<ImportResult> {
  const writeDecrypted = async (dir: string) => {
    for (const [member, bytes] of plain)
      await writePlain(join(dir, member.slice("environment/".length)), bytes);
  };
  const meta = verified.metadata;
  const journal = await Journal.open(
    {
      kind: "import",
      repo: t.root ?? t.standalone?.dir ?? null,
      branch: t.branch,
      composeProject: t.composeProject,
      signal: options.signal,
    },
    reporter,
  );
  let volumes: VolumeJob | undefined;
  try {
    journal.step = "conflicts";
    const conflicts = await targetConflicts(t);
    refuseConflicts(t, conflicts, Boolean(options.force));
    failAt("import:conflicts");
    journal.checkpoint();

    let root = t.root;
    let config = t.config;
    if (t.standalone) {
      journal.step = "standalone";
      await journal.will({ op: "standalone", dir: t.standalone.dir, existed: t.standalone.existed });
      root = await createStandaloneRepo(
        t.standalone.dir,
        file,
        meta,
        verified.checksums,
        t.branch,
        journal,
        reporter,
        sealed,
      );
      await writeDecrypted(root);
      config = await standaloneConfig(root, verified.configText, t.project);
      failAt("import:standalone");
      journal.checkpoint();
    }
    if (!root || !config) throw new Error("unreachable: no target repository");
    const worktreesRoot = resolve(root, config.worktrees_dir);
    const path = t.path ?? join(worktreesRoot, worktreeFolder(t.branch));

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
          t.branch,
          path,
          t.composeProject,
          t.volumes.map((v) => v.target),
          conflicts,
          journal,
          reporter,
        )
      : [];
    failAt("import:aside");
    journal.checkpoint();

    // the volumes are created and restored from here on (what was in their way is aside), while
    // the worktree, its files, the settings (compose's model) and the images are made
    // (import-volumes.ts)
    volumes = startVolumes({
      file,
      target: t,
      volumes: meta.volumes,
      deferred: verified.deferred,
      journal,
      reporter,
      restoreData: options.restoreData !== false,
      allowSpecialFiles: options.allowSpecialFiles === true,
      identity: sealed?.identity,
      volumeSource: options.volumeSource,
    });
    journal.step = "worktree";
    await excludeFromGit(root, config.worktrees_dir);
    const atPackageCommit = meta.commit !== null && (await commitExists(meta.commit, root));
    if (!atPackageCommit && !t.standalone)
      reporter.warn(
        `commit ${meta.commit ?? "(none)"} of the package is not in this repository; the worktree starts at HEAD`,
      );
    const from = atPackageCommit ? (meta.commit as string) : "HEAD";
    reporter.info(`creating worktree ${path} for branch ${t.branch} at ${from}`);
    await journal.will({ op: "worktree", root, path, branch: t.branch });
    await git(["worktree", "add", "-b", t.branch, "--", path, from], root);
    const commit = (await git(["rev-parse", "HEAD"], path)).trim();
    failAt("import:worktree");
    journal.checkpoint();

    const job = volumes;
    /** A step boundary: an interruption, or the volumes' failure, stops the import here. */
    const next = (step: string) => {
      journal.checkpoint();
      const failure = job.failure();
      if (failure) {
        journal.step = "volumes";
        throw failure;
      }
      journal.step = step;
    };

    next("code");
    if (meta.include_code) {
      const written = await restoreMembers(file, "code/", path, verified.checksums, sealed);
      await removeFilesNotIn(path, written);
      reporter.info(`restored ${written.size} code file(s)`);
    }
    failAt("import:code");
    next("environment");
    await restoreMembers(file, "environment/", path, verified.checksums, sealed);
    await writeDecrypted(path);
    if (t.standalone) await writeFile(join(path, CONFIG_FILE), renderEnvConfig(config));
    failAt("import:environment");
    next("settings");
    const wtConfig = await loadEnvConfig(path).catch(() => config);
    const settings = await writeEnvSettings(
      { ...wtConfig, project: t.project },
      path,
      worktreesRoot,
      t.branch,
    );
    volumes.settings(settings);
    failAt("import:settings");
    next("images");
    const images = prepared
      ? await (await import("./package-images-load.js")).loadImages(
          prepared,
          t.composeProject,
          journal,
          reporter,
        )
      : undefined;
    failAt("import:images");
    next("volumes");
    await volumes.done;
    failAt("import:volumes");

    journal.step = "finish";
    const environment = await describe(path, settings);
    failAt("import:finish");
    journal.checkpoint();
    await journal.commit();
    return {
      environment,
      repository: root,
      commit,
      atPackageCommit,
      replaced,
      source: { project: meta.project, branch: meta.branch, created_at: meta.created_at },
      seconds: (Date.now() - started) / 1000,
      ...(images ? { images } : {}),
    };
  } catch (e) {
    // nothing of the volumes' step may run while the rollback does
    await volumes?.stop();
    const err = toDockpackError(e);
    const step = journal.step;
    const failedUndo = await journal.rollback();
    if (err.code === "IMPORT_CONFLICT" && failedUndo.length === 0) throw err;
    // a volume's content refused by its check (the one-pass read): the package's problem, as
    // validate names it, once everything is undone
    if (err.details?.packageProblem === true && failedUndo.length === 0)
      throw new DockpackError(err.code, `${err.message}; everything the import changed was rolled back`, {
        hint: err.hint,
        cause: err,
        details: err.details,
      });
    throw new DockpackError(
      "IMPORT_FAILED",
      `Import failed at step '${step}': ${err.message}${failedUndo.length ? `; rollback incomplete (the next dockpack command tries again): ${failedUndo.join("; ")}` : "; everything it changed was rolled back"}`,
      {
        hint: err.hint ?? "Fix the cause and run the import again.",
        cause: err,
        details: { step, code: err.code, rollbackFailures: failedUndo },
      },
    );
  }
}

/**
 * The config of a `--standalone` repository: the package's, with the standalone copy's own
 * project name (so its compose project and volumes never are the source environment's),
 * committed in the new repository with hooks disabled.
 */
async function standaloneConfig(root: string, packaged: string | null, project: string) {
  const base = await loadEnvConfig(root).catch((err) => {
    if (toDockpackError(err).code !== "ENV_NOT_INITIALISED" || packaged === null) throw err;
    return parseEnvConfigText(packaged, `package:environment/${CONFIG_FILE}`);
  });
  if (base.project === project) return base;
  const config = { ...base, project };
  await mkdir(join(root, ".dockpack"), { recursive: true });
  await writeFile(join(root, CONFIG_FILE), renderEnvConfig(config));
  await git(["add", "--", CONFIG_FILE], root);
  await commitAsDockpack(root, `dockpack: project '${project}' for this standalone copy`);
  return config;
}
