/**
 * `packages import REF`: pull a package artifact into a temporary folder (verified: layer digests,
 * the whole package's sha256, the package reader), then run the ordinary import on the file.
 * The temporary folder is removed afterwards, also on failure.
 */
import { existsSync } from "node:fs";
import { makeTempDir, removeTempDir } from "../core/fs.js";
import type { RegistryOptions } from "../core/oci/transport.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { type ImportOptions, type ImportResult, importPackage } from "./import.js";
import { type PullPackageResult, pullPackage } from "./registry.js";
import type { RegistryImageLoad } from "./registry-images.js";
import { withRegistryImages } from "./registry-images-import.js";

/**
 * True when `arg` names a registry artifact rather than a file: `docker://…`, or not an existing
 * path and of the form `host[:port]/repo[:tag|@digest]` with a host containing `.` or `:` or
 * being `localhost`.
 */
export function isRegistryReference(arg: string): boolean {
  if (arg.startsWith("docker://")) return true;
  if (existsSync(arg)) return false;
  const first = arg.split("/")[0];
  return (
    arg.includes("/") &&
    (first.includes(".") || first.includes(":") || first === "localhost") &&
    !arg.endsWith(".tar")
  );
}

/**
 * Imports a package straight from a registry reference; returns the import and the pull. Images
 * the artifact references are loaded from the registry first (registry-images-import.ts).
 */
export async function importFromRegistry(
  options: Omit<ImportOptions, "package"> & RegistryOptions & { reference: string; verifyKey?: string },
  reporter: Reporter = silentReporter(),
): Promise<ImportResult & { pulled: PullPackageResult; registryImages?: RegistryImageLoad[] }> {
  return withRegistryImages(options, reporter, () => importPulled(options, reporter));
}

async function importPulled(
  options: Omit<ImportOptions, "package"> & RegistryOptions & { reference: string; verifyKey?: string },
  reporter: Reporter = silentReporter(),
): Promise<ImportResult & { pulled: PullPackageResult }> {
  const dir = await makeTempDir("dockpack-pull-");
  try {
    const pulled = await pullPackage({ ...options, reference: options.reference, outputDir: dir }, reporter);
    const res = await importPackage({ ...options, package: pulled.package }, reporter);
    return { ...res, pulled };
  } finally {
    await removeTempDir(dir);
  }
}
