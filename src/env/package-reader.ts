/**
 * Reading environment packages: the head (metadata.json only, for `packages list`), and a full
 * streaming verification that reports every problem (for `packages validate` and before any
 * import changes anything). Format: package-format.ts.
 */
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { checkEntryPath, readTar } from "../core/archive.js";
import { decompressStream } from "../core/codec.js";
import { DigestStream, digestStream, sha256Hex } from "../core/digest.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { CONFIG_FILE } from "./config.js";
import {
  CHECKSUMS_MEMBER,
  METADATA_MEMBER,
  type PackageMetadata,
  parseChecksums,
  parseMetadata,
} from "./package-format.js";

/** Largest metadata.json a reader accepts (bytes). */
const METADATA_MAX = 1024 * 1024;

function parseOctal(buf: Buffer, off: number, len: number): number {
  const s = buf
    .toString("ascii", off, off + len)
    .replace(/\0.*$/s, "")
    .trim();
  return s === "" ? Number.NaN : Number.parseInt(s, 8);
}

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
  const fh = await open(file, "r");
  try {
    const header = Buffer.alloc(512);
    const { bytesRead } = await fh.read(header, 0, 512, 0);
    if (bytesRead < 512) throw notPackage(file, "shorter than one tar header");
    if (header.toString("ascii", 257, 262) !== "ustar") throw notPackage(file, "not a tar archive");
    const name = header.toString("utf8", 0, 100).replace(/\0.*$/s, "");
    if (name !== METADATA_MEMBER)
      throw notPackage(file, `its first member is '${name}', not ${METADATA_MEMBER}`);
    const size = parseOctal(header, 124, 12);
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
  /** Package size in bytes. */
  size: number;
}

/**
 * Reads the whole package once, streaming, and checks: metadata.json first, valid and of a known
 * major version; every member path safe (no absolute paths, `..`, links escaping); only regular
 * files, directories and symlinks; every member's sha256 against checksums.sha256 (metadata.json
 * included) and no member missing or unlisted; each volume member's sha256 and size against
 * metadata.json, and its decompressed tar's sha256, size and entry paths; the archive not
 * truncated. Never throws for a bad package: every problem is collected.
 * @throws DockpackError `FS_ENOENT` when the file does not exist
 */
