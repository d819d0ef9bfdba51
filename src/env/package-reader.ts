/**
 * Reading environment packages: the head (metadata.json only, for `packages list`; in
 * package-head.ts, which loads no archive or crypto code), and the one full streaming verification that reports every problem — `packages validate`, `packages
 * inspect` and `packages import` (before it changes anything) all run it. Format:
 * package-format.ts; cross-checks: package-checks.ts; volume members: package-volume*.ts.
 */
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import type { Readable } from "node:stream";
import { readTarStrict } from "../core/archive/strict.js";
import { digestStream, sha256Hex } from "../core/digest.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { fileWithSkips } from "../core/stream.js";
import { CONFIG_FILE } from "./config-file.js";
import { crossCheck, type ScanState } from "./package-checks.js";
import type { DecryptKeys } from "./package-crypto.js";
import { unwrapPackageKey } from "./package-crypto-stream.js";
import {
  CHECKSUMS_MEMBER,
  checkMemberName,
  METADATA_MEMBER,
  type PackageMetadata,
  PLAIN_CHECKSUMS_MEMBER,
  parseMetadata,
  restorePath,
  UNSAFE_MODE_BITS,
} from "./package-format.js";
import { METADATA_MAX } from "./package-head.js";
import { readSealed } from "./package-sealed.js";
import { archiveProblemCode } from "./package-volume.js";
import { checkVolumeMember } from "./package-volume-check.js";

export { readPackageHead } from "./package-head.js";

/** One problem found by {@link verifyPackage}. */
export interface PackageProblem {
  /** Stable code, e.g. `PACKAGE_CHECKSUM_MISMATCH`. */
  code: string;
  message: string;
  /** The member concerned, when there is one. */
  member?: string;
}

/** Result of {@link verifyPackage}. */
export interface VerifyResult {
  /** Absolute path of the package. */
  package: string;
  valid: boolean;
  /** Every problem found, in the order met. Empty when valid. */
  problems: PackageProblem[];
  /** The metadata, or null when it could not be read. */
  metadata: PackageMetadata | null;
  /** member → `sha256:<hex>` from checksums.sha256 (empty when unreadable). */
  checksums: Map<string, string>;
  /** Text of environment/.dockpack/config.yml, when present. */
  configText: string | null;
  /**
   * Texts of the small files under environment/ (each ≤ 1 MiB), by path relative to the
   * worktree: the compose files and config that `packages inspect` reads.
   */
  environmentTexts: Map<string, string>;
  /** Package size in bytes. */
  size: number;
  /**
   * With {@link VerifyOptions.deferVolumes}: the volume members whose content was not checked,
   * by member name, with where their content lies in the file (`offset`, `size` in bytes).
   */
  deferred: Map<string, { offset: number; size: number }>;
  /**
   * `--encrypt-all` packages: whether the content was decrypted and checked (a key was given),
   * and the plaintext sha256 of each encrypted code/environment member (from checksums.plain.age,
   * each checked against the decrypted member). Null for other packages.
   */
  sealed: { decrypted: boolean; plain: Map<string, string>; members: string[] } | null;
}

/** Options of {@link verifyPackage}. */
export interface VerifyOptions {
  /** Accept device nodes and fifos inside volume tars (default: refused, `PACKAGE_SPECIAL_FILE`). */
  allowSpecialFiles?: boolean;
  /**
   * Import's one-pass mode: the content of each volume member listed in metadata.json is skipped
   * (its tar header, place, size and the digests metadata.json and checksums.sha256 claim for it
   * are still checked against each other) and returned in `deferred`; the caller must read each
   * one with {@link checkVolumeMember} (import-restore.ts does, while restoring it) and refuse the
   * package on any problem. `validate` and `inspect` never set it.
   */
  deferVolumes?: boolean;
  /**
   * Image IDs the engine has already, verified against their IDs (`packages import REF` loads them
   * from the registry first, registry-images.ts): the image members of these images are not read
   * (the import never reads them: it rebuilds only images the engine lacks, package-images-load.ts),
   * their digests are taken as metadata.json claims them, so they are still checked against
   * checksums.sha256. Such a member may be a hole in a skeleton package (registry-stream.ts).
   */
  imagesElsewhere?: ReadonlySet<string>;
  /**
   * `--encrypt-all` packages: the user's keys; the package key is unwrapped from metadata.json
   * and every encrypted member is decrypted and checked too (a wrong key: `PACKAGE_DECRYPT_FAILED`).
   */
  keys?: DecryptKeys;
  /** `--encrypt-all` packages: the package key, already unwrapped (import). */
  packageIdentity?: string;
}

