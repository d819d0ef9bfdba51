/**
 * The registry form of an environment package (see docs/commands/registry.md): how a package file
 * (package-format.ts) is cut into OCI blobs and put back together byte for byte.
 *
 * The package tar is split at member boundaries into segments, in file order:
 * - each `volumes/<name>.tar.<codec>` member: its tar header(s) and padding are kept in the config
 *   blob, its data (the compressed volume, whose sha256 metadata.json already records) is a layer
 *   of its own — so an unchanged volume is the same blob in every export and is not uploaded again;
 * - each `images/<n>-<id12>.delta` member (the image section, package-images.ts) likewise: header
 *   and padding in the config, its bytes a segment of its own (kind `image`), so an import that
 *   gets the images elsewhere (registry-images.ts) can tell exactly which layers it may leave out;
 * - every other run of members (metadata.json; environment/…; code/…; checksums.sha256 with the
 *   end-of-archive blocks) is a layer of raw tar bytes.
 *
 * Each segment is cut into content-defined chunks ({@link chunkSegments}), one layer per chunk,
 * so a change inside a big volume or code segment re-sends only the chunks around it.
 *
 * Reassembling the segments in order gives the exact package bytes (`package_sha256` checks it).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { z } from "zod";
import { DockpackError } from "../core/errors.js";
import { type CdcParams, DEFAULT_CDC, FastCdc } from "../core/oci/cdc.js";
import { registryImageSchema } from "./registry-images.js";

/** artifactType of an environment package manifest. */
export const ENV_ARTIFACT_TYPE = "application/vnd.dockpack.env.package.v1";
/** Media type of the config blob ({@link RegistryPackageConfig} as JSON). */
export const ENV_CONFIG_MEDIA_TYPE = "application/vnd.dockpack.env.package.config.v1+json";
/** Media type of a raw tar segment layer. */
export const ENV_SEGMENT_MEDIA_TYPE = "application/vnd.dockpack.env.package.segment.v1.tar";
/** Media type of one content-defined chunk of a segment cut into several (raw bytes of the segment). */
export const ENV_CHUNK_MEDIA_TYPE = "application/vnd.dockpack.env.package.chunk.v1";
/** Media type of a volume layer by codec. */
export const ENV_VOLUME_MEDIA_TYPES: Record<string, string> = {
  zstd: "application/vnd.dockpack.env.volume.v1.tar+zstd",
  gzip: "application/vnd.dockpack.env.volume.v1.tar+gzip",
  none: "application/vnd.dockpack.env.volume.v1.tar",
};

/**
 * Media type of a volume layer of an `--encrypt-all` package, by the codec under the encryption:
 * the member is the age encryption (age-encryption.org/v1) of the compressed tar, so `+age` is
 * appended the way ocicrypt appends `+encrypted` to OCI layer types. The `dev.dockpack.encryption`
 * annotation (`age`) marks every layer of such a volume, its chunks too.
 */
export const ENV_ENCRYPTED_VOLUME_MEDIA_TYPES: Record<string, string> = {
  zstd: "application/vnd.dockpack.env.volume.v1.tar+zstd+age",
  gzip: "application/vnd.dockpack.env.volume.v1.tar+gzip+age",
  none: "application/vnd.dockpack.env.volume.v1.tar+age",
};

/** Media type of an image member's layer (one dockpack delta package, package-images.ts). */
export const ENV_IMAGE_MEDIA_TYPE = "application/vnd.dockpack.env.image.delta.v1";

/** One segment of the package file. */
export interface Segment {
  /** `metadata`, `environment`, `code`, `volume`, `image`, `checksums` or `other`. */
  kind: string;
  /** Member name of a volume or image segment (e.g. `volumes/db.tar.zst`); the first member's otherwise. */
  member: string;
  /** Byte range of the layer's bytes in the package file, [start, end). */
  start: number;
  end: number;
  /** Volume and image only: the tar header block(s) before the data, and the zero padding after it (bytes). */
  header?: Buffer;
  padding?: number;
  /** `sha256:<hex>` of [start, end) when the segment is one chunk, set by {@link chunkSegments}. */
  digest?: string;
  /** The segment's content-defined chunks in order (one layer each), set by {@link chunkSegments}. */
  chunks?: Chunk[];
}

