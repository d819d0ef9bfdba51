/**
 * The delta package format (version 1): an uncompressed tar whose first member is
 * `dockpack-delta.json` ({@link DeltaMetadata}: every size and digest, so list/info never read
 * further), then `config.json` (the exact image config bytes) and one member per shipped layer
 * (`layers/<index>-<diff-hex12>.<full|xdelta3|bsdiff|zstd><codec extension>`), each compressed on
 * its own, in any order (package-writer.ts writes the config second, package-in-place.ts last).
 * Written atomically; read by random access (tar headers only).
 */
import { z } from "zod";
import { CODECS, type Codec } from "../core/codec.js";
import { DockpackError } from "../core/errors.js";
import { TarContainer } from "../image/container.js";

/** Name of the metadata member, always first. */
export const DELTA_METADATA_MEMBER = "dockpack-delta.json";
/** Name of the config member. */
export const DELTA_CONFIG_MEMBER = "config.json";
/** The format identifier in the metadata. */
export const DELTA_FORMAT_NAME = "dockpack-delta";
/** The package format version this dockpack writes and reads. */
export const DELTA_FORMAT_VERSION = 1;

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/);

/** How a layer travels: the target has it, a delta against a base layer, the whole layer, or a repeat of an earlier layer. */
export const DeltaShipKind = z.enum(["reused", "delta", "full", "duplicate"]);

/** One layer row of the metadata. Sizes in bytes. */
export const DeltaLayerEntrySchema = z.object({
  index: z.number().int().nonnegative(),
  diffId: digest,
  /** Uncompressed layer size. */
  size: z.number().int().nonnegative(),
  ship: DeltaShipKind,
  method: z.enum(["xdelta3", "bsdiff", "zstd"]).optional(),
  params: z.object({ window: z.number().optional(), windowLog: z.number().optional() }).optional(),
  /** The base layer a delta applies to, its size, and the base image that holds it. */
  base: z.object({ diffId: digest, size: z.number().int().nonnegative(), image: z.string() }).optional(),
  /** For `reused`: base images that hold the layer. */
  providers: z.array(z.string()).optional(),
  /** For `duplicate`: the earlier index with the same diff_id. */
  sameAs: z.number().int().nonnegative().optional(),
  member: z.string().optional(),
  memberSize: z.number().int().nonnegative().optional(),
  memberDigest: digest.optional(),
  /** Compression of the member (patches from bsdiff and zstd are stored as written: "none"). */
  codec: z.enum(CODECS as [Codec, ...Codec[]]).optional(),
  /** Size the whole layer compressed with the package codec would have had. */
  fullSize: z.number().int().nonnegative().optional(),
  /** Set instead of `fullSize` when compressing the whole layer stopped early: it is larger than this many bytes. */
  fullSizeAbove: z.number().int().nonnegative().optional(),
  /** Why this layer ships as it does, for `list -v`. */
  reason: z.string().optional(),
  /** Why this delta method: `auto`'s choice by similarity and size, or bsdiff's fallback to xdelta3 above its limit. */
  methodReason: z.string().optional(),
});
/** One layer row. */
export type DeltaLayerEntry = z.infer<typeof DeltaLayerEntrySchema>;

/** A base the package was made against. */
export const DeltaBaseEntrySchema = z.object({
  ref: z.string(),
  kind: z.enum(["image", "inventory"]),
  id: z.string().optional(),
  repoTags: z.array(z.string()),
  diffIds: z.array(digest),
});
/** One base. */
export type DeltaBaseEntry = z.infer<typeof DeltaBaseEntrySchema>;

/** The package metadata (`dockpack-delta.json`). */
export const DeltaMetadataSchema = z.object({
  format: z.literal(DELTA_FORMAT_NAME),
  formatVersion: z.number().int(),
  dockpackVersion: z.string(),
  /** ISO 8601 time of creation. */
  created: z.string(),
  source: z.object({
    ref: z.string(),
    format: z.string(),
    /** Image ID: sha256 of the config bytes. */
    id: digest,
    repoTags: z.array(z.string()),
    os: z.string().optional(),
    architecture: z.string().optional(),
  }),
  bases: z.array(DeltaBaseEntrySchema),
  method: z.enum(["xdelta3", "bsdiff", "zstd", "layer", "auto"]),
  compression: z.enum(CODECS as [Codec, ...Codec[]]),
  level: z.number().int().optional(),
  config: z.object({ member: z.string(), digest, size: z.number().int().nonnegative() }),
  layers: z.array(DeltaLayerEntrySchema),
  totals: z.object({
    /** Σ uncompressed sizes of the image's distinct layers plus config. */
    imageSize: z.number().int().nonnegative(),
    /** Bytes `docker save` of this image writes (tar framing included). */
    dockerSaveSize: z.number().int().nonnegative(),
    /** Bytes of `docker save | gzip` (level 6), measured while creating; absent when not measured. */
    dockerSaveGzipSize: z.number().int().nonnegative().optional(),
    /** Σ member sizes (layers and config) in the package. */
    membersSize: z.number().int().nonnegative(),
  }),
});
/** The package metadata. */
export type DeltaMetadata = z.infer<typeof DeltaMetadataSchema>;