/** Largest checksums.sha256 accepted (bytes). */
const CHECKSUMS_MAX = 64 * 1024 * 1024;
/** Largest environment file kept in memory for inspection (bytes), and all of them together. */
const ENV_TEXT_MAX = 1024 * 1024;
const ENV_TEXTS_TOTAL = 16 * 1024 * 1024;

/**
 * Reads the whole package once, streaming, with the strict tar reader (`readTarStrict`), and
 * checks everything an import relies on: the tar itself (header checksums, strict numbers, no
 * data after the end-of-archive but zeros, no type whose size does not fit), metadata.json first
 * and valid, checksums.sha256 last, every member name canonical and inside a section, no member
 * twice, only regular files (and symlinks under code/ and environment/), no `.git`, no member
 * below a symlink of the package, no symlink leading outside the worktree (resolved through the
 * package's other symlinks), every member's sha256 against checksums.sha256 and every member
 * listed there and in metadata.json (volumes, environment files, code count), each volume listed
 * once with a member name matching its codec, and each volume tar decompressed (capped at its
 * declared size) and checked entry by entry (see package-volume.ts). `import` runs this same
 * function before changing anything, with {@link VerifyOptions.deferVolumes}: the volume
 * contents are then checked in the same single read that restores them (and a problem rolls the
 * import back), every other member is read again with the same reader and rules.
 * Never throws for a bad package: every problem is collected.
 * @throws DockpackError `FS_ENOENT` when the file does not exist
 */
