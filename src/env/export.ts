/**
 * `exportEnvironment`: writes one environment package (format: package-format.ts) of an
 * environment — its env files, config and compose files, optionally its code, and the data of
 * every configured named volume — atomically into an output folder.
 *
 * Order of work: recover dead runs (recover.ts) → check the volumes and free space (volume sizes
 * + code, refused with the numbers when short) → take the environment's lock (a second export or
 * an import into it waits) → open the run journal (journal.ts) → stage the package in a hidden
 * folder `.dockpack-export-<run>` inside the output folder (recorded first) → write
 * metadata.json's reserved space, environment/, code/ → stop the environment's running
 * containers (recorded first) → stream each volume through the Engine (helper container, GET
 * archive) into a compressed member, hashing on the way → start the containers again →
 * checksums.sha256 → fill in metadata.json → fsync → hard-link the file under its final name
 * (never replacing one) → commit (stage folder removed). Overlapped with that (issue 17): the
 * worktree's git state is read from the start; the volumes are checked and sized together; the
 * first helper container is created as soon as the journal exists (while the package's head is
 * written and the containers stop); the helpers are removed while the package is finished. An error or an interruption
 * (`options.signal`, Ctrl-C) at any point removes the stage folder and starts the stopped
 * containers again; after kill -9 the next dockpack command does it. A package that appeared
 * under its final name is complete.
 */
import { createReadStream } from "node:fs";
import { link, lstat, mkdir, readFile, readlink, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { withSignal } from "../core/abort.js";
import { type MemberInfo, PackageTarWriter } from "../core/archive/file-writer.js";
import { DigestStream } from "../core/digest.js";
import { volumeExists, volumeSize } from "../core/docker/volumes.js";
import { DockpackError } from "../core/errors.js";
import { ensureFreeSpace } from "../core/fs.js";
import { listWorkingFiles, revParse, status } from "../core/git.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { bindMountedData } from "./compose-data.js";
import { CONFIG_FILE } from "./config.js";
import { findEnvironment, repoContext } from "./environments.js";
import { withPausedEnvironment } from "./export-pause.js";
import { exportVolume, volumeDownloads } from "./export-volume.js";
import { failAt } from "./fail-hook.js";
import { Journal } from "./journal.js";
import { sanitizeName } from "./naming.js";
import type { EncryptOptions } from "./package-crypto.js";
import type { PackageKey } from "./package-crypto-stream.js";
import {
  CHECKSUMS_MEMBER,
  METADATA_MEMBER,
  METADATA_RESERVED_BYTES,
  PACKAGE_FORMAT_NAME,
  PACKAGE_FORMAT_VERSION,
  type PackageMetadata,
  type PackageVolume,
  PLAIN_CHECKSUMS_MEMBER,
  packageFileName,
  renderChecksums,
} from "./package-format.js";
import type { ServiceImage } from "./package-images.js";
import type { ImagesMode } from "./package-images-option.js";
import { recoverDeadRuns, withEnvLock } from "./recover.js";
import { STAGE_PREFIX } from "./recover-undo.js";
import { excludeFolderFromGit } from "./settings.js";
import { dockpackVersion } from "./version.js";

/** Options of {@link exportEnvironment}; the CLI flags and the MCP tool map onto these. */
export interface ExportOptions {
  /** A folder inside the repository (default: process cwd). */
  cwd?: string;
  /** Branch of the environment to export. */
  branch: string;
  /** Output folder (default `./packages`, created when missing). */
  outputDir?: string;
  /** Include the worktree's files under code/ (default true). */
  includeCode?: boolean;
  /** Volume codec: `zstd` (default), `gzip`, or `none` (`--no-compress`). */
  codec?: "zstd" | "gzip" | "none";
  /** Encrypt the env files with age to these recipients or this passphrase (package-crypto.ts). */
  encrypt?: EncryptOptions;
  /**
   * With `encrypt`: encrypt every file of code/ and environment/ and every volume member, not
   * only the env files (package-crypto-stream.ts). Names, sizes, modes, symlink targets and
   * metadata.json stay readable.
   */
  encryptAll?: boolean;
  /** Aborts the export (everything it changed is undone; the error is `INTERRUPTED`). */
  signal?: AbortSignal;
  /** The image section (package-images.ts): none (default), all, or missing-from an inventory. */
  images?: ImagesMode;
}

/** Result of {@link exportEnvironment}. */
export interface ExportResult {
  /** Absolute path of the package file. */
  package: string;
  /** Package size in bytes. */
  size: number;
  metadata: PackageMetadata;
  /** Wall time in seconds. */
  seconds: number;
}

/** age encryption (package-crypto.ts), imported only when the export encrypts. */
const crypto = () => import("./package-crypto.js");
/** Streaming age encryption and the package key (package-crypto-stream.ts), likewise. */
const cryptoStream = () => import("./package-crypto-stream.js");
/** The image section (package-images.ts, src/delta), imported only for `--images`. */
const imageSection = () => import("./package-images.js");

async function codeFiles(worktree: string): Promise<string[]> {
  return listWorkingFiles(worktree);
}

async function addFileMember(w: PackageTarWriter, member: string, path: string): Promise<MemberInfo | null> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return w.addSymlink(member, await readlink(path));
  if (!st.isFile()) return null;
  // permission bits as they are (an .env of mode 600 stays 600 after import); never
  // setuid/setgid/sticky or world-writable, which import refuses (PACKAGE_MODE_UNSAFE)
  const mode = st.mode & 0o775;
  if (st.size < 1024 * 1024) return w.addBuffer(member, await readFile(path), mode);
  return w.addStream(member, createReadStream(path, { highWaterMark: 1024 * 1024 }), mode);
}