/** Largest metadata member read (bytes); a real one is a few KiB per layer. */
export const DELTA_METADATA_LIMIT = 16 * 1024 * 1024;

const DOMAIN = String.raw`(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?`;
const COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
const REPO_TAG_RE = new RegExp(String.raw`^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*:[\w][\w.-]{0,127}$`);

/**
 * True when `t` is a `name:tag` the engine accepts (distribution/reference grammar: optional
 * registry host[:port], lowercase path components, a tag of ≤ 128 word characters, dots, dashes;
 * name ≤ 255 characters). `docker load` refuses anything else.
 */
export function isValidRepoTag(t: string): boolean {
  const colon = t.lastIndexOf(":");
  return REPO_TAG_RE.test(t) && colon > 0 && colon <= 255;
}

/**
 * Checks what the schema cannot: regular files only (no link, folder or device entry), member
 * order (metadata first and only once, one config), source.id = config digest, layer rows
 * consistent (index = position, members for full and delta rows, a `duplicate` row pointing at an
 * earlier row with the same diff_id, a delta row's base), no member the metadata does not list,
 * and tags the engine accepts.
 * @throws DockpackError `DELTA_PACKAGE_INVALID` naming the package and the inconsistency
 */
async function checkConsistency(path: string, md: DeltaMetadata, container: TarContainer): Promise<void> {
  const odd = container.nonFiles()[0];
  if (odd)
    throw new DockpackError(
      "DELTA_PACKAGE_INVALID",
      `${path}: the member ${JSON.stringify(odd.path)} is a ${odd.type === "other" ? "device, fifo or unknown entry" : odd.type}; a delta package holds regular files only.`,
      { hint: "The package is corrupted or forged; create it again with 'dockpack delta create'." },
    );
  checkDeltaConsistency(
    path,
    md,
    (await container.members()).map((m) => m.path),
  );
}

/**
 * The checks of {@link openDeltaPackage} beyond the schema, on the member names in archive
 * order (so a streaming reader, e.g. an environment package's image section, runs the same ones).
 * @throws DockpackError `DELTA_PACKAGE_INVALID` naming the package and the inconsistency
 */
export function checkDeltaConsistency(path: string, md: DeltaMetadata, memberNames: string[]): void {
  const bad = (why: string) =>
    new DockpackError("DELTA_PACKAGE_INVALID", `${path}: ${why}`, {
      hint: "The package is corrupted or forged; create it again with 'dockpack delta create'.",
    });
  const members = memberNames.map((path) => ({ path }));
  if (members[0]?.path !== DELTA_METADATA_MEMBER)
    throw bad(`${DELTA_METADATA_MEMBER} is not the first member.`);
  const seen = new Set<string>();
  for (const m of members) {
    if (seen.has(m.path)) throw bad(`the member ${m.path} appears more than once.`);
    seen.add(m.path);
  }
  if (md.source.id !== md.config.digest)
    throw bad(`source.id ${md.source.id} is not the config digest ${md.config.digest}.`);
  if (md.config.member !== DELTA_CONFIG_MEMBER)
    throw bad(`the config member is '${md.config.member}', not ${DELTA_CONFIG_MEMBER}.`);
  for (const t of md.source.repoTags)
    if (!isValidRepoTag(t)) throw bad(`the tag ${JSON.stringify(t)} is not a valid image name:tag.`);
  const shipped = new Set<string>();
  md.layers.forEach((l, i) => {
    const row = `layer ${i}`;
    if (l.index !== i) throw bad(`${row} has index ${l.index}.`);
    if (l.ship === "full" || l.ship === "delta") {
      if (!l.member || l.memberDigest === undefined || l.memberSize === undefined)
        throw bad(`${row} ships as ${l.ship} without a member, its digest and size.`);
      if (!l.member.startsWith("layers/") || shipped.has(l.member) || l.member === DELTA_CONFIG_MEMBER)
        throw bad(`${row} names the member ${JSON.stringify(l.member)}.`);
      shipped.add(l.member);
      if (!seen.has(l.member)) throw bad(`${row}: the member ${l.member} is missing.`);
    } else if (l.member !== undefined) throw bad(`${row} ships as ${l.ship} but names a member.`);
    if (l.ship === "delta" && (!l.method || !l.base)) throw bad(`${row} is a delta without method or base.`);
    if (l.ship === "duplicate") {
      const first = l.sameAs === undefined ? undefined : md.layers[l.sameAs];
      if (l.sameAs === undefined || l.sameAs >= i || first?.diffId !== l.diffId || first.ship === "duplicate")
        throw bad(
          `${row} is a duplicate of ${l.sameAs ?? "nothing"}, which is not an earlier layer with diff_id ${l.diffId}.`,
        );
    }
  });
  for (const m of members)
    if (m.path !== DELTA_METADATA_MEMBER && m.path !== DELTA_CONFIG_MEMBER && !shipped.has(m.path))
      throw bad(`the member ${JSON.stringify(m.path)} is not listed in ${DELTA_METADATA_MEMBER}.`);
}