export async function verifyPackage(
  file: string,
  reporter: Reporter = silentReporter(),
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const st = await stat(file);
  const size = st.size;
  const label = basename(file);
  if (!st.isFile())
    return {
      package: file,
      valid: false,
      problems: [
        {
          code: "PACKAGE_NOT_A_PACKAGE",
          message: `${label} is not a regular file (a folder, device or fifo)`,
        },
      ],
      metadata: null,
      checksums: new Map(),
      configText: null,
      environmentTexts: new Map(),
      size,
      deferred: new Map(),
      sealed: null,
    };
  const problems: PackageProblem[] = [];
  const add = (code: string, message: string, member?: string) =>
    problems.push({ code, message, ...(member ? { member } : {}) });
  const state: ScanState = {
    metadata: null,
    checksumsText: null,
    configText: null,
    environmentTexts: new Map(),
    envTextBytes: 0,
    digests: new Map(),
    order: [],
    links: [],
    volumeChecks: new Map(),
    plainDigests: new Map(),
    plainChecksumsText: null,
    sealed: false,
    sealedMembers: [],
  };
  let identity: string | undefined;
  let index = 0;
  const deferred = new Map<string, { offset: number; size: number }>();
  const bar = reporter.progress(`verify ${label}`, size);
  // the content of members this read leaves to another (deferred volumes, images the engine has)
  // is skipped, not read
  const source = fileWithSkips(file, size);
  let readBytes = 0;
  source.on("data", (c) => {
    readBytes += c.length;
    bar.update(readBytes);
  });
  try {
    await readTarStrict(source, async (entry, body) => {
      const name = entry.name;
      const first = index++ === 0;
      if (state.digests.has(name)) {
        add("PACKAGE_MEMBER_DUPLICATE", `${label}: member '${name}' appears more than once`, name);
        return;
      }
      state.order.push(name);
      const bad = checkMemberName(name);
      if (bad) add("PACKAGE_UNSAFE_PATH", `${label}: member '${name}' is refused: ${bad}`, name);
      if (first && name !== METADATA_MEMBER)
        add("PACKAGE_NOT_A_PACKAGE", `${label}: the first member is '${name}', not ${METADATA_MEMBER}`, name);
      const rel = restorePath(name);
      if (entry.type === "symlink") {
        if (rel === null)
          add(
            "PACKAGE_MEMBER_TYPE_INVALID",
            `${label}: member '${name}' is a symlink; only code/ and environment/ may hold symlinks`,
            name,
          );
        else if (!bad) state.links.push({ member: name, rel, target: entry.linkname });
        state.digests.set(name, { sha256: `sha256:${sha256Hex(entry.linkname)}`, size: 0 });
        return;
      }
      if (entry.type !== "file") {
        add(
          "PACKAGE_MEMBER_TYPE_INVALID",
          `${label}: member '${name}' is a ${entry.type}; a package holds only files and symlinks`,
          name,
        );
        state.digests.set(name, { sha256: "", size: 0 });
        return;
      }
      if (rel !== null && (entry.mode & UNSAFE_MODE_BITS) !== 0)
        add(
          "PACKAGE_MODE_UNSAFE",
          `${label}: member '${name}' has mode ${(entry.mode & 0o7777).toString(8).padStart(4, "0")}; setuid, setgid, sticky and world-writable bits are refused in code/ and environment/`,
          name,
        );
      const deferrable = name.startsWith("volumes/")
        ? state.metadata?.volumes.find((x) => x.member === name)
        : undefined;
      if (deferrable && options.deferVolumes) {
        // the digest metadata.json claims, so that crossCheck compares it with checksums.sha256;
        // the content itself is checked by the caller (import, while restoring it; decrypting it
        // first for --encrypt-all)
        if (state.sealed) state.sealedMembers.push(name);
        state.digests.set(name, { sha256: deferrable.sha256, size: entry.size });
        deferred.set(name, { offset: entry.dataOffset, size: entry.size });
        source.skip(entry.dataOffset, entry.size);
        return;
      }
      const elsewhere = name.startsWith("images/")
        ? state.metadata?.images?.find((x) => x.member === name && options.imagesElsewhere?.has(x.id))
        : undefined;
      if (elsewhere) {
        state.digests.set(name, { sha256: elsewhere.sha256, size: entry.size });
        source.skip(entry.dataOffset, entry.size);
        return;
      }
      if (state.sealed && (rel !== null || name.startsWith("volumes/") || name === PLAIN_CHECKSUMS_MEMBER)) {
        await readSealedMember(state, name, rel, body, identity, options, add);
        return;
      }
      if (name === METADATA_MEMBER || name === CHECKSUMS_MEMBER || name === `environment/${CONFIG_FILE}`) {
        const limit = name === CHECKSUMS_MEMBER ? CHECKSUMS_MAX : METADATA_MAX;
        const { buf, digest, size: n } = await readSmall(body, limit);
        state.digests.set(name, { sha256: digest, size: n });
        if (n > limit) {
          add(
            "PACKAGE_MEMBER_TOO_LARGE",
            `${label}: member '${name}' is ${n} bytes, over the ${limit} allowed`,
            name,
          );
          return;
        }
        if (name === METADATA_MEMBER) {
          try {
            state.metadata = parseMetadata(buf, label);
          } catch (e) {
            const err = toDockpackError(e);
            add(err.code, err.message, name);
          }
          if (first && state.metadata?.encryption?.all) {
            state.sealed = true;
            identity = await sealedIdentity(state.metadata, options, label).catch((e) => {
              const err = toDockpackError(e);
              add(err.code, err.message, name);
              return undefined;
            });
          }
        } else if (name === CHECKSUMS_MEMBER) state.checksumsText = buf.toString();
        else {
          state.configText = buf.toString();
          keepEnvText(state, CONFIG_FILE, buf);
        }
        return;
      }
      if (name.startsWith("volumes/")) {
        const v = state.metadata?.volumes.find((x) => x.member === name);
        if (v) {
          const res = await checkVolumeMember(body, v, options);
          state.digests.set(name, { sha256: res.sha256, size: res.size });
          state.volumeChecks.set(name, res);
          return;
        }
      }
      if (name.startsWith("images/")) {
        const img = state.metadata?.images?.find((x) => x.member === name);
        if (img) {
          // the delta format's code is loaded only for a package with images (issue 14 C18)
          const { checkImageMember } = await import("./package-images-check.js");
          const res = await checkImageMember(body, img, label);
          state.digests.set(name, { sha256: res.sha256, size: res.size });
          for (const p of res.problems) add(p.code, p.message, name);
          return;
        }
      }
      if (rel !== null && name.startsWith("environment/") && entry.size <= ENV_TEXT_MAX) {
        const { buf, digest, size: n } = await readSmall(body, ENV_TEXT_MAX);
        state.digests.set(name, { sha256: digest, size: n });
        keepEnvText(state, rel, buf);
        return;
      }
      const d = await digestStream(body);
      state.digests.set(name, { sha256: d.digest, size: d.size });
    });
  } catch (e) {
    const err = toDockpackError(e);
    if (index === 0)
      add("PACKAGE_NOT_A_PACKAGE", `${label} is not a dockpack environment package: ${err.message}`);
    else
      add(
        err.code.startsWith("ARCHIVE_") ? archiveProblemCode(err.code) : "PACKAGE_UNREADABLE",
        `${label}: ${err.message}`,
      );
  } finally {
    bar.stop();
  }
  if (index === 0 && !problems.length) add("PACKAGE_NOT_A_PACKAGE", `${label} holds no members`);
  if (problems.some((p) => p.code === "PACKAGE_NOT_A_PACKAGE") && state.digests.size === 0)
    return {
      package: file,
      valid: false,
      problems,
      metadata: null,
      checksums: new Map(),
      configText: null,
      environmentTexts: new Map(),
      size,
      deferred: new Map(),
      sealed: null,
    };
  const checksums = crossCheck(state, label, add);
  return {
    package: file,
    valid: problems.length === 0,
    problems,
    metadata: state.metadata,
    checksums,
    configText: state.configText,
    environmentTexts: state.environmentTexts,
    size,
    deferred,
    sealed: state.sealed
      ? { decrypted: identity !== undefined, plain: state.plainDigests, members: state.sealedMembers }
      : null,
  };
}