const segmentSchema = z.object({
  kind: z.string().max(32),
  member: z.string().max(4096),
  size: z.number().int().nonnegative(),
  header: z
    .string()
    .max(64 * 1024)
    .optional(),
  padding: z.number().int().min(0).max(511).optional(),
  /** Layers this segment spans (its content-defined chunks, in order); 1 when absent (format 1.0). */
  chunks: z.number().int().min(1).max(1_000_000).optional(),
});

/** The config blob: what the package was, and how to rebuild it from the layers (one per segment). */
export const registryPackageConfigSchema = z.object({
  format: z.literal("dockpack-env-package-oci"),
  format_version: z.string().regex(/^1\.\d+$/),
  /** Base name of the package file as exported. */
  file_name: z.string().max(255),
  package_size: z.number().int().nonnegative(),
  package_sha256: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  /** metadata.json of the package (parsed), for `packages list` without downloading layers. */
  metadata: z.record(z.string(), z.unknown()),
  /** Segments in file order; their layers follow each other in the manifest (`chunks` each). */
  segments: z.array(segmentSchema).max(100_000),
  /** How the chunks were cut ({@link CDC_ALGORITHM} and bounds); informational, reassembly does not need it. */
  chunking: z
    .object({ algorithm: z.string().max(64), min: z.number(), avg: z.number(), max: z.number() })
    .optional(),
  /** The package's images pushed as ordinary images in the same repository (registry-images.ts). */
  images: z.array(registryImageSchema).max(10_000).optional(),
});
export type RegistryPackageConfig = z.infer<typeof registryPackageConfigSchema>;

function octal(buf: Buffer, off: number, len: number): number {
  if (buf[off] & 0x80) {
    let n = 0;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + buf[i];
    return n;
  }
  const s = buf
    .toString("ascii", off, off + len)
    .replace(/\0.*$/s, "")
    .trim();
  return s === "" ? 0 : Number.parseInt(s, 8);
}

function kindOf(name: string, first: boolean): string {
  if (first) return "metadata";
  if (name.startsWith("environment/") || name === "environment") return "environment";
  if (name.startsWith("code/") || name === "code") return "code";
  if (name.startsWith("volumes/")) return "volume";
  if (name.startsWith("images/")) return "image";
  if (name === "checksums.sha256") return "checksums";
  return "other";
}

/**
 * Cuts a package file into segments by reading its tar headers (data is skipped, not read).
 * The file must already have passed the package reader; a structure this scanner cannot follow
 * throws `PACKAGE_UNREADABLE`.
 */
export async function scanSegments(file: string): Promise<Segment[]> {
  const fh = await open(file, "r");
  try {
    const size = (await fh.stat()).size;
    const segs: Segment[] = [];
    let pos = 0;
    let first = true;
    const block = Buffer.alloc(512);
    const bad = (why: string) => new DockpackError("PACKAGE_UNREADABLE", `${file}: ${why} at byte ${pos}`);
    const raw = (kind: string, member: string, start: number, end: number) => {
      const last = segs[segs.length - 1];
      if (
        last &&
        last.kind === kind &&
        kind !== "volume" &&
        kind !== "image" &&
        kind !== "metadata" &&
        last.end === start
      )
        last.end = end;
      else segs.push({ kind, member, start, end });
    };
    while (pos < size) {
      const entryStart = pos;
      let name = "";
      let paxPath: string | undefined;
      // prefix headers (pax 'x'/'g', GNU 'L'/'K') belong to the entry that follows
      for (;;) {
        if (pos + 512 > size) throw bad("truncated tar header");
        await fh.read(block, 0, 512, pos);
        if (block.every((b) => b === 0)) {
          raw("checksums", "end-of-archive", entryStart, size);
          return finish(segs, size);
        }
        const type = String.fromCharCode(block[156] || 0x30);
        const len = octal(block, 124, 12);
        const dataStart = pos + 512;
        const padded = Math.ceil(len / 512) * 512;
        if (type === "x" || type === "g" || type === "L" || type === "K") {
          if (len > 1024 * 1024) throw bad("oversized extended header");
          const ext = Buffer.alloc(len);
          await fh.read(ext, 0, len, dataStart);
          if (type === "x") {
            const m = /\d+ path=([^\n]*)\n/.exec(ext.toString("utf8"));
            if (m) paxPath = m[1];
          } else if (type === "L") paxPath = ext.toString("utf8").replace(/\0.*$/s, "");
          pos = dataStart + padded;
          continue;
        }
        const prefix = block.toString("utf8", 345, 500).replace(/\0.*$/s, "");
        const short = block.toString("utf8", 0, 100).replace(/\0.*$/s, "");
        name = paxPath ?? (prefix ? `${prefix}/${short}` : short);
        const kind = kindOf(name, first);
        first = false;
        if ((kind === "volume" || kind === "image") && (type === "0" || type === "\0")) {
          const header = Buffer.alloc(dataStart - entryStart);
          await fh.read(header, 0, header.length, entryStart);
          segs.push({
            kind,
            member: name,
            start: dataStart,
            end: dataStart + len,
            header,
            padding: padded - len,
          });
        } else raw(kind, name, entryStart, dataStart + padded);
        pos = dataStart + padded;
        break;
      }
    }
    throw bad("no end-of-archive blocks");
  } finally {
    await fh.close();
  }
}