/** Adds an env file encrypted with age (mode 0600; a symlink is added as a link, unencrypted). */
async function addEncryptedMember(
  w: PackageTarWriter,
  member: string,
  path: string,
  o: EncryptOptions,
): Promise<MemberInfo | null> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return w.addSymlink(member, await readlink(path));
  if (!st.isFile()) return null;
  return w.addBuffer(member, await (await crypto()).encryptBuffer(o, await readFile(path)), 0o600);
}

/** `--encrypt-all`: the package key, its recipient, and the plaintext digests met so far. */
interface AllEncryption {
  key: PackageKey;
  recipient: string;
  plain: { member: string; sha256: string }[];
}

/**
 * `--encrypt-all`: adds a file encrypted (streaming) to the package key, keeping its mode (env
 * files: 0600), and records its plaintext sha256; a symlink is added as a link, unencrypted.
 */
async function addAllEncrypted(
  w: PackageTarWriter,
  member: string,
  path: string,
  all: AllEncryption,
  envFile: boolean,
): Promise<MemberInfo | null> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return w.addSymlink(member, await readlink(path));
  if (!st.isFile()) return null;
  const digest = new DigestStream();
  const enc = (await cryptoStream()).encryptingStream(all.recipient);
  const piping = pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), digest, enc);
  const [info] = await Promise.all([w.addStream(member, enc, envFile ? 0o600 : st.mode & 0o775), piping]);
  all.plain.push({ member, sha256: digest.digest });
  return info;
}

/**
 * Exports the environment of `options.branch` as one package file. See the module docs for the
 * steps and guarantees.
 * @returns the package path, size (bytes), metadata and wall time (seconds)
 * @throws DockpackError `ENV_NOT_FOUND`, `ENV_VOLUME_MISSING` (a configured volume does not
 *   exist: start the environment once), `NO_SPACE` (with needed/available bytes), `VOLUME_*`,
 *   `CODEC_*`, `INTERRUPTED` (aborted), `LOCKED` (the environment stayed locked by another
 *   process for an hour), `INJECTED_FAILURE` (test hook `DOCKPACK_FAIL_AT=export:<step>`)
 */
export async function exportEnvironment(
  options: ExportOptions,
  reporter: Reporter = silentReporter(),
): Promise<ExportResult> {
  return withSignal(options.signal, () => exportUnderSignal(options, reporter));
}

async function exportUnderSignal(options: ExportOptions, reporter: Reporter): Promise<ExportResult> {
  const started = Date.now();
  const cwd = options.cwd ?? process.cwd();
  await recoverDeadRuns(reporter);
  const ctx = await repoContext(cwd);
  const env = await findEnvironment(ctx, options.branch);
  return withEnvLock(env.settings.compose_project, reporter, () =>
    exportLocked(options, reporter, started, ctx, env),
  );
}

