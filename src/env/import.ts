/**
 * `importPackage`: brings an environment package back as a running-ready environment.
 *
 * Steps (each named in errors and usable with the test hook `DOCKPACK_FAIL_AT=import:<step>`):
 * `verify` (every checksum, format version, paths — before anything changes) → `conflicts`
 * (branch, worktree, folder, volumes, containers of the target name; refused without `force`) →
 * `space` (worktrees folder and Docker's data root) → `standalone` (with `standalone`: a fresh
 * repository from the code snapshot) → `aside` (with `force`: what would be replaced is moved
 * aside) → `worktree` (branch + worktree at the package's commit when the repository has it,
 * else HEAD with a warning) → `code` (the code snapshot) → `environment` (env files, config,
 * compose files) → `settings` (env.yml and compose.yml for the *target* name) → `volumes`
 * (created, data restored unless `restoreData` is false) → `finish`.
 * Any failure, Ctrl-C or kill rolls back everything created and puts back what was moved aside.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, lstat, mkdir, readdir, rename, rm, symlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { checkEntryPath, readTar } from "../core/archive.js";
import { decompressStream } from "../core/codec.js";
import { verifyingStream } from "../core/digest.js";
import { getDocker } from "../core/docker/client.js";
import { listContainers } from "../core/docker/containers.js";
import {
  createVolume,
  readVolumeTar,
  removeVolume,
  volumeExists,
  writeVolumeTar,
} from "../core/docker/volumes.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { ensureFreeSpace } from "../core/fs.js";
import {
  branchExists,
  commitExists,
  deleteBranch,
  git,
  worktreeAdd,
  worktreeList,
  worktreeRemove,
} from "../core/git.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { composeDown, composeUp, runningContainers } from "./compose-run.js";
import { CONFIG_FILE, type EnvConfig, loadEnvConfig, parseEnvConfigText } from "./config.js";
import { describe, type EnvironmentInfo, findRepoRoot } from "./environments.js";
import { failAt } from "./fail-hook.js";
import { Journal } from "./journal.js";
import { checkBranchName, composeProjectName, volumeName, worktreeFolder } from "./naming.js";
import type { PackageMetadata } from "./package-format.js";
import { requireValidPackage } from "./package-reader.js";
import { excludeFromGit, readEnvSettings, writeEnvSettings } from "./settings.js";

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

/** A conflict found before an import. */
export interface ImportConflict {
  kind: "branch" | "worktree" | "folder" | "volume" | "containers";
  name: string;
}

const stamp = () => new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15);

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
  const started = Date.now();
  const file = resolve(options.cwd ?? process.cwd(), options.package);
  await lstat(file).catch(() => {
    throw new DockpackError("PACKAGE_NOT_FOUND", `Package ${file} does not exist.`, {
      hint: "List packages with 'dockpack packages list'.",
    });
  });
  reporter.info(`verifying ${file}`);
  const verified = await requireValidPackage(file, reporter);
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
      await createVolume(dockerName, {
        "com.docker.compose.project": composeProject,
        "com.docker.compose.volume": v.name,
      });
      journal.added(`remove volume ${dockerName}`, () => removeVolume(dockerName));
      if (options.restoreData === false) continue;
      reporter.info(`restoring volume ${dockerName}`);
      await restoreVolume(file, v.member, v.sha256, v.codec, dockerName, reporter, v.size, journal);
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

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** Lists what already exists under the target name. */
export async function findConflicts(
  root: string,
  branch: string,
  path: string,
  composeProject: string,
  volumes: string[],
): Promise<ImportConflict[]> {
  const out: ImportConflict[] = [];
  if (await branchExists(branch, root)) out.push({ kind: "branch", name: branch });
  const wt = (await worktreeList(root)).find((w) => w.branch === branch);
  if (wt) out.push({ kind: "worktree", name: wt.path });
  else if (await exists(path)) out.push({ kind: "folder", name: path });
  for (const v of volumes) if (await volumeExists(v)) out.push({ kind: "volume", name: v });
  const containers = await listContainers({ labels: { "com.docker.compose.project": composeProject } });
  if (containers.length) out.push({ kind: "containers", name: `${composeProject} (${containers.length})` });
  return out;
}

