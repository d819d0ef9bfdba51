/**
 * Finding the features to package and validating all of them before anything is written.
 *
 * Follows the devcontainer CLI's `features package` convention: the target is a single feature
 * folder (it holds `devcontainer-feature.json`) or a collection folder whose sub-folders are
 * features (the CLI's `src` folder). dockpack also accepts a repository root that holds `src/`.
 */
import { constants } from "node:fs";
import { lstat, open, readdir, readlink, realpath, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { DockpackError } from "../core/errors.js";
import type { Reporter } from "../core/output.js";
import {
  checkFeatureMetadata,
  FEATURE_FILE,
  type FeatureMetadata,
  type FeatureProblem,
  INSTALL_SCRIPT,
  parseJsonc,
  publishedMetadata,
} from "./metadata.js";

/** A validated feature, ready to be packaged. */
export interface FeatureSource {
  /** The feature id (equal to its folder name). */
  id: string;
  /** Its semantic version. */
  version: string;
  /** The feature folder (absolute path). */
  folder: string;
  /** The metadata as published (parsed file, plus `currentId` when it has legacyIds). */
  metadata: FeatureMetadata;
  /** True when the packaged devcontainer-feature.json differs from the file (currentId added). */
  rewritten: boolean;
  /** Upper bound of the bytes its tarball takes: file sizes plus 1 KiB of tar framing per entry. */
  bytes: number;
}

/** Largest devcontainer-feature.json read (bytes); a real one is a few KiB. */
export const FEATURE_FILE_LIMIT = 4 * 1024 * 1024;

/**
 * Reads a feature's devcontainer-feature.json as UTF-8 without ever blocking or filling memory:
 * opened non-blocking (a fifo does not wait for a writer), it must be a regular file of at most
 * {@link FEATURE_FILE_LIMIT} bytes inside `folder` (a symlink to a file elsewhere, e.g. a
 * credentials file, is never read: its content would be published as the feature's metadata).
 * @throws Error whose message says what the file is instead (link out, fifo, device, folder, too large)
 */
async function readFeatureFile(file: string, folder: string): Promise<string> {
  const real = await realpath(file);
  const root = await realpath(folder);
  if (!real.startsWith(root + sep)) throw new Error(`it is a link to ${real}, outside the feature folder`);
  const handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile())
      throw new Error(
        `it is ${st.isDirectory() ? "a folder" : st.isFIFO() ? "a fifo" : st.isSocket() ? "a socket" : "a device file"}, not a regular file`,
      );
    if (st.size > FEATURE_FILE_LIMIT)
      throw new Error(`it is ${st.size} bytes; more than ${FEATURE_FILE_LIMIT} bytes is refused`);
    const buf = Buffer.alloc(FEATURE_FILE_LIMIT + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > FEATURE_FILE_LIMIT) throw new Error(`it grew past ${FEATURE_FILE_LIMIT} bytes while read`);
    }
    return buf.toString("utf8", 0, n);
  } finally {
    await handle.close();
  }
}

/** What {@link discoverFeatures} found. */
export interface FeatureDiscovery {
  /** `single`: the target is one feature folder; `collection`: a folder of feature folders. */
  mode: "single" | "collection";
  /** The folder holding the feature folders (collection), or the feature folder (single). Absolute. */
  root: string;
  /** The features, sorted by id. */
  features: FeatureSource[];
}

async function kindOf(path: string): Promise<"file" | "dir" | "other" | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? "file" : s.isDirectory() ? "dir" : "other";
  } catch {
    return null;
  }
}

/** Renders problems as the lines of a FEATURES_INVALID message. */
export function formatFeatureProblems(problems: FeatureProblem[], base = process.cwd()): string {
  return problems
    .map((p) => {
      const rel = relative(base, p.file);
      const file = rel === "" ? "." : rel.startsWith("..") ? p.file : rel;
      return `  - ${file}${p.path ? ` ${p.path}` : ""}: ${p.message}`;
    })
    .join("\n");
}

async function readFeature(
  folder: string,
  problems: FeatureProblem[],
  reporter: Reporter,
): Promise<FeatureSource | undefined> {
  const file = join(folder, FEATURE_FILE);
  const name = basename(folder);
  const before = problems.length;
  const add = (p: Omit<FeatureProblem, "feature">) => problems.push({ feature: folder, ...p });
  if ((await kindOf(join(folder, INSTALL_SCRIPT))) !== "file")
    add({
      file: join(folder, INSTALL_SCRIPT),
      message: `the feature has no ${INSTALL_SCRIPT} (required entrypoint)`,
    });
  let text: string;
  try {
    text = await readFeatureFile(file, folder);
  } catch (e) {
    add({ file, message: `cannot read it: ${(e as Error).message}` });
    return undefined;
  }
  const { value, errors } = parseJsonc(text);
  if (errors.length > 0) {
    for (const err of errors) add({ file, message: `not valid JSON (with comments) at ${err}` });
    return undefined;
  }
  const { errors: invalid, warnings } = checkFeatureMetadata(value, name);
  for (const p of invalid) add({ file, path: p.path, message: p.message });
  for (const w of warnings) reporter.warn(formatFeatureProblems([{ feature: folder, file, ...w }]).slice(4));
  if (problems.length > before) return undefined;
  const { metadata, rewritten } = publishedMetadata(value as FeatureMetadata);
  return { id: metadata.id, version: metadata.version, folder, metadata, rewritten, bytes: 0 };
}

