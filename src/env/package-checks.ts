/**
 * The cross-checks of a package once all its members were read (package-reader.ts): checksums
 * against members, members against metadata.json, member order, member paths against the
 * package's symlinks, volume entries. Pure: no I/O.
 */

import { toDockpackError } from "../core/errors.js";
import {
  CHECKSUMS_MEMBER,
  METADATA_MEMBER,
  type PackageMetadata,
  PLAIN_CHECKSUMS_MEMBER,
  parseChecksums,
  resolveInside,
  volumeMemberName,
} from "./package-format.js";
import { checkImagesAgainstMetadata } from "./package-images-listing.js";
import type { VolumeCheck } from "./package-volume-check.js";

/** What the member pass of verifyPackage collected. */
export interface ScanState {
  metadata: PackageMetadata | null;
  checksumsText: string | null;
  configText: string | null;
  environmentTexts: Map<string, string>;
  envTextBytes: number;
  /** member → sha256 and size of its content (symlinks: of the target text). */
  digests: Map<string, { sha256: string; size: number }>;
  /** Member names in archive order, each once. */
  order: string[];
  /** Symlinks under code/ and environment/: member, path in the worktree, target. */
  links: { member: string; rel: string; target: string }[];
  volumeChecks: Map<string, VolumeCheck>;
  /** `--encrypt-all`: member → sha256 of its decrypted content (only when a key was given). */
  plainDigests: Map<string, string>;
  /** `--encrypt-all`: the decrypted checksums.plain.age (only when a key was given). */
  plainChecksumsText: string | null;
  /** True when metadata.json says `--encrypt-all`. */
  sealed: boolean;
  /** `--encrypt-all`: the encrypted members met, in order. */
  sealedMembers: string[];
}

type Add = (code: string, message: string, member?: string) => void;

/**
 * Runs every check that needs the whole package and reports through `add`.
 * @returns the parsed checksums (member → `sha256:<hex>`), empty when unreadable
 */
export function crossCheck(state: ScanState, label: string, add: Add): Map<string, string> {
  const { digests, order } = state;
  if (!digests.has(METADATA_MEMBER))
    add("PACKAGE_MEMBER_MISSING", `${label}: ${METADATA_MEMBER} is missing`, METADATA_MEMBER);
  let checksums = new Map<string, string>();
  if (state.checksumsText === null) {
    if (!digests.has(CHECKSUMS_MEMBER))
      add("PACKAGE_MEMBER_MISSING", `${label}: ${CHECKSUMS_MEMBER} is missing`, CHECKSUMS_MEMBER);
  } else {
    if (order.at(-1) !== CHECKSUMS_MEMBER)
      add("PACKAGE_MEMBER_ORDER", `${label}: ${CHECKSUMS_MEMBER} is not the last member`, CHECKSUMS_MEMBER);
    try {
      checksums = parseChecksums(state.checksumsText, label);
    } catch (e) {
      const err = toDockpackError(e);
      add(err.code, err.message, CHECKSUMS_MEMBER);
    }
    for (const [member, expected] of checksums) {
      const got = digests.get(member);
      if (!got)
        add(
          "PACKAGE_MEMBER_MISSING",
          `${label}: member '${member}' listed in ${CHECKSUMS_MEMBER} is missing`,
          member,
        );
      else if (got.sha256 !== expected)
        add(
          "PACKAGE_CHECKSUM_MISMATCH",
          `${label}: member '${member}': expected ${expected}, got ${got.sha256 || "(not a file)"}`,
          member,
        );
    }
    for (const member of order)
      if (member !== CHECKSUMS_MEMBER && !checksums.has(member))
        add(
          "PACKAGE_MEMBER_UNLISTED",
          `${label}: member '${member}' is not listed in ${CHECKSUMS_MEMBER}`,
          member,
        );
  }
  checkLinks(state, label, add);
  const meta = state.metadata;
  if (meta) checkAgainstMetadata(state, meta, checksums, label, add);
  checkPlain(state, label, add);
  return checksums;
}

/**
 * `--encrypt-all`: checksums.plain.age present; with the key, it lists metadata.json's sha256 and
 * the plaintext sha256 of every encrypted code/environment member (binding names to contents).
 */
function checkPlain(state: ScanState, label: string, add: Add): void {
  const has = state.digests.has(PLAIN_CHECKSUMS_MEMBER);
  if (!state.sealed) {
    if (has)
      add(
        "PACKAGE_MEMBER_UNLISTED",
        `${label}: member '${PLAIN_CHECKSUMS_MEMBER}' belongs to --encrypt-all packages only`,
        PLAIN_CHECKSUMS_MEMBER,
      );
    return;
  }
  if (!has) {
    add("PACKAGE_MEMBER_MISSING", `${label}: ${PLAIN_CHECKSUMS_MEMBER} is missing`, PLAIN_CHECKSUMS_MEMBER);
    return;
  }
  if (state.plainChecksumsText === null) return;
  let plain: Map<string, string>;
  try {
    plain = parseChecksums(state.plainChecksumsText, `${label} (${PLAIN_CHECKSUMS_MEMBER})`);
  } catch (e) {
    const err = toDockpackError(e);
    add(err.code, err.message, PLAIN_CHECKSUMS_MEMBER);
    return;
  }
  if (plain.get(METADATA_MEMBER) !== state.digests.get(METADATA_MEMBER)?.sha256)
    add(
      "PACKAGE_CHECKSUM_MISMATCH",
      `${label}: metadata.json differs from the one the package was encrypted with`,
      METADATA_MEMBER,
    );
  for (const [member, got] of state.plainDigests) {
    const want = plain.get(member);
    if (!want)
      add(
        "PACKAGE_MEMBER_UNLISTED",
        `${label}: member '${member}' is not in ${PLAIN_CHECKSUMS_MEMBER}`,
        member,
      );
    else if (want !== got)
      add(
        "PACKAGE_CHECKSUM_MISMATCH",
        `${label}: member '${member}': its decrypted content does not match ${PLAIN_CHECKSUMS_MEMBER}`,
        member,
      );
  }
  for (const member of plain.keys())
    if (member !== METADATA_MEMBER && !state.plainDigests.has(member))
      add(
        "PACKAGE_MEMBER_MISSING",
        `${label}: member '${member}' listed in ${PLAIN_CHECKSUMS_MEMBER} is missing or not decrypted`,
        member,
      );
}

