/**
 * `validatePackage`: full streaming verification of one package (see package-reader.ts), as a
 * result object that lists every problem; the CLI exits 1 when `valid` is false.
 */
import { resolve } from "node:path";
import { DockpackError } from "../core/errors.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { composeWarnings } from "./inspect-compose.js";
import { inspectVerified } from "./inspect-verified.js";
import { encryptionInfo, type PackageEncryptionInfo } from "./package-encryption-info.js";
import type { PackageMetadata } from "./package-format.js";
import { type PackageProblem, verifyPackage } from "./package-reader.js";

/** Options of {@link validatePackage}. */
export interface ValidateOptions {
  cwd?: string;
  /** The package file. */
  package: string;
  /** Accept device nodes and fifos in volume tars (as `import --allow-special-files` does). */
  allowSpecialFiles?: boolean;
  /** `--encrypt-all` packages: age identity files / passphrase to decrypt and check the content too. */
  identity?: string[];
  passphrase?: string;
}

/** Result of {@link validatePackage}. */
export interface ValidateResult {
  package: string;
  valid: boolean;
  /** Bytes. */
  size: number;
  problems: PackageProblem[];
  metadata: PackageMetadata | null;
  /** Services of the packaged compose files. */
  services: string[];
  /** What `env up` would do beyond the project (host ports, bind mounts outside, privileged…). */
  warnings: string[];
  /** What is encrypted, and whether the content was decrypted and checked; null: nothing is. */
  encryption: PackageEncryptionInfo | null;
}

/**
 * Verifies a package completely and reports every problem found.
 * @throws DockpackError `PACKAGE_NOT_FOUND` when the file does not exist (a bad package is a
 *   result with `valid: false`, not an exception)
 */
export async function validatePackage(
  options: ValidateOptions,
  reporter: Reporter = silentReporter(),
): Promise<ValidateResult> {
  const file = resolve(options.cwd ?? process.cwd(), options.package);
  let res: Awaited<ReturnType<typeof verifyPackage>>;
  try {
    res = await verifyPackage(file, reporter, {
      allowSpecialFiles: options.allowSpecialFiles === true,
      keys: { identityFiles: options.identity, passphrase: options.passphrase },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new DockpackError("PACKAGE_NOT_FOUND", `Package ${file} does not exist.`, {
        hint: "List packages with 'dockpack packages list'.",
      });
    throw err;
  }
  const { compose } = inspectVerified(res);
  return {
    package: file,
    valid: res.valid,
    size: res.size,
    problems: res.problems,
    metadata: res.metadata,
    services: compose.services.map((s) => s.name),
    warnings: composeWarnings(compose),
    encryption: encryptionInfo(res),
  };
}
