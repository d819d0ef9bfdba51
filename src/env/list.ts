/**
 * `listPackages`: one row per `*.dockpack.tar` file of a folder, read from each file's head only
 * (metadata.json); a damaged file gets a row with its error instead of breaking the listing.
 */
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { PACKAGE_EXTENSION } from "./package-extension.js";

/** Options of {@link listPackages}. */
export interface ListPackagesOptions {
  cwd?: string;
  /** Folder to list (default `./packages`). */
  packageDir?: string;
}

/** One row of {@link listPackages}. */
export interface PackageRow {
  /** File name inside the folder. */
  file: string;
  /** Bytes. */
  size: number;
  project: string | null;
  branch: string | null;
  /** ISO 8601 UTC. */
  created_at: string | null;
  format_version: string | null;
  /** Logical volume names. */
  volumes: string[];
  include_code: boolean | null;
  /** The image section: per image its ID, bytes shipped and full size (empty without one). */
  images: { id: string; size: number; image_size: number }[];
  /** Set when the head could not be read: `{ code, message }`. */
  error: { code: string; message: string } | null;
}

/**
 * Lists packages, newest first (by created_at, then file name).
 * @throws DockpackError `PACKAGE_DIR_NOT_FOUND` when the folder does not exist
 */
export async function listPackages(
  options: ListPackagesOptions = {},
): Promise<{ directory: string; packages: PackageRow[] }> {
  const directory = resolve(options.cwd ?? process.cwd(), options.packageDir ?? "packages");
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new DockpackError("PACKAGE_DIR_NOT_FOUND", `Package folder ${directory} does not exist.`, {
        hint: "Export a package first ('dockpack packages export BRANCH'), or pass --package-dir.",
      });
    throw err;
  }
  const packages: PackageRow[] = [];
  const files = names.filter((n) => n.endsWith(PACKAGE_EXTENSION)).sort();
  if (files.length === 0) return { directory, packages };
  // the head reader (zod) is loaded only for a folder that holds packages (issue 14 C18)
  const { readPackageHead } = await import("./package-head.js");
  for (const file of files) {
    const path = join(directory, file);
    const size = (await stat(path).catch(() => ({ size: 0 }))).size;
    try {
      const m = await readPackageHead(path);
      packages.push({
        file,
        size,
        project: m.project,
        branch: m.branch,
        created_at: m.created_at,
        format_version: m.format_version,
        volumes: m.volumes.map((v) => v.name),
        include_code: m.include_code,
        images: (m.images ?? []).map((i) => ({ id: i.id, size: i.size, image_size: i.image_size })),
        error: null,
      });
    } catch (e) {
      const err = toDockpackError(e);
      packages.push({
        file,
        size,
        project: null,
        branch: null,
        created_at: null,
        format_version: null,
        volumes: [],
        include_code: null,
        images: [],
        error: { code: err.code, message: err.message },
      });
    }
  }
  packages.sort(
    (a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? "") || a.file.localeCompare(b.file),
  );
  return { directory, packages };
}