/** No member below a package symlink; no symlink leading outside the worktree. */
function checkLinks(state: ScanState, label: string, add: Add): void {
  const links = new Map<string, string>();
  for (const l of state.links) links.set(l.rel, l.target);
  if (links.size === 0) return;
  for (const member of state.order) {
    const rel = member.startsWith("code/")
      ? member.slice(5)
      : member.startsWith("environment/")
        ? member.slice(12)
        : null;
    if (rel === null) continue;
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (links.has(p)) {
        add(
          "PACKAGE_UNSAFE_PATH",
          `${label}: member '${member}' lies below the package's symlink '${p}'`,
          member,
        );
        break;
      }
    }
  }
  for (const l of state.links) {
    const r = resolveInside(l.rel.split("/").slice(0, -1), l.target, (rel) => links.get(rel));
    if (typeof r === "string")
      add(
        "PACKAGE_UNSAFE_PATH",
        `${label}: symlink '${l.member}' → '${l.target}' is refused: ${r}`,
        l.member,
      );
  }
}

/** Members against metadata.json: volumes once each and matching their codec, env files, code. */
function checkAgainstMetadata(
  state: ScanState,
  meta: PackageMetadata,
  checksums: Map<string, string>,
  label: string,
  add: Add,
): void {
  const { digests, order } = state;
  if (state.checksumsText !== null && checksums.size && meta.members !== checksums.size)
    add(
      "PACKAGE_METADATA_MISMATCH",
      `${label}: metadata.json counts ${meta.members} members, ${CHECKSUMS_MEMBER} lists ${checksums.size}`,
    );
  const names = new Set<string>();
  const members = new Set<string>();
  for (const v of meta.volumes) {
    if (names.has(v.name) || members.has(v.member)) {
      add(
        "PACKAGE_VOLUME_DUPLICATE",
        `${label}: volume '${v.name}' (${v.member}) is listed more than once in metadata.json`,
        v.member,
      );
      continue;
    }
    names.add(v.name);
    members.add(v.member);
    const expected = volumeMemberName(v.name, v.codec);
    if (v.member !== expected) {
      add(
        v.member.replace(/\.(zst|gz)$/, "") === expected.replace(/\.(zst|gz)$/, "")
          ? "PACKAGE_CODEC_MISMATCH"
          : "PACKAGE_METADATA_MISMATCH",
        `${label}: volume '${v.name}' is recorded as codec ${v.codec} in member '${v.member}'; that member name should be '${expected}'`,
        v.member,
      );
      continue;
    }
    const got = digests.get(v.member);
    if (!got) {
      if (!checksums.has(v.member))
        add("PACKAGE_MEMBER_MISSING", `${label}: volume member '${v.member}' is missing`, v.member);
      continue;
    }
    if (got.sha256 !== v.sha256 || got.size !== v.compressed_size)
      add(
        "PACKAGE_CHECKSUM_MISMATCH",
        `${label}: volume '${v.name}' (${v.member}) does not match metadata.json (sha256 or size)`,
        v.member,
      );
    const inner = state.volumeChecks.get(v.member);
    if (inner?.problem)
      add(inner.problem.code, `${label}: volume '${v.name}': ${inner.problem.message}`, v.member);
    else if (inner && (inner.tarSha256 !== v.tar_sha256 || inner.tarSize !== v.size))
      add(
        "PACKAGE_CHECKSUM_MISMATCH",
        `${label}: volume '${v.name}': its decompressed tar does not match metadata.json`,
        v.member,
      );
  }
  checkImagesAgainstMetadata(meta, digests, order, label, add);
  const envFiles = new Set(meta.environment_files);
  let codeCount = 0;
  for (const member of order) {
    if (member.startsWith("volumes/") && !members.has(member))
      add(
        "PACKAGE_MEMBER_UNLISTED",
        `${label}: member '${member}' is not a volume listed in metadata.json`,
        member,
      );
    else if (member.startsWith("environment/")) {
      const rel = member.slice(12);
      if (!envFiles.has(rel))
        add(
          "PACKAGE_MEMBER_UNLISTED",
          `${label}: member '${member}' is not in metadata.json's environment_files`,
          member,
        );
    } else if (member.startsWith("code/")) {
      codeCount++;
      if (!meta.include_code && codeCount === 1)
        add(
          "PACKAGE_MEMBER_UNLISTED",
          `${label}: member '${member}' is code, but metadata.json says the package has none`,
          member,
        );
    }
  }
  for (const rel of envFiles)
    if (!digests.has(`environment/${rel}`))
      add(
        "PACKAGE_MEMBER_MISSING",
        `${label}: environment file '${rel}' listed in metadata.json is missing`,
        `environment/${rel}`,
      );
  if (meta.include_code && codeCount !== meta.code_files)
    add(
      "PACKAGE_METADATA_MISMATCH",
      `${label}: metadata.json counts ${meta.code_files} code files, the package holds ${codeCount}`,
    );
}