function finish(segs: Segment[], size: number): Segment[] {
  let covered = 0;
  for (const s of segs) covered += (s.header?.length ?? 0) + (s.end - s.start) + (s.padding ?? 0);
  if (covered !== size)
    throw new DockpackError("PACKAGE_UNREADABLE", `segments cover ${covered} of ${size} bytes`);
  return segs;
}

/** One layer's share of a segment: a content-defined chunk of the segment's bytes. */
export interface Chunk {
  /** Byte range in the package file, [start, end). */
  start: number;
  end: number;
  /** `sha256:<hex>` of the range. */
  digest: string;
}

/**
 * Reads the file once and cuts every segment into content-defined chunks (core/oci/cdc.ts,
 * FastCDC restarted at each segment start), setting `chunks` (and `digest` for a one-chunk
 * segment) on each segment; returns the whole file's `sha256:<hex>`. A segment shorter than
 * `params.min` is one chunk; an empty segment is one empty chunk.
 *
 * What is chunked are the bytes as they lie in the package file — for a volume, its compressed
 * member — so the registry form reassembles to the identical file. That still dedups within a
 * changed volume for zstd (dockpack's default codec, written multi-threaded: zstd compresses
 * fixed-size jobs that each depend only on their input and the previous job's tail, so the
 * compressed bytes resynchronise one job after a change) and for uncompressed volumes; a gzip
 * stream does not resynchronise, so a change resends the rest of that volume.
 */
export async function chunkSegments(
  file: string,
  segs: Segment[],
  params: CdcParams = DEFAULT_CDC,
): Promise<string> {
  const whole = createHash("sha256");
  const order = [...segs].sort((a, b) => a.start - b.start);
  let i = 0;
  let pos = 0;
  let cdc = new FastCdc(params);
  let hash = createHash("sha256");
  let chunkStart = order[0]?.start ?? 0;
  let hashed = 0;
  const close = (s: Segment, end: number) => {
    s.chunks ??= [];
    s.chunks.push({ start: chunkStart, end, digest: `sha256:${hash.digest("hex")}` });
    hash = createHash("sha256");
    chunkStart = end;
    hashed = 0;
  };
  const finishSegment = (s: Segment) => {
    cdc.end();
    if (hashed > 0 || !s.chunks) close(s, s.end);
    if (s.chunks?.length === 1) s.digest = s.chunks[0].digest;
    cdc = new FastCdc(params);
    i++;
    chunkStart = order[i]?.start ?? 0;
  };
  for await (const data of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    const buf = data as Buffer;
    whole.update(buf);
    let off = 0;
    while (i < order.length) {
      const s = order[i];
      const abs = pos + off;
      if (abs < s.start) {
        if (s.start >= pos + buf.length) break;
        off = s.start - pos;
        continue;
      }
      const take = Math.min(buf.length - off, s.end - abs);
      const piece = buf.subarray(off, off + take);
      let o = 0;
      for (const len of cdc.push(piece)) {
        const part = len - hashed;
        hash.update(piece.subarray(o, o + part));
        o += part;
        close(s, chunkStart + len);
      }
      hash.update(piece.subarray(o));
      hashed += piece.length - o;
      off += take;
      if (pos + off >= s.end) finishSegment(s);
      else break;
    }
    pos += buf.length;
  }
  while (i < order.length) finishSegment(order[i]);
  return `sha256:${whole.digest("hex")}`;
}
