/**
 * `inspectPackage` (`dockpack packages inspect PACKAGE`): what a package holds and what its
 * compose files would do once imported and started — services, volumes with sizes, host ports,
 * bind mounts leaving the project, external volumes, privileged / host-namespace settings — read
 * without executing anything (inspect-compose.ts). The package is verified by the same reader
 * as validate and import, so the report also says whether it is valid.
 */
import { createHash } from "node:crypto";
import { basename, resolve } from "node:path";
import { DockpackError } from "../core/errors.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { cachedParse } from "../core/parse-cache.js";
import type { InspectedCompose } from "./inspect-compose.js";
import { encryptionInfo, type PackageEncryptionInfo } from "./package-encryption-info.js";
import type { PackageMetadata } from "./package-format.js";
import { renderImageLines } from "./package-images-render.js";
import { type PackageProblem, type VerifyResult, verifyPackage } from "./package-reader.js";

/** Options of {@link inspectPackage}. */
export interface InspectOptions {
  cwd?: string;
  /** The package file. */
  package: string;
  /** Judge device nodes and fifos in volume data as `import --allow-special-files` would. */
  allowSpecialFiles?: boolean;
  /** `--encrypt-all` packages: age identity files / passphrase to decrypt and check the content too. */
  identity?: string[];
  passphrase?: string;
}

/** Result of {@link inspectPackage}. */
export interface InspectResult {
  package: string;
  /** Bytes. */
  size: number;
  valid: boolean;
  problems: PackageProblem[];
  metadata: PackageMetadata | null;
  /** Each packaged volume: logical name, uncompressed tar bytes, stored bytes, codec. */
  volumes: { name: string; size: number; compressed_size: number; codec: string }[];
  /** Compose files read (paths in the worktree). */
  compose_files: string[];
  compose: InspectedCompose;
  /** Human lines: what `env up` would do that reaches beyond the project (also printed by import). */
  warnings: string[];
  /** What is encrypted, and whether the content was decrypted and checked; null: nothing is. */
  encryption: PackageEncryptionInfo | null;
}

/**
 * {@link inspectVerified} and its warnings. In the installed command the answer is kept in the
 * parse cache (core/parse-cache.ts) under the sha256 of the packaged config and environment texts
 * (never the texts themselves: they may hold secrets), except for encrypted packages.
 */
async function inspectCompose(
  res: VerifyResult,
): Promise<{ files: string[]; compose: InspectedCompose; warnings: string[] }> {
  const run = async () => {
    const { inspectVerified } = await import("./inspect-verified.js");
    const { composeWarnings } = await import("./inspect-compose.js");
    const { files, compose } = inspectVerified(res);
    return { files, compose, warnings: composeWarnings(compose) };
  };
  if (encryptionInfo(res) !== null) return run();
  const key = createHash("sha256")
    .update(JSON.stringify([res.configText, [...res.environmentTexts]]))
    .digest("hex");
  return cachedParse("package-compose", key, run);
}

/**
 * Verifies and inspects a package (nothing is extracted or run).
 * @throws DockpackError `PACKAGE_NOT_FOUND` when the file does not exist
 */
export async function inspectPackage(
  options: InspectOptions,
  reporter: Reporter = silentReporter(),
): Promise<InspectResult> {
  const file = resolve(options.cwd ?? process.cwd(), options.package);
  let res: VerifyResult;
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
  const { files, compose, warnings } = await inspectCompose(res);
  return {
    package: file,
    size: res.size,
    valid: res.valid,
    problems: res.problems,
    metadata: res.metadata,
    volumes: (res.metadata?.volumes ?? []).map((v) => ({
      name: v.name,
      size: v.size,
      compressed_size: v.compressed_size,
      codec: v.codec,
    })),
    compose_files: files,
    compose,
    warnings,
    encryption: encryptionInfo(res),
  };
}

/** Human rendering of {@link InspectResult} (the CLI's text output). */
export function renderInspection(r: InspectResult, formatBytes: (n: number) => string): string {
  const m = r.metadata;
  const lines = [
    `${basename(r.package)}: ${r.valid ? "valid" : `INVALID (${r.problems.length} problem(s))`}, ${formatBytes(r.size)}`,
  ];
  if (m)
    lines.push(
      `  from ${m.project}/${m.branch} at ${m.commit ?? "(no commit)"}${m.dirty ? " (dirty)" : ""}, ${m.created_at}`,
      `  code: ${m.include_code ? `${m.code_files} file(s)` : "none"}; env files: ${m.environment_files.join(", ") || "none"}`,
    );
  for (const v of r.volumes)
    lines.push(`  volume ${v.name}: ${formatBytes(v.size)} (${formatBytes(v.compressed_size)} ${v.codec})`);
  if (m?.images?.length) lines.push(renderImageLines(m.images, formatBytes));
  const e = r.encryption;
  if (e)
    lines.push(
      e.all
        ? `  encrypted (age, --encrypt-all): ${e.members.length} member(s) — code, environment files, volume data${e.decrypted ? "; decrypted and checked" : "; content not checked without the key (--identity FILE or $DOCKPACK_PASSPHRASE)"}`
        : `  encrypted (age): ${e.members.join(", ")}`,
    );
  for (const s of r.compose.services)
    lines.push(
      `  service ${s.name}: ${s.image ?? (s.build ? "(built)" : "(no image)")}${s.host_ports.length ? `, ports ${s.host_ports.join(" ")}` : ""}`,
    );
  if (r.warnings.length) lines.push("  beyond the project:", ...r.warnings.map((w) => `    ! ${w}`));
  for (const p of r.problems) lines.push(`  ${p.code}: ${p.message}`);
  return lines.join("\n");
}
