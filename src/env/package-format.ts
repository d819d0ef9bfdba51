/**
 * The environment package format (version 1.0): one uncompressed tar file whose members are
 *
 * ```
 * metadata.json                 first member, so `packages list` reads only a file's head
 * environment/<path>            env files, .dockpack/config.yml and the compose files
 * code/<path>                   optional: the worktree's files (tracked + untracked, not ignored)
 * volumes/<volume>.tar.<codec>  one tar of each named volume, compressed (zstd default, gzip)
 * images/<n>-<id12>.delta       optional (`export --images`): one dockpack delta package per image
 * checksums.sha256              last member: `sha256sum` lines for every other member
 * ```
 *
 * Integrity: `checksums.sha256` lists the sha256 of every member before it, *including*
 * metadata.json itself (its exact stored bytes), so an edited metadata.json is caught. The
 * checksums member is in turn cross-checked: metadata.json repeats each volume's sha256 and
 * compressed size, and `members` (the count of members listed in checksums.sha256). We chose a
 * trailing checksum member over a digest inside metadata.json because metadata.json must be
 * written first while volume digests are known only after streaming them; the writer reserves
 * metadata.json's space first and fills it in at the end (JSON padded with spaces).
 * Symlink members are covered by the sha256 of their target text. Volume members are compressed
 * once; the outer tar is not compressed again.
 *
 * Versioning: `format_version` is `major.minor`. A reader accepts any minor of its major and
 * refuses another major (`PACKAGE_VERSION_UNSUPPORTED`).
 */
import { DockpackError } from "../core/errors.js";
import * as z from "../core/zod-mini.js";
import { PACKAGE_EXTENSION } from "./package-extension.js";

/** The format version this dockpack writes. */
export const PACKAGE_FORMAT_VERSION = "1.0";
/** The value of metadata.json's `format` field. */
export const PACKAGE_FORMAT_NAME = "dockpack-env-package";
/** File name suffix of packages. */
export { PACKAGE_EXTENSION };
/** First member. */
export const METADATA_MEMBER = "metadata.json";
/** Last member. */
export const CHECKSUMS_MEMBER = "checksums.sha256";
/**
 * `--encrypt-all` only: the encrypted `sha256sum` list of every encrypted code/environment
 * member's plaintext and of metadata.json, just before checksums.sha256 (package-crypto-stream.ts).
 */
export const PLAIN_CHECKSUMS_MEMBER = "checksums.plain.age";
/** Bytes reserved for metadata.json (the JSON is padded with spaces to this size). */
export const METADATA_RESERVED_BYTES = 64 * 1024;

const digest = z.string().check(z.regex(/^sha256:[a-f0-9]{64}$/));

/** One packaged volume as recorded in metadata.json. */
export const packageVolumeSchema = z.object({
  /** Logical name as declared in the compose files, e.g. `db`. */
  name: z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/)),
  /** The Docker volume it was read from, e.g. `shop-main_db`. */
  source_volume: z.string(),
  /** Member path in the package, e.g. `volumes/db.tar.zst`. */
  member: z.string(),
  /** Codec of the member: `zstd`, `gzip` or `none`. */
  codec: z.enum(["zstd", "gzip", "none"]),
  /** Bytes of the volume's tar before compression. */
  size: z.number().check(z.int(), z.nonnegative()),
  /** Bytes of the member. */
  compressed_size: z.number().check(z.int(), z.nonnegative()),
  /** sha256 of the member (compressed bytes). */
  sha256: digest,
  /** sha256 of the uncompressed tar. */
  tar_sha256: digest,
});

/** One image of the image section: a delta package member (src/delta format) per distinct image ID. */
export const packageImageSchema = z.object({
  /** Member path, `images/<n>-<id hex12>.delta`. */
  member: z.string(),
  /** Image ID (`sha256:` of the config bytes): the loaded image must have exactly this ID. */
  id: digest,
  /** The services that run it: `image` is the compose `image:` value, absent for a build-only service. */
  services: z.array(z.object({ service: z.string(), image: z.optional(z.string()) })),
  /** Tags the image had in the exporting engine (informational). */
  source_tags: z.array(z.string()),
  /** Bytes of the member (the delta package). */
  size: z.number().check(z.int(), z.nonnegative()),
  /** sha256 of the member. */
  sha256: digest,
  /** Σ uncompressed sizes of the image's distinct layers plus config. */
  image_size: z.number().check(z.int(), z.nonnegative()),
  /** Layers in total, shipped whole, as deltas, and left to the receiver (reused, incl. other images of the section). */
  layers: z.object({
    total: z.number().check(z.int(), z.nonnegative()),
    full: z.number().check(z.int(), z.nonnegative()),
    delta: z.number().check(z.int(), z.nonnegative()),
    reused: z.number().check(z.int(), z.nonnegative()),
  }),
});
/** One entry of the image section. */
export type PackageImage = z.infer<typeof packageImageSchema>;
/**
 * metadata.json's `encryption` entry (age). `members`: the encrypted env files (`--encrypt-to` /
 * `--encrypt-passphrase`). `all` (`--encrypt-all`): every regular-file member of code/,
 * environment/ and volumes/ is encrypted to the package key, whose age-encrypted form (base64)
 * is `key`.
 */