export async function verifyPackage(
  file: string,
  reporter: Reporter = silentReporter(),
): Promise<VerifyResult> {
  const size = (await stat(file)).size;
  const label = basename(file);
  const problems: PackageProblem[] = [];
  const add = (code: string, message: string, member?: string) =>
    problems.push({ code, message, ...(member ? { member } : {}) });
  let metadata: PackageMetadata | null = null;
  let checksumsText: string | null = null;
  let configText: string | null = null;
  const digests = new Map<string, { sha256: string; size: number }>();
  const volumeChecks = new Map<string, { tarSha256: string; tarSize: number; innerProblem?: string }>();
  let index = 0;
  const bar = reporter.progress(`verify ${label}`, size);
  const source = createReadStream(file, { highWaterMark: 1024 * 1024 });
  let readBytes = 0;
  source.on("data", (c) => {
    readBytes += c.length;
    bar.update(readBytes);
  });
  try {
    await readTar(source, async (header, body) => {
      const name = header.name;
      const first = index++ === 0;
      const unsafe = checkEntryPath(name);
      if (unsafe) add("PACKAGE_UNSAFE_PATH", `${label}: member '${name}' is unsafe: ${unsafe}`, name);
      if (header.type === "directory") {
        body.resume();
        return;
      }
      if (header.type === "symlink") {
        const target = header.linkname ?? "";
        const r = checkLinkTarget(name, target);
        if (r) add("PACKAGE_UNSAFE_PATH", `${label}: symlink '${name}' → '${target}' escapes: ${r}`, name);
        digests.set(name, { sha256: `sha256:${sha256Hex(target)}`, size: 0 });
        body.resume();
        return;
      }
      if (header.type !== "file") {
        add(
          "PACKAGE_UNSAFE_PATH",
          `${label}: member '${name}' has type ${header.type}; only files, directories and symlinks are allowed`,
          name,
        );
        body.resume();
        return;
      }
      if (first && name !== METADATA_MEMBER)
        add("PACKAGE_NOT_A_PACKAGE", `${label}: the first member is '${name}', not ${METADATA_MEMBER}`, name);
      if (name === METADATA_MEMBER || name === CHECKSUMS_MEMBER || name === `environment/${CONFIG_FILE}`) {
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of body as AsyncIterable<Buffer>) {
          n += c.length;
          if (n <= METADATA_MAX) chunks.push(c);
        }
        const buf = Buffer.concat(chunks);
        digests.set(name, { sha256: `sha256:${sha256Hex(buf)}`, size: n });
        if (name === METADATA_MEMBER) {
          try {
            metadata = parseMetadata(buf, label);
          } catch (e) {
            const err = toDockpackError(e);
            add(err.code, err.message, name);
          }
        } else if (name === CHECKSUMS_MEMBER) checksumsText = buf.toString();
        else configText = buf.toString();
        return;
      }
      if (name.startsWith("volumes/")) {
        const digest = new DigestStream();
        const tee = new PassThrough();
        const inner = checkVolumeTar(name, tee);
        const counted = pipeline(body, digest, tee);
        const [innerRes] = await Promise.all([inner, counted]);
        digests.set(name, { sha256: digest.digest, size: digest.size });
        volumeChecks.set(name, innerRes);
        return;
      }
      const d = await digestStream(body);
      digests.set(name, { sha256: d.digest, size: d.size });
    });
  } catch (e) {
    const err = toDockpackError(e);
    const truncated = /unexpected end|premature/i.test(err.message) || size % 512 !== 0;
    if (index === 0)
      add("PACKAGE_NOT_A_PACKAGE", `${label} is not a dockpack environment package: ${err.message}`);
    else if (truncated) add("PACKAGE_TRUNCATED", `${label} is truncated: ${err.message}`);
    else add("PACKAGE_UNREADABLE", `${label} cannot be read as a tar archive: ${err.message}`);
  } finally {
    bar.stop();
  }
  if (index === 0 && !problems.length) add("PACKAGE_NOT_A_PACKAGE", `${label} holds no members`);
  const notPackageAtAll = problems.some((p) => p.code === "PACKAGE_NOT_A_PACKAGE") && digests.size === 0;
  if (notPackageAtAll)
    return {
      package: file,
      valid: false,
      problems,
      metadata: null,
      checksums: new Map(),
      configText: null,
      size,
    };
  if (!digests.has(METADATA_MEMBER))
    add("PACKAGE_MEMBER_MISSING", `${label}: ${METADATA_MEMBER} is missing`, METADATA_MEMBER);

  let checksums = new Map<string, string>();
  if (checksumsText === null)
    add("PACKAGE_MEMBER_MISSING", `${label}: ${CHECKSUMS_MEMBER} is missing`, CHECKSUMS_MEMBER);
  else {
    try {
      checksums = parseChecksums(checksumsText, label);
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
          `${label}: member '${member}': expected ${expected}, got ${got.sha256}`,
          member,
        );
    }
    for (const member of digests.keys())
      if (member !== CHECKSUMS_MEMBER && !checksums.has(member))
        add(
          "PACKAGE_MEMBER_UNLISTED",
          `${label}: member '${member}' is not listed in ${CHECKSUMS_MEMBER}`,
          member,
        );
  }
  const meta = metadata as PackageMetadata | null;
  if (meta) {
    if (checksumsText !== null && checksums.size && meta.members !== checksums.size)
      add(
        "PACKAGE_METADATA_MISMATCH",
        `${label}: metadata.json counts ${meta.members} members, ${CHECKSUMS_MEMBER} lists ${checksums.size}`,
      );
    for (const v of meta.volumes) {
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
      const inner = volumeChecks.get(v.member);
      if (inner?.innerProblem)
        add(
          inner.innerProblem.startsWith("unsafe") ? "PACKAGE_UNSAFE_PATH" : "PACKAGE_VOLUME_INVALID",
          `${label}: volume '${v.name}': ${inner.innerProblem}`,
          v.member,
        );
      else if (inner && (inner.tarSha256 !== v.tar_sha256 || inner.tarSize !== v.size))
        add(
          "PACKAGE_CHECKSUM_MISMATCH",
          `${label}: volume '${v.name}': its decompressed tar does not match metadata.json`,
          v.member,
        );
    }
  }
  return {
    package: file,
    valid: problems.length === 0,
    problems,
    metadata: meta,
    checksums,
    configText,
    size,
  };

  async function checkVolumeTar(
    member: string,
    input: Readable,
  ): Promise<{ tarSha256: string; tarSize: number; innerProblem?: string }> {
    const codec = member.endsWith(".zst") ? "zstd" : member.endsWith(".gz") ? "gzip" : "none";
    const decoded = decompressStream(codec);
    const digest = new DigestStream();
    const out = new PassThrough();
    let innerProblem: string | undefined;
    const scanning = readTar(out, async (h, b) => {
      const why = h.name === "./" ? null : checkEntryPath(h.name);
      if (why && !innerProblem) innerProblem = `unsafe entry '${h.name}': ${why}`;
      if (h.type === "link" && h.linkname && checkEntryPath(h.linkname) && !innerProblem)
        innerProblem = `unsafe hardlink '${h.name}' → '${h.linkname}'`;
      b.resume();
    }).catch((e) => {
      innerProblem ??= `its tar cannot be read: ${toDockpackError(e).message}`;
      out.resume();
    });
    try {
      await Promise.all([pipeline(input, decoded, digest, out), scanning]);
    } catch (e) {
      input.resume();
      innerProblem ??= `it cannot be decompressed: ${toDockpackError(e).message}`;
    }
    return { tarSha256: digest.digest, tarSize: digest.size, ...(innerProblem ? { innerProblem } : {}) };
  }
}

/** Why a symlink at `name` pointing to `target` would escape the package root, or null. */
function checkLinkTarget(name: string, target: string): string | null {
  if (target.startsWith("/")) return "absolute target";
  const parts = name.split("/").slice(0, -1);
  for (const p of target.split("/")) {
    if (p === "..") {
      if (parts.length === 0) return "target leaves the package";
      parts.pop();
    } else if (p !== "." && p !== "") parts.push(p);
  }
  return null;
}

/**
 * Runs {@link verifyPackage} and throws when the package is not valid.
 * @throws DockpackError with the first problem's code (e.g. `PACKAGE_CHECKSUM_MISMATCH`), a message
 *   listing every problem, and `details.problems`
 */
export async function requireValidPackage(
  file: string,
  reporter: Reporter,
): Promise<VerifyResult & { metadata: PackageMetadata }> {
  const res = await verifyPackage(file, reporter);
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