/** The package key of an `--encrypt-all` package, or undefined when no key was given. */
async function sealedIdentity(
  meta: PackageMetadata,
  options: VerifyOptions,
  label: string,
): Promise<string | undefined> {
  if (options.packageIdentity) return options.packageIdentity;
  const keys = options.keys;
  if (!keys || (!keys.identityFiles?.length && !keys.passphrase)) return undefined;
  if (!meta.encryption?.key)
    throw new DockpackError("PACKAGE_METADATA_INVALID", `${label}: metadata.json has no package key.`, {
      hint: "The package is damaged; export it again.",
    });
  return unwrapPackageKey(meta.encryption.key, keys, label);
}

/**
 * An `--encrypt-all` member: without the key only its stored bytes are hashed; with it, it is
 * decrypted on the side (volumes: and checked entry by entry), its plaintext hashed, and the
 * environment texts kept for inspection.
 */
async function readSealedMember(
  state: ScanState,
  name: string,
  rel: string | null,
  body: Readable,
  identity: string | undefined,
  options: VerifyOptions,
  add: (code: string, message: string, member?: string) => void,
): Promise<void> {
  state.sealedMembers.push(name);
  const v = name.startsWith("volumes/") ? state.metadata?.volumes.find((x) => x.member === name) : undefined;
  if (!identity || (name.startsWith("volumes/") && !v)) {
    const d = await digestStream(body);
    state.digests.set(name, { sha256: d.digest, size: d.size });
    return;
  }
  if (v) {
    const res = await checkVolumeMember(body, v, options, identity);
    state.digests.set(name, { sha256: res.sha256, size: res.size });
    state.volumeChecks.set(name, res);
    return;
  }
  const keep = name === PLAIN_CHECKSUMS_MEMBER ? CHECKSUMS_MAX : ENV_TEXT_MAX;
  const res = await readSealed(body, identity, name, keep);
  state.digests.set(name, { sha256: res.sha256, size: res.size });
  if (res.problem) {
    add(res.problem.code, res.problem.message, name);
    return;
  }
  if (name === PLAIN_CHECKSUMS_MEMBER) {
    if (res.plain) state.plainChecksumsText = res.plain.toString();
    else add("PACKAGE_MEMBER_TOO_LARGE", `member '${name}' is over ${CHECKSUMS_MAX} bytes`, name);
    return;
  }
  state.plainDigests.set(name, res.plainSha256);
  if (rel !== null && name.startsWith("environment/") && res.plain) {
    if (rel === CONFIG_FILE) state.configText = res.plain.toString();
    keepEnvText(state, rel, res.plain);
  }
}

function keepEnvText(state: ScanState, rel: string, buf: Buffer): void {
  if (state.envTextBytes + buf.length > ENV_TEXTS_TOTAL) return;
  state.envTextBytes += buf.length;
  state.environmentTexts.set(rel, buf.toString());
}

/** Reads a member body, keeping at most `limit` bytes; the digest and size cover all of it. */
async function readSmall(
  body: Readable,
  limit: number,
): Promise<{ buf: Buffer; digest: string; size: number }> {
  const chunks: Buffer[] = [];
  const hash = createHash("sha256");
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    hash.update(c);
    n += c.length;
    if (n <= limit) chunks.push(c);
  }
  return { buf: Buffer.concat(chunks), digest: `sha256:${hash.digest("hex")}`, size: n };
}

/**
 * Runs {@link verifyPackage} and throws when the package is not valid.
 * @throws DockpackError with the first problem's code (e.g. `PACKAGE_CHECKSUM_MISMATCH`), a message
 *   listing every problem, and `details.problems`
 */
export async function requireValidPackage(
  file: string,
  reporter: Reporter,
  options: VerifyOptions = {},
): Promise<VerifyResult & { metadata: PackageMetadata }> {
  const res = await verifyPackage(file, reporter, options);
  if (!res.valid || !res.metadata) {
    const first = res.problems[0] ?? { code: "PACKAGE_INVALID", message: `${basename(file)} is invalid` };
    throw new DockpackError(
      first.code,
      res.problems.length > 1
        ? `${res.problems.length} problems: ${res.problems.map((p) => p.message).join("; ")}`
        : first.message,
      {
        hint: "The package is damaged or not a dockpack package; nothing was changed. Export it again.",
        details: { problems: res.problems },
      },
    );
  }
  return res as VerifyResult & { metadata: PackageMetadata };
}