async function exportLocked(
  options: ExportOptions,
  reporter: Reporter,
  started: number,
  ctx: Awaited<ReturnType<typeof repoContext>>,
  env: Awaited<ReturnType<typeof findEnvironment>>,
): Promise<ExportResult> {
  const cwd = options.cwd ?? process.cwd();
  const codec = options.codec ?? "zstd";
  const includeCode = options.includeCode ?? true;
  const encrypt = options.encrypt ? (await crypto()).wantsEncryption(options.encrypt) : false;
  if (options.encryptAll && !encrypt)
    throw new DockpackError(
      "ENCRYPTION_OPTIONS_INVALID",
      "--encrypt-all needs --encrypt-to RECIPIENT or --encrypt-passphrase.",
      { hint: "Name who may decrypt the package.", usage: true },
    );
  if (options.encryptAll && options.images && options.images.mode !== "none")
    throw new DockpackError(
      "ENCRYPTION_OPTIONS_INVALID",
      "--encrypt-all does not encrypt the image section, so it is refused with --images.",
      {
        hint: "Drop --images (the receiver pulls or builds the images), or drop --encrypt-all.",
        usage: true,
      },
    );
  let all: AllEncryption | undefined;
  if (options.encryptAll) {
    const { createPackageKey, packageRecipient } = await cryptoStream();
    const key = await createPackageKey(options.encrypt ?? {});
    all = { key, recipient: await packageRecipient(key.identity), plain: [] };
  }
  const outputDir = resolve(cwd, options.outputDir ?? "packages");

  // the worktree's commit and state, read while the export goes on
  const gitState = Promise.all([revParse("HEAD", env.path).catch(() => null), status(env.path)]);
  gitState.catch(() => undefined);
  // the git-ignored files of bind mounts (a git call per mount), listed while the volumes are checked
  const bindData = bindMountedData(env.path, reporter);
  bindData.catch(() => undefined);
  // the volumes are checked and sized together (the first missing one in config order is named)
  const checked = await Promise.allSettled(
    ctx.config.volumes.map(async (name) => {
      const source = env.settings.volumes[name];
      if (!source || !(await volumeExists(source)))
        throw new DockpackError(
          "ENV_VOLUME_MISSING",
          `Volume '${name}' of environment '${options.branch}' (${source ?? "not in the compose files"}) does not exist.`,
          {
            hint: `Start the environment once ('dockpack env up ${options.branch}'), or remove '${name}' from volumes in .dockpack/config.yml.`,
          },
        );
      return { name, source, size: await volumeSize(source) };
    }),
  );
  const volumes: { name: string; source: string; size: number }[] = [];
  for (const c of checked) {
    if (c.status === "rejected") throw c.reason;
    volumes.push(c.value);
  }
  const imagesMode = options.images ?? { mode: "none" };
  const images: ServiceImage[] =
    imagesMode.mode === "none"
      ? []
      : await (await imageSection()).serviceImages(
          env.path,
          ctx.config.compose_files,
          env.settings.compose_project,
        );
  const files = includeCode ? await codeFiles(env.path) : [];
  let codeBytes = 0;
  for (const f of files) codeBytes += (await lstat(join(env.path, f)).catch(() => ({ size: 0 }))).size;
  const needed = volumes.reduce((a, v) => a + v.size, 0) + codeBytes + METADATA_RESERVED_BYTES + 1024 * 1024;
  await mkdir(outputDir, { recursive: true });
  // a package folder inside the repository stays out of `git status` / `git add -A`
  await excludeFolderFromGit(ctx.root, outputDir);
  await ensureFreeSpace(outputDir, needed, `the package of environment '${options.branch}'`);
  failAt("export:space");

  const journal = await Journal.open(
    {
      kind: "export",
      repo: ctx.root,
      branch: options.branch,
      composeProject: env.settings.compose_project,
      signal: options.signal,
    },
    reporter,
  );
  const temp = join(outputDir, `${STAGE_PREFIX}${journal.id}`);
  let writer: PackageTarWriter | undefined;
  // the first volume's helper container is created while the package's head is written and the
  // containers stop (the journal names this process: a kill -9 leaves nothing the next command
  // misses); every helper is removed while the package is finished, before the commit
  const downloads = volumeDownloads(
    volumes.map((v) => v.source),
    codec,
    all?.recipient,
  );
  downloads?.prefetch();
  let closing: Promise<void> | undefined;
  const closeDownloads = () => {
    closing ??= downloads?.close() ?? Promise.resolve();
    return closing;
  };
  try {
    await journal.will({ op: "stage", path: temp });
    await mkdir(temp);
    journal.checkpoint();
    const stagePath = join(temp, "package.tar");
    const now = new Date();
    writer = await PackageTarWriter.open(stagePath, Math.floor(now.getTime() / 1000));
    const w = writer;
    const members: MemberInfo[] = [];
    const reservation = await writer.reserve(METADATA_MEMBER, METADATA_RESERVED_BYTES);

    const environmentFiles: string[] = [];
    const envPaths = [
      ...new Set([...ctx.config.env_files, CONFIG_FILE, ...ctx.config.compose_files, ...(await bindData)]),
    ];
    const encrypted: string[] = [];
    let hasEnvFiles = false;
    for (const rel of envPaths) {
      journal.checkpoint();
      const isEnvFile = ctx.config.env_files.includes(rel);
      const member = `environment/${rel}`;
      const info = await (all
        ? addAllEncrypted(writer, member, join(env.path, rel), all, isEnvFile)
        : isEnvFile && encrypt
          ? addEncryptedMember(writer, member, join(env.path, rel), options.encrypt ?? {})
          : addFileMember(writer, member, join(env.path, rel))
      ).catch((err) => {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw err;
      });
      if (info && isEnvFile) hasEnvFiles = true;
      if (info && isEnvFile && encrypt && !all) encrypted.push(member);
      if (info) {
        members.push(info);
        environmentFiles.push(rel);
      }
    }
    failAt("export:environment");

    let codeCount = 0;
    if (includeCode) {
      reporter.info(`adding ${files.length} code file(s)`);
      for (const rel of files) {
        journal.checkpoint();
        const member = `code/${rel}`;
        const info = await (all
          ? addAllEncrypted(writer, member, join(env.path, rel), all, false)
          : addFileMember(writer, member, join(env.path, rel))
        ).catch((err) => {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
          throw err;
        });
        if (info) {
          members.push(info);
          codeCount++;
        }
      }
    }
    failAt("export:code");

    const section =
      imagesMode.mode === "none"
        ? undefined
        : await (await imageSection()).writeImageSection(writer, images, imagesMode, reporter, () =>
            journal.checkpoint(),
          );
    if (section) members.push(...section.members);

    const packaged: PackageVolume[] = [];
    try {
      await withPausedEnvironment(env.settings.compose_project, journal, reporter, async () => {
        for (const v of volumes) {
          journal.checkpoint();
          const r = await exportVolume(w, v, codec, journal, reporter, all?.recipient, downloads);
          members.push({ name: r.member.name, size: r.volume.compressed_size, sha256: r.member.sha256 });
          packaged.push(r.volume);
          failAt("export:volume");
        }
      });
    } finally {
      void closeDownloads();
    }
    failAt("export:volumes");

    const [commit, { dirty }] = await gitState;
    const metadata: PackageMetadata = {
      format: PACKAGE_FORMAT_NAME,
      format_version: PACKAGE_FORMAT_VERSION,
      dockpack_version: dockpackVersion(),
      created_at: now.toISOString(),
      project: ctx.config.project,
      branch: options.branch,
      compose_project: env.settings.compose_project,
      commit,
      dirty,
      include_code: includeCode,
      environment_files: environmentFiles,
      code_files: codeCount,
      volumes: packaged,
      members: members.length + (all ? 2 : 1),
      ...(encrypted.length ? { encryption: { scheme: "age", members: encrypted } } : {}),
      ...(section ? { images: section.images, images_mode: imagesMode.mode } : {}),
      ...(all ? { encryption: { scheme: "age", members: [], all: true, key: all.key.wrapped } } : {}),
    } as PackageMetadata;
    const json = Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`);
    if (json.length > METADATA_RESERVED_BYTES)
      throw new DockpackError(
        "PACKAGE_METADATA_TOO_LARGE",
        `metadata.json needs ${json.length} bytes, over the ${METADATA_RESERVED_BYTES} reserved.`,
        {
          hint: "Package fewer volumes or env files.",
        },
      );
    const metaInfo = await writer.fill(reservation, json);
    if (all) {
      const list = renderChecksums([{ member: METADATA_MEMBER, sha256: metaInfo.sha256 }, ...all.plain]);
      members.push(
        await writer.addBuffer(
          PLAIN_CHECKSUMS_MEMBER,
          await (await cryptoStream()).encryptSmall(all.recipient, Buffer.from(list)),
          0o600,
        ),
      );
    }
    await writer.addBuffer(
      CHECKSUMS_MEMBER,
      Buffer.from(renderChecksums([metaInfo, ...members].map((m) => ({ member: m.name, sha256: m.sha256 })))),
    );
    // secrets at rest: a package holding env files is readable by its owner only
    await writer.chmod(hasEnvFiles ? 0o600 : 0o644);
    await writer.finish();
    writer = undefined;
    failAt("export:finish");
    journal.checkpoint();

    const finalPath = await publish(
      stagePath,
      outputDir,
      ctx.config.project,
      sanitizeName(options.branch),
      now,
    );
    await closeDownloads();
    await journal.commit();
    const size = (await lstat(finalPath)).size;
    reporter.info(`wrote ${finalPath}`);
    return { package: finalPath, size, metadata, seconds: (Date.now() - started) / 1000 };
  } catch (err) {
    await writer?.abort();
    await closeDownloads();
    const failed = await journal.rollback();
    for (const f of failed) reporter.warn(`rollback: ${f} (the next dockpack command tries again)`);
    throw err;
  }
}

/** Hard-links the staged file under a fresh final name (never replacing a file), then unlinks the stage. */
async function publish(
  stage: string,
  dir: string,
  project: string,
  branch: string,
  date: Date,
): Promise<string> {
  const base = packageFileName(project, branch, date);
  for (let i = 1; i < 100; i++) {
    const name = i === 1 ? base : base.replace(/\.dockpack\.tar$/, `-${i}.dockpack.tar`);
    const target = join(dir, name);
    try {
      await link(stage, target);
      await unlink(stage);
      return target;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  throw new DockpackError("FS_EEXIST", `Too many packages named ${base} in ${dir}.`, {
    hint: "Move some away.",
  });
}