export const packageEncryptionSchema = z.object({
  scheme: z.literal("age"),
  members: z.array(z.string()),
  all: z.optional(z.boolean()),
  key: z.optional(z.string().check(z.maxLength(16 * 1024))),
});

/** metadata.json. Unknown keys are allowed (a newer minor version may add some). */
export const packageMetadataSchema = z.object({
  format: z.literal(PACKAGE_FORMAT_NAME),
  format_version: z.string().check(z.regex(/^\d+\.\d+$/)),
  dockpack_version: z.string(),
  /** ISO 8601 UTC time of the export. */
  created_at: z.string(),
  project: z.string(),
  branch: z.string(),
  compose_project: z.string(),
  /** The worktree's HEAD commit (40 hex) or null when it had none. */
  commit: z.nullable(z.string()),
  /** True when the worktree had uncommitted or untracked changes at export. */
  dirty: z.boolean(),
  include_code: z.boolean(),
  /** Paths (relative to the worktree) stored under environment/. */
  environment_files: z.array(z.string()),
  /** Number of files stored under code/. */
  code_files: z.number().check(z.int(), z.nonnegative()),
  volumes: z.array(packageVolumeSchema),
  /** Number of lines in checksums.sha256. */
  members: z.number().check(z.int(), z.positive()),
  /** The image section (package-images.ts); absent when the package carries no images. */
  images: z.optional(z.array(packageImageSchema)),
  /** How the image section was chosen: every layer (`all`) or what an inventory lacks (`missing-from`). */
  images_mode: z.optional(z.enum(["all", "missing-from"])),
  /** Present when members are encrypted (package-crypto.ts, package-crypto-stream.ts). */
  encryption: z.optional(packageEncryptionSchema),
});

/** A package's metadata.json. */
export type PackageMetadata = z.infer<typeof packageMetadataSchema>;
/** One volume entry of {@link PackageMetadata}. */
export type PackageVolume = z.infer<typeof packageVolumeSchema>;

/**
 * Parses metadata.json bytes and checks the format name and major version.
 * @param label the package file, named in errors
 * @throws DockpackError `PACKAGE_METADATA_INVALID` (not JSON / schema mismatch),
 *   `PACKAGE_VERSION_UNSUPPORTED` (another major version)
 */
export function parseMetadata(bytes: Buffer | string, label: string): PackageMetadata {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString());
  } catch (err) {
    throw new DockpackError("PACKAGE_METADATA_INVALID", `${label}: metadata.json is not valid JSON.`, {
      hint: "The package is damaged; export it again.",
      cause: err,
    });
  }
  const version = (value as { format_version?: unknown } | null)?.format_version;
  if (typeof version === "string" && /^\d+\.\d+$/.test(version)) checkFormatVersion(version, label);
  const res = packageMetadataSchema.safeParse(value);
  if (!res.success) {
    const problems = res.error.issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
    throw new DockpackError(
      "PACKAGE_METADATA_INVALID",
      `${label}: metadata.json is malformed: ${problems.join("; ")}`,
      { hint: "The package is damaged or not a dockpack package; export it again.", details: { problems } },
    );
  }
  return res.data;
}

/**
 * Refuses a package whose major format version differs from {@link PACKAGE_FORMAT_VERSION}'s.
 * @throws DockpackError `PACKAGE_VERSION_UNSUPPORTED`
 */
export function checkFormatVersion(version: string, label: string): void {
  const major = Number(version.split(".")[0]);
  const ours = Number(PACKAGE_FORMAT_VERSION.split(".")[0]);
  if (major !== ours)
    throw new DockpackError(
      "PACKAGE_VERSION_UNSUPPORTED",
      `${label}: package format version ${version} is not supported (this dockpack reads ${ours}.x).`,
      { hint: `Use a dockpack version that reads format ${major}.x, or export the environment again.` },
    );
}

/** Renders checksums.sha256: `<hex>  <member>` lines in member order. */
export function renderChecksums(entries: { member: string; sha256: string }[]): string {
  return entries.map((e) => `${e.sha256.slice("sha256:".length)}  ${e.member}\n`).join("");
}

/**
 * Parses checksums.sha256 into member → `sha256:<hex>`.
 * @throws DockpackError `PACKAGE_CHECKSUMS_INVALID` naming the first bad line
 */