/**
 * Walks a feature folder before anything is written: fifos and device files (which cannot be
 * packaged) are problems; symlinks pointing outside the feature folder get a warning (they dangle
 * wherever the feature is installed).
 * @returns the bytes its tarball may take (file sizes plus 1 KiB per entry for header and padding)
 */
async function checkTree(
  folder: string,
  exclude: string[],
  problems: FeatureProblem[],
  reporter: Reporter,
): Promise<number> {
  let bytes = 2048;
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (exclude.includes(path)) continue;
      bytes += 1024;
      if (entry.isFile()) bytes += (await lstat(path)).size;
      if (entry.isDirectory()) await visit(path);
      else if (entry.isSymbolicLink()) {
        const target = await readlink(path);
        const resolved = isAbsolute(target) ? target : resolve(dirname(path), target);
        if (resolved !== folder && !resolved.startsWith(folder + sep))
          reporter.warn(
            `${path} links to ${target}, outside the feature folder; it will dangle once installed.`,
          );
      } else if (entry.isFIFO() || entry.isBlockDevice() || entry.isCharacterDevice()) {
        const kind = entry.isFIFO() ? "a fifo" : "a device file";
        problems.push({
          feature: folder,
          file: path,
          message: `${kind} cannot be packaged; remove it from the feature`,
        });
      }
    }
  };
  await visit(folder);
  return bytes;
}

/**
 * Finds and validates the features under `target` (a path; default cwd) — reads files only.
 * Mode: `single` when `target/devcontainer-feature.json` exists; otherwise `collection` over the
 * non-hidden sub-folders of `target` that hold a devcontainer-feature.json or an install.sh, or,
 * when there are none and `target/src` is a folder, over `target/src`. Sub-folders with neither
 * file are skipped with a warning, as the devcontainer CLI does.
 * @param exclude absolute paths never treated as feature folders (the output and staging folders)
 * @throws DockpackError `FEATURES_TARGET_MISSING` (target absent or not a folder),
 *   `FEATURES_NOT_FOUND` (no feature and no feature folders: empty collection),
 *   `FEATURES_INVALID` listing every problem of every feature (details.problems), fifos and
 *   device files inside features included.
 */
export async function discoverFeatures(
  target: string,
  reporter: Reporter,
  exclude: string[] = [],
): Promise<FeatureDiscovery> {
  const abs = resolve(target);
  const kind = await kindOf(abs);
  if (kind !== "dir")
    throw new DockpackError(
      "FEATURES_TARGET_MISSING",
      kind === null ? `The target folder ${abs} does not exist.` : `The target ${abs} is not a folder.`,
      { hint: "Pass a feature folder or a folder of feature folders (such as src)." },
    );
  const problems: FeatureProblem[] = [];
  let mode: FeatureDiscovery["mode"];
  let root = abs;
  let folders: string[];
  if ((await kindOf(join(abs, FEATURE_FILE))) !== null) {
    mode = "single";
    folders = [abs];
  } else {
    mode = "collection";
    const scan = async (dir: string) => {
      const out: string[] = [];
      for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
      )) {
        const path = join(dir, entry.name);
        if (entry.name.startsWith(".") || exclude.includes(path)) continue;
        if ((await kindOf(path)) !== "dir") continue;
        const hasMeta = (await kindOf(join(path, FEATURE_FILE))) !== null;
        const hasInstall = (await kindOf(join(path, INSTALL_SCRIPT))) !== null;
        if (hasMeta) out.push(path);
        else if (hasInstall)
          problems.push({
            feature: path,
            file: join(path, FEATURE_FILE),
            message: `the feature folder has an ${INSTALL_SCRIPT} but no ${FEATURE_FILE}`,
          });
        else reporter.warn(`${path} holds no ${FEATURE_FILE}; skipped.`);
      }
      return out;
    };
    folders = await scan(abs);
    if (folders.length === 0 && problems.length === 0 && (await kindOf(join(abs, "src"))) === "dir") {
      root = join(abs, "src");
      folders = await scan(root);
    }
    if (folders.length === 0 && problems.length === 0) {
      const looksSingle = (await kindOf(join(abs, INSTALL_SCRIPT))) !== null;
      throw new DockpackError(
        "FEATURES_NOT_FOUND",
        looksSingle
          ? `${abs} has an ${INSTALL_SCRIPT} but no ${FEATURE_FILE}: it is not a complete feature.`
          : `No features found in ${abs}: it has no ${FEATURE_FILE} and no feature folders${root === abs ? " (nor a src/ folder)" : ` (nor has ${root})`}.`,
        {
          hint: `A feature folder holds ${FEATURE_FILE} and ${INSTALL_SCRIPT}; pass one, or the folder holding them (usually src).`,
          details: { target: abs },
        },
      );
    }
  }
  const features: FeatureSource[] = [];
  for (const folder of folders) {
    const feature = await readFeature(folder, problems, reporter);
    const bytes = await checkTree(folder, exclude, problems, reporter);
    if (feature) features.push({ ...feature, bytes });
  }
  if (problems.length > 0) {
    const count = new Set(problems.map((p) => p.feature)).size;
    throw new DockpackError(
      "FEATURES_INVALID",
      `${problems.length} problem${problems.length === 1 ? "" : "s"} in ${count} feature${count === 1 ? "" : "s"} (nothing was written):\n${formatFeatureProblems(problems)}`,
      {
        hint: "Fix the files listed above (see https://containers.dev/implementors/features/) and run again.",
        details: { problems },
      },
    );
  }
  features.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { mode, root, features };
}
