/**
 * The head of an environment package: its first tar header and metadata.json, all that
 * `packages list` reads. Kept apart from package-reader.ts (the full verification) so that a
 * listing loads neither the tar reader nor the age library (issue 14 C18).
 */
import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { parseTarField } from "../core/archive/strict.js";
import { DockpackError } from "../core/errors.js";
import { METADATA_MEMBER, type PackageMetadata, parseMetadata } from "./package-format.js";

/** Largest metadata.json a reader accepts (bytes). */
export const METADATA_MAX = 1024 * 1024;

function notPackage(file: string, why: string): DockpackError {
  return new DockpackError(
    "PACKAGE_NOT_A_PACKAGE",
    `${file} is not a dockpack environment package: ${why}.`,
    {
      hint: "Pass a file written by 'dockpack packages export' (*.dockpack.tar).",
    },
  );
}

/**
 * Reads only the head of a package file (first tar header and metadata.json) and returns the
 * parsed metadata. Reads at most 512 bytes + metadata.json's size.
 * @throws DockpackError `PACKAGE_NOT_A_PACKAGE` (not a tar or metadata.json not first),
 *   `PACKAGE_TRUNCATED`, `PACKAGE_METADATA_INVALID`, `PACKAGE_VERSION_UNSUPPORTED`
 */
export async function readPackageHead(file: string): Promise<PackageMetadata> {
  // a fifo or device would block or never end: only regular files are read
  if (!(await stat(file)).isFile()) throw notPackage(file, "it is not a regular file");
  const fh = await open(file, "r");
  try {
    const header = Buffer.alloc(512);
    const { bytesRead } = await fh.read(header, 0, 512, 0);
    if (bytesRead < 512) throw notPackage(file, "shorter than one tar header");
    if (header.toString("ascii", 257, 262) !== "ustar") throw notPackage(file, "not a tar archive");
    const name = header.toString("utf8", 0, 100).replace(/\0.*$/s, "");
    if (name !== METADATA_MEMBER)
      throw notPackage(file, `its first member is '${name}', not ${METADATA_MEMBER}`);
    let size: number;
    try {
      size = parseTarField(header.subarray(124, 136), "size", 0, false);
    } catch {
      throw notPackage(file, "its first header has an invalid size field");
    }
    if (!Number.isFinite(size) || size <= 0 || size > METADATA_MAX)
      throw notPackage(file, "metadata.json has an impossible size");
    const body = Buffer.alloc(size);
    const read = await fh.read(body, 0, size, 512);
    if (read.bytesRead < size)
      throw new DockpackError("PACKAGE_TRUNCATED", `${file} is truncated (inside metadata.json).`, {
        hint: "Copy the package again; it was cut short.",
      });
    return parseMetadata(body, basename(file));
  } finally {
    await fh.close();
  }
}