/** Bytes a tar member of `size` bytes takes (header + padded body). */
export function tarMemberSize(size: number): number {
  return 512 + Math.ceil(size / 512) * 512;
}

/** An opened package: its metadata and random access to its members. */
export interface OpenedDeltaPackage {
  path: string;
  metadata: DeltaMetadata;
  container: TarContainer;
}

/**
 * Opens a delta package and validates its metadata without reading any layer member.
 * Throws `DELTA_PACKAGE_NOT_FOUND`, `DELTA_PACKAGE_TRUNCATED`, `DELTA_PACKAGE_INVALID`,
 * `DELTA_FORMAT_UNSUPPORTED`.
 */
export async function openDeltaPackage(path: string): Promise<OpenedDeltaPackage> {
  let container: TarContainer;
  try {
    container = await TarContainer.open(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "FS_ENOENT" || code === "ENOENT") {
      throw new DockpackError("DELTA_PACKAGE_NOT_FOUND", `The delta package '${path}' does not exist.`, {
        hint: "Check the path.",
      });
    }
    if (code === "ARCHIVE_TRUNCATED") {
      throw new DockpackError(
        "DELTA_PACKAGE_TRUNCATED",
        `The delta package '${path}' is truncated: ${(e as Error).message}`,
        {
          hint: "The copy is incomplete; copy the package again.",
          cause: e,
        },
      );
    }
    if (code === "ARCHIVE_INVALID") {
      throw new DockpackError(
        "DELTA_PACKAGE_INVALID",
        `'${path}' is not a dockpack delta package (not a valid tar archive: ${(e as Error).message}).`,
        {
          cause: e,
          hint: "Give a file written by 'dockpack delta create'; this one is corrupted or foreign.",
        },
      );
    }
    throw e;
  }
  if (!(await container.has(DELTA_METADATA_MEMBER))) {
    throw new DockpackError(
      "DELTA_PACKAGE_INVALID",
      `'${path}' is not a dockpack delta package (no ${DELTA_METADATA_MEMBER}).`,
      {
        hint: "Give a file written by 'dockpack delta create'.",
      },
    );
  }
  const metadataSize = await container.size(DELTA_METADATA_MEMBER);
  if (metadataSize > DELTA_METADATA_LIMIT) {
    throw new DockpackError(
      "DELTA_METADATA_TOO_LARGE",
      `${path}: ${DELTA_METADATA_MEMBER} is ${metadataSize} bytes, more than the ${DELTA_METADATA_LIMIT} a package's metadata may have.`,
      { hint: "The package is corrupted or forged; create it again with 'dockpack delta create'." },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse((await container.read(DELTA_METADATA_MEMBER, DELTA_METADATA_LIMIT)).toString("utf8"));
  } catch (e) {
    throw new DockpackError("DELTA_PACKAGE_INVALID", `${path}: ${DELTA_METADATA_MEMBER} is not valid JSON.`, {
      cause: e,
    });
  }
  const version = (raw as { formatVersion?: unknown })?.formatVersion;
  if (
    (raw as { format?: unknown })?.format === DELTA_FORMAT_NAME &&
    typeof version === "number" &&
    version !== DELTA_FORMAT_VERSION
  ) {
    throw new DockpackError(
      "DELTA_FORMAT_UNSUPPORTED",
      `${path}: package format version ${version} is not supported (this dockpack reads version ${DELTA_FORMAT_VERSION}).`,
      { hint: "Use the dockpack version that wrote the package, or recreate it with this one." },
    );
  }
  const parsed = DeltaMetadataSchema.safeParse(raw);
  if (!parsed.success) {
    throw new DockpackError(
      "DELTA_PACKAGE_INVALID",
      `${path}: ${DELTA_METADATA_MEMBER} is malformed: ${parsed.error.issues[0]?.path.join(".")} ${parsed.error.issues[0]?.message}.`,
    );
  }
  await checkConsistency(path, parsed.data, container);
  return { path, metadata: parsed.data, container };
}