/** Moves conflicting things aside (undone on rollback, dropped after success). Returns their names. */
async function moveAside(
  root: string,
  branch: string,
  path: string,
  composeProject: string,
  volumes: string[],
  conflicts: ImportConflict[],
  journal: Journal,
  reporter: Reporter,
): Promise<string[]> {
  const tag = stamp();
  const replaced: string[] = [];
  const wt = (await worktreeList(root)).find((w) => w.branch === branch);
  if (wt || conflicts.some((c) => c.kind === "containers")) {
    const wtPath = wt?.path ?? path;
    const running = (await runningContainers(composeProject)).length > 0;
    const settings = wt ? await readEnvSettings(wt.path).catch(() => null) : null;
    if (settings) {
      reporter.info(`stopping ${composeProject} (replaced)`);
      await composeDown(wtPath, composeProject);
      journal.added(`start ${composeProject} again`, async () => {
        if (running) await composeUp(wtPath, composeProject);
      });
    }
  }
  if (wt) {
    const aside = `${wt.path}.aside-${tag}`;
    await git(["worktree", "move", wt.path, aside], root);
    journal.added(`move worktree back to ${wt.path}`, () =>
      git(["worktree", "move", aside, wt.path], root).then(() => {}),
    );
    journal.afterSuccess(`remove old worktree ${aside}`, () => worktreeRemove(root, aside, { force: true }));
    replaced.push(`worktree ${wt.path}`);
  } else if (await exists(path)) {
    const aside = `${path}.aside-${tag}`;
    await rename(path, aside);
    journal.added(`move folder back to ${path}`, () => rename(aside, path));
    journal.afterSuccess(`remove old folder ${aside}`, () => rm(aside, { recursive: true, force: true }));
    replaced.push(`folder ${path}`);
  }
  if (await branchExists(branch, root)) {
    const asideBranch = `dockpack-aside/${tag}/${branch}`;
    await git(["branch", "-m", branch, asideBranch], root);
    journal.added(`rename branch ${asideBranch} back to ${branch}`, async () => {
      await deleteBranch(branch, root, true).catch(() => {});
      await git(["branch", "-m", asideBranch, branch], root);
    });
    journal.afterSuccess(`delete old branch ${asideBranch}`, () => deleteBranch(asideBranch, root, true));
    replaced.push(`branch ${branch}`);
  }
  for (const v of volumes) {
    if (!(await volumeExists(v))) continue;
    const aside = `${v}-aside-${tag}`;
    reporter.info(`keeping volume ${v} aside as ${aside}`);
    await createVolume(aside, { "io.dockpack.aside-of": v });
    journal.added(`remove aside volume ${aside}`, () => removeVolume(aside));
    await writeVolumeTar(aside, await readVolumeTar(v));
    await removeVolume(v);
    journal.added(`restore volume ${v} from ${aside}`, async () => {
      if (await volumeExists(v)) await removeVolume(v);
      await createVolume(v);
      await writeVolumeTar(v, await readVolumeTar(aside));
    });
    journal.afterSuccess(`remove aside volume ${aside}`, () => removeVolume(aside));
    replaced.push(`volume ${v}`);
  }
  return replaced;
}

/**
 * Writes the members under `prefix` (files and symlinks) into `dest`, checking every path and
 * every file's sha256 against `checksums` again while writing. Returns the relative paths written.
 */
async function restoreMembers(
  file: string,
  prefix: string,
  dest: string,
  checksums: Map<string, string>,
): Promise<Set<string>> {
  const written = new Set<string>();
  await readTar(createReadStream(file, { highWaterMark: 1024 * 1024 }), async (header, body) => {
    if (!header.name.startsWith(prefix) || header.type === "directory") {
      body.resume();
      return;
    }
    const rel = header.name.slice(prefix.length);
    const why = checkEntryPath(rel);
    if (why) throw new DockpackError("PACKAGE_UNSAFE_PATH", `member '${header.name}' is unsafe: ${why}`);
    const target = join(dest, rel);
    await mkdir(dirname(target), { recursive: true });
    await rm(target, { force: true, recursive: false }).catch(() => {});
    if (header.type === "symlink") {
      await symlink(header.linkname ?? "", target);
      body.resume();
    } else if (header.type === "file") {
      const expected = checksums.get(header.name);
      if (!expected)
        throw new DockpackError("PACKAGE_MEMBER_UNLISTED", `member '${header.name}' has no checksum`);
      await pipeline(
        body,
        verifyingStream(expected, header.name),
        createWriteStream(target, { mode: 0o644 }),
      );
      await chmod(target, (header.mode ?? 0o644) & 0o111 ? 0o755 : 0o644);
    } else body.resume();
    written.add(rel);
  });
  return written;
}

/** Removes checked-out files that the code snapshot did not contain (deleted before export). */
async function removeFilesNotIn(worktree: string, keep: Set<string>): Promise<void> {
  const tracked = (await git(["ls-files", "-z"], worktree)).split("\0").filter(Boolean);
  for (const f of tracked) if (!keep.has(f)) await rm(join(worktree, f), { force: true });
}