export function parseChecksums(text: string, label: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split("\n").filter((l) => l !== "");
  for (const [i, line] of lines.entries()) {
    const m = /^([a-f0-9]{64}) {2}(.+)$/.exec(line);
    if (!m || out.has(m[2]))
      throw new DockpackError(
        "PACKAGE_CHECKSUMS_INVALID",
        `${label}: checksums.sha256 line ${i + 1} is malformed${m ? " (duplicate member)" : ""}.`,
        { hint: "The package is damaged; export it again." },
      );
    out.set(m[2], `sha256:${m[1]}`);
  }
  return out;
}

/** The package file name for an export: `<project>-<branch>-<YYYYMMDDTHHMMSSZ>.dockpack.tar`. */
export function packageFileName(project: string, branchSafe: string, date: Date): string {
  const stamp = date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${project}-${branchSafe}-${stamp}${PACKAGE_EXTENSION}`;
}

/**
 * Mode bits refused on `code/` and `environment/` file members (`PACKAGE_MODE_UNSAFE`):
 * setuid, setgid, sticky and world-writable. Tar header modes are not in checksums.sha256, so
 * these are refused rather than trusted; the exporter never writes them.
 */
export const UNSAFE_MODE_BITS = 0o7002;

/** Longest member path accepted (bytes), and longest path component (bytes). */
const MAX_PATH_BYTES = 4096;
const MAX_COMPONENT_BYTES = 255;

/**
 * Why a member name is not acceptable in a package, or null. Names must be canonical
 * (`/`-separated, no empty, `.` or `..` components, no leading `/`, no NUL), under one of the
 * package's sections (`metadata.json`, `checksums.sha256`, `environment/<path>`, `code/<path>`,
 * `volumes/<file>`), of a length every file system takes, and never git metadata: a `.git`
 * component (any case, any depth, file or folder) is refused, since git would honour it as a
 * repository (hooks, config).
 */
export function checkMemberName(name: string): string | null {
  if (name === "") return "the name is empty";
  if (name.includes("\0")) return "the name contains a NUL byte";
  if (name.startsWith("/")) return "it is an absolute path";
  const parts = name.split("/");
  if (parts.includes("..")) return "it has a '..' component";
  if (parts.some((p) => p === "" || p === ".")) return "it is not a canonical path (empty or '.' component)";
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) return `it is longer than ${MAX_PATH_BYTES} bytes`;
  if (parts.some((p) => Buffer.byteLength(p) > MAX_COMPONENT_BYTES))
    return `a component is longer than ${MAX_COMPONENT_BYTES} bytes`;
  if (name === METADATA_MEMBER || name === CHECKSUMS_MEMBER || name === PLAIN_CHECKSUMS_MEMBER) return null;
  const [section] = parts;
  if (section === "volumes") return parts.length === 2 ? null : "volume members lie directly under volumes/";
  if (section === "images") return parts.length === 2 ? null : "image members lie directly under images/";
  if (section !== "code" && section !== "environment") return "it is outside the package's sections";
  if (parts.length < 2) return "it names a section itself";
  if (parts.some((p) => p.toLowerCase() === ".git"))
    return "it is git metadata (.git), which is never restored";
  return null;
}

/** The path a `code/` or `environment/` member is restored to, relative to the worktree. */
export function restorePath(member: string): string | null {
  if (member.startsWith("code/")) return member.slice(5);
  if (member.startsWith("environment/")) return member.slice(12);
  return null;
}

const MAX_LINK_HOPS = 40;

/**
 * Resolves a symlink `target` met in folder `base` (components relative to the restore root)
 * through the symlinks `lookup` knows (package symlinks, and at import those already on disk),
 * without touching anything. Returns the resolved components, or the reason it leaves the root
 * (absolute target, `..` above the root, more than 40 levels of links).
 */
export function resolveInside(
  base: string[],
  target: string,
  lookup: (rel: string) => string | undefined,
  depth = 0,
): string[] | string {
  if (target.startsWith("/")) return `its target '${target}' is absolute`;
  if (target === "") return "its target is empty";
  let stack = [...base];
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (stack.length === 0) return `its target '${target}' leads outside the worktree`;
      stack.pop();
      continue;
    }
    const next = lookup([...stack, part].join("/"));
    if (next === undefined) {
      stack.push(part);
      continue;
    }
    if (depth >= MAX_LINK_HOPS) return "its target has too many levels of symlinks";
    const r = resolveInside(stack, next, lookup, depth + 1);
    if (typeof r === "string") return r;
    stack = r;
  }
  return stack;
}

/** Extension of a volume member for `codec` (`.zst`, `.gz`, or none). */
export function volumeMemberName(name: string, codec: PackageVolume["codec"]): string {
  return `volumes/${name}.tar${codec === "zstd" ? ".zst" : codec === "gzip" ? ".gz" : ""}`;
}