/** Streams one volume member (verified on the way) into the Docker volume `dockerName`. */
async function restoreVolume(
  file: string,
  member: string,
  sha256: string,
  codec: PackageMetadata["volumes"][number]["codec"],
  dockerName: string,
  reporter: Reporter,
  size: number,
  journal: Journal,
): Promise<void> {
  let found = false;
  const source = createReadStream(file, { highWaterMark: 1024 * 1024 });
  const unhook = journal.onCancel(() =>
    source.destroy(new DockpackError("INTERRUPTED", "Interrupted by a signal.")),
  );
  const inFlight: { writing?: Promise<unknown> } = {};
  try {
    await readVolumeMember(source, member, sha256, codec, dockerName, reporter, size, inFlight, () => {
      found = true;
    });
  } finally {
    unhook();
    // the tar reader may fail before the engine upload ends: wait for it (and its helper
    // container's removal), or the rollback could not remove the volume
    await inFlight.writing?.catch(() => {});
  }
  if (!found) throw new DockpackError("PACKAGE_MEMBER_MISSING", `member '${member}' is missing`);
}

async function readVolumeMember(
  source: Readable,
  member: string,
  sha256: string,
  codec: PackageMetadata["volumes"][number]["codec"],
  dockerName: string,
  reporter: Reporter,
  size: number,
  inFlight: { writing?: Promise<unknown> },
  onFound: () => void,
): Promise<void> {
  await readTar(source, async (header, body) => {
    if (header.name !== member) {
      body.resume();
      return;
    }
    onFound();
    const bar = reporter.progress(`volume ${dockerName}`, size);
    let done = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        done += chunk.length;
        bar.update(Math.min(done, size));
        cb(null, chunk);
      },
    });
    // both sides must have finished (the helper container removed) before a rollback may run
    const all = Promise.allSettled([
      pipeline(body, verifyingStream(sha256, member), decompressStream(codec), counter),
      writeVolumeTar(dockerName, counter).catch((err) => {
        counter.destroy(err);
        throw err;
      }),
    ]);
    inFlight.writing = all;
    const results = await all;
    bar.stop();
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (done !== size)
      throw new DockpackError(
        "VOLUME_RESTORE_INCOMPLETE",
        `Volume ${dockerName}: ${done} of ${size} tar bytes of ${member} reached the engine.`,
        {
          hint: "Run the import again; check the Docker Engine's log.",
        },
      );
  });
}

/** Docker's data root when the engine is local (unix socket), for the free-space check. */
async function dockerRootDir(): Promise<string | null> {
  try {
    const info = (await getDocker().info()) as { DockerRootDir?: string };
    const dir = info.DockerRootDir;
    if (dir && (await exists(dir))) return dir;
  } catch {
    // remote or unreadable: skip the check
  }
  return null;
}

/**
 * `--standalone DIR`: a fresh repository in DIR (must not exist or be empty) whose first commit
 * holds the package's code snapshot and environment files. Removed again on rollback.
 * @throws DockpackError `PACKAGE_NO_CODE` when the package has no code, `IMPORT_STANDALONE_NOT_EMPTY`
 */
async function createStandaloneRepo(
  dir: string,
  file: string,
  meta: PackageMetadata,
  checksums: Map<string, string>,
  target: string,
  journal: Journal,
  reporter: Reporter,
): Promise<string> {
  if (!meta.include_code)
    throw new DockpackError(
      "PACKAGE_NO_CODE",
      `${file} holds no code snapshot, so --standalone cannot build a repository from it.`,
      {
        hint: "Export with --include-code, or import inside a clone of the project.",
      },
    );
  const present = await readdir(dir).catch(() => null);
  if (present && present.length > 0)
    throw new DockpackError("IMPORT_STANDALONE_NOT_EMPTY", `${dir} exists and is not empty.`, {
      hint: "Name a new or empty folder for --standalone.",
    });
  await mkdir(dir, { recursive: true });
  journal.added(`remove ${dir}`, async () => {
    if (present) {
      for (const n of await readdir(dir)) await rm(join(dir, n), { recursive: true, force: true });
    } else await rm(dir, { recursive: true, force: true });
  });
  reporter.info(`creating repository ${dir} from the code snapshot`);
  await git(["init", "-q"], dir);
  // the main checkout's branch must not be the imported branch, which gets its own worktree
  await git(["symbolic-ref", "HEAD", `refs/heads/${target === "main" ? "trunk" : "main"}`], dir);
  await restoreMembers(file, "code/", dir, checksums);
  await restoreMembers(file, "environment/", dir, checksums);
  await git(["add", "-A"], dir);
  await git(
    [
      "-c",
      "user.name=dockpack",
      "-c",
      "user.email=dockpack@localhost",
      "commit",
      "-q",
      "--allow-empty",
      "-m",
      `Code of ${meta.project}/${meta.branch} from a dockpack package (commit ${meta.commit ?? "none"})`,
    ],
    dir,
  );
  return dir;
}
