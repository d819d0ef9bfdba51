/**
 * Shipping one changed layer: the whole layer compressed, and (with a delta method and base
 * layers with bytes) a delta against the most similar base layer, computed at the same time on
 * the other core; the delta is kept only if smaller than the compressed whole layer.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { AppendedMember } from "../core/archive/file-writer.js";
import { CODEC_EXTENSION, type Codec, compressStream } from "../core/codec.js";
import { digestFile, verifyingStream } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import type { Reporter } from "../core/output.js";
import { ExtractedContainer } from "../image/extract.js";
import type { Image } from "../image/image.js";
import type { DeltaLayerEntry } from "./format.js";
import { type DeltaMethod, encodeDelta, pickMethod, ZSTD_LONG_THRESHOLD } from "./methods.js";
import {
  type BaseCandidate,
  type BaseChoice,
  chooseBase,
  type EarlyPaths,
  filePaths,
  type PathSizes,
} from "./similarity.js";

/** What {@link shipLayer} needs besides the layer. */
export interface ShipContext {
  source: Image;
  /** Work directory (temporary). */
  dir: string;
  codec: Codec;
  level: number;
  /** zstd level of `--patch-from` patches. */
  patchLevel: number;
  method: "xdelta3" | "bsdiff" | "zstd" | "layer" | "auto";
  /** Base layers with bytes; empty when there are none. */
  candidates: BaseCandidate[];
  candidatePaths: (c: BaseCandidate) => Promise<PathSizes>;
  candidateImage: Map<BaseCandidate, { image: Image; index: number }>;
  /** True when the bases are inventories only. */
  inventoriesOnly: boolean;
  /** Measure the gzip -6 size of the layer (for the `docker save | gzip` figure). */
  measureGzip: (file: string) => Promise<number>;
  reporter: Reporter;
  label: string;
  /** Base layers extracted to files so far, by diff_id (shared by layers worked on at once). */
  baseFiles: Map<string, Promise<string>>;
  /** Layer paths indexed while the engine's save streamed. */
  early: EarlyPaths;
}

/**
 * Result of {@link shipLayer}: the metadata row, the member's temp file, the gzip size (0 when
 * not measured); `inPackage` when the member's bytes are already in the package being written
 * (image/save-unpack's `into`; `memberFile` is then that package).
 */
export interface ShippedLayer {
  entry: DeltaLayerEntry;
  memberFile: string;
  gzip: number;
  inPackage?: AppendedMember;
}

interface DeltaTry {
  method: DeltaMethod;
  file: string;
  size: number;
  codec: Codec;
  params: object;
  choice: BaseChoice;
  oldSize: number;
  /** Why this method (auto's choice, bsdiff's fallback). */
  methodReason?: string;
}

/**
 * The uncompressed bytes of layer `index` of `image` as a file, checked against `diffId`
 * (`DIGEST_MISMATCH` naming `label`). A layer already stored as a whole uncompressed file
 * (an engine image unpacked by {@link ExtractedContainer}, an OCI layout directory) is used in
 * place — its sha256 taken from the unpacking when known, else read once — and `temp` is false;
 * any other layer is streamed into `copy` (a temp file the caller removes), `temp` true.
 * An engine image unpacked without hashing (`hashLayers: false`) is not hashed here either:
 * the engine checked the layer against its diff_id while saving, and `delta apply` checks
 * every layer it rebuilds, so a wrong byte can only make apply refuse the package.
 */
export async function layerFile(
  image: Image,
  index: number,
  diffId: string,
  label: string,
  copy: string,
): Promise<{ file: string; size: number; temp: boolean }> {
  const layer = image.layers[index];
  if (layer.codec === "none") {
    const r = await image.container.range(layer.blob);
    if (r.start === 0 && r.size > 0 && (await stat(r.file)).size === r.size) {
      if (engineVerified(image)) {
        return { file: r.file, size: r.size, temp: false };
      }
      const actual =
        (image.container instanceof ExtractedContainer ? image.container.digest(layer.blob) : undefined) ??
        (await digestFile(r.file)).digest;
      if (actual !== diffId) {
        throw new DockpackError("DIGEST_MISMATCH", `${label}: expected ${diffId}, got ${actual}`, {
          hint: "The data is corrupt or was changed; fetch or export it again.",
          details: { label, expected: diffId, actual, size: r.size },
        });
      }
      return { file: r.file, size: r.size, temp: false };
    }
  }
  await pipeline(await image.openLayer(index), verifyingStream(diffId, label), createWriteStream(copy));
  return { file: copy, size: (await stat(copy)).size, temp: true };
}

/** True for an engine image unpacked without hashing (see {@link layerFile}). */
function engineVerified(image: Image): boolean {
  return image.container instanceof ExtractedContainer && !image.container.hashed;
}

/**
 * Layer `index` of `image` as the engine's save left it when it is already the member `-m layer`
 * writes: compressed on the way in (image/open's `packLayers`) with `codec` at `level`, with
 * `--long=27` exactly when a whole layer gets it here, and not hashed (see {@link layerFile}).
 * Returns the file, its size and the uncompressed size in bytes; undefined otherwise.
 */
async function packedLayer(
  image: Image,
  index: number,
  codec: Codec,
  level: number,
): Promise<
  | {
      file: string;
      memberSize: number;
      size: number;
      stored?: { digest: string; size: number };
      inPackage?: AppendedMember;
    }
  | undefined
> {
  const layer = image.layers[index];
  const c = image.container;
  const p = c instanceof ExtractedContainer && !c.hashed ? c.packed(layer.blob) : undefined;
  if (!p || p.codec !== codec || p.level !== level || p.long !== p.size > ZSTD_LONG_THRESHOLD)
    return undefined;
  if (p.inPackage) {
    // Always hashed by the unpacker; without a digest the layer is read and compressed again.
    if (!p.stored) return undefined;
    const { file, size, member } = p.inPackage;
    return { file, memberSize: size, size: p.size, stored: p.stored, inPackage: member };
  }
  const r = await c.range(layer.blob);
  return r.start === 0 ? { file: r.file, memberSize: r.size, size: p.size, stored: p.stored } : undefined;
}

async function tryDelta(
  ctx: ShipContext,
  index: number,
  newFile: string,
  size: number,
): Promise<DeltaTry | { skipped: string } | undefined> {
  const [newPaths] = await Promise.all([
    ctx.early.get(ctx.source, index).then((known) => known ?? filePaths(newFile)),
    ...ctx.candidates.map((c) => ctx.candidatePaths(c)),
  ]);
  const choice = chooseBase(newPaths, size, index, ctx.candidates);
  if (!choice) return undefined;
  const src = ctx.candidateImage.get(choice.candidate) as { image: Image; index: number };
  let pending = ctx.baseFiles.get(choice.candidate.diffId);
  if (!pending) {
    pending = layerFile(
      src.image,
      src.index,
      choice.candidate.diffId,
      `base layer ${choice.candidate.diffId} of ${choice.candidate.image}`,
      join(ctx.dir, `base-${choice.candidate.diffId.slice(7)}.tar`),
    ).then((f) => f.file);
    ctx.baseFiles.set(choice.candidate.diffId, pending);
  }
  const oldFile = await pending;
  const oldSize = (await stat(oldFile)).size;
  ctx.reporter.debug(`${ctx.label}: base layer ${choice.candidate.diffId} ready (${oldSize} bytes)`);
  const pick = pickMethod(ctx.method as DeltaMethod | "auto", oldSize, size, choice.score);
  if (pick.reason) ctx.reporter.debug(`${ctx.label}: ${pick.reason}`);
  if (!pick.method) return { skipped: pick.reason as string };
  const m = pick.method;
  const patch = join(ctx.dir, `patch-${index}.${m}`);
  const compressPatch = m === "xdelta3" && ctx.codec !== "none";
  const params = await encodeDelta(m, oldFile, oldSize, newFile, size, patch, ctx.patchLevel, compressPatch);
  let file = patch;
  let memberCodec: Codec = "none";
  if (compressPatch) {
    file = `${patch}${CODEC_EXTENSION[ctx.codec]}`;
    await pipeline(
      createReadStream(patch),
      compressStream(ctx.codec, { level: ctx.level }),
      createWriteStream(file),
    );
    await rm(patch);
    memberCodec = ctx.codec;
  }
  const psize = (await stat(file)).size;
  ctx.reporter.debug(`${ctx.label}: ${m} delta ${psize} bytes`);
  const best: DeltaTry = { method: m, file, size: psize, codec: memberCodec, params, choice, oldSize };
  if (pick.reason) best.methodReason = pick.reason;
  return best;
}

/** Thrown inside the compression pipeline to stop it once it passed its bound. */
class BoundReached extends Error {}

/**
 * Compresses `input` into `output`; with `bound`, stops as soon as the output exceeds `bound`
 * bytes (the file is then removed). Returns the bytes written and whether it ran to the end.
 */
async function compressBounded(
  input: string,
  output: string,
  codec: Codec,
  level: number,
  long: boolean,
  bound: number | undefined,
): Promise<{ size: number; complete: boolean }> {
  let written = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      if (bound !== undefined && written > bound) cb(new BoundReached());
      else cb(null, chunk);
    },
  });
  try {
    await pipeline(
      createReadStream(input),
      // Bounded: one thread (zstd --single-thread), whose output comes block by block, so the
      // stop comes after about `bound` bytes out; -T0 and -T1 emit nothing before a whole job
      // (tens of MiB: on the bench pair -T1 took in 26-28 MiB per layer before the bound, 1-6 MiB now).
      compressStream(codec, { level, long, ...(bound !== undefined ? { threads: 1 } : {}) }),
      count,
      createWriteStream(output),
    );
    return { size: written, complete: true };
  } catch (e) {
    if (!(e instanceof BoundReached)) throw e;
    await rm(output, { force: true });
    return { size: bound as number, complete: false };
  }
}

/**
 * Ships layer `index` of `ctx.source`: takes it as a file checked against its diff_id
 * ({@link layerFile}: in place when stored whole and uncompressed, else a temp copy;
 * `DIGEST_MISMATCH` naming the layer), then tries the delta and compresses it whole.
 */
export async function shipLayer(ctx: ShipContext, index: number): Promise<ShippedLayer> {
  const layer = ctx.source.layers[index];
  const hex12 = layer.diffId.slice(7, 19);
  const prefix = `layers/${String(index).padStart(3, "0")}-${hex12}`;
  const packed =
    ctx.method === "layer" ? await packedLayer(ctx.source, index, ctx.codec, ctx.level) : undefined;
  if (packed) {
    // Compressed while the save streamed: the member as it is, no second pass.
    const entry: DeltaLayerEntry = {
      index,
      diffId: layer.diffId,
      size: packed.size,
      ship: "full",
      member: `${prefix}.full.tar${CODEC_EXTENSION[ctx.codec]}`,
      codec: ctx.codec,
      fullSize: packed.memberSize,
      reason: LAYER_ONLY,
    };
    const shipped = await finish(ctx, entry, packed.file, 0, packed.stored);
    return packed.inPackage ? { ...shipped, inPackage: packed.inPackage } : shipped;
  }
  const got = await layerFile(ctx.source, index, layer.diffId, ctx.label, join(ctx.dir, `new-${index}.tar`));
  const newFile = got.file;
  const size = got.size;
  const fullFile = join(ctx.dir, `full-${index}`);
  const deltaWanted = ctx.method !== "layer" && ctx.candidates.length > 0;
  const gzipPending = ctx.measureGzip(newFile);
  gzipPending.catch(() => undefined); // awaited below; do not let an early failure go unhandled
  const tried = deltaWanted ? await tryDelta(ctx, index, newFile, size) : undefined;
  const delta = tried && "file" in tried ? tried : undefined;
  // The whole layer is compressed only as far as needed to know the delta is smaller.
  const full = await compressBounded(
    newFile,
    fullFile,
    ctx.codec,
    ctx.level,
    size > ZSTD_LONG_THRESHOLD,
    delta?.size,
  );
  const gzip = await gzipPending;
  if (got.temp) await rm(newFile, { force: true });
  const fullSize = full.size;
  let entry: DeltaLayerEntry;
  let memberFile: string;
  if (delta && (!full.complete || delta.size < fullSize)) {
    await rm(fullFile, { force: true });
    memberFile = delta.file;
    entry = {
      index,
      diffId: layer.diffId,
      size,
      ship: "delta",
      method: delta.method,
      params: delta.params,
      base: {
        diffId: delta.choice.candidate.diffId,
        size: delta.oldSize,
        image: delta.choice.candidate.image,
      },
      member: `${prefix}.${delta.method}${CODEC_EXTENSION[delta.codec]}`,
      codec: delta.codec,
      ...(full.complete ? { fullSize } : { fullSizeAbove: fullSize }),
      reason: delta.choice.reason,
      ...(delta.methodReason ? { methodReason: delta.methodReason } : {}),
    };
  } else {
    if (delta) await rm(delta.file, { force: true });
    memberFile = fullFile;
    const reason =
      ctx.method === "layer"
        ? LAYER_ONLY
        : ctx.candidates.length === 0
          ? ctx.inventoriesOnly
            ? "no base image with layer bytes (inventories carry none)"
            : "no base image given"
          : delta
            ? `the ${delta.method} delta (${delta.size} bytes) is not smaller than the compressed layer (${fullSize} bytes)`
            : tried && "skipped" in tried
              ? tried.skipped
              : "no base layer shares a file path with it";
    entry = {
      index,
      diffId: layer.diffId,
      size,
      ship: "full",
      member: `${prefix}.full.tar${CODEC_EXTENSION[ctx.codec]}`,
      codec: ctx.codec,
      fullSize,
      reason,
      ...(delta?.methodReason ? { methodReason: delta.methodReason } : {}),
    };
  }
  return finish(ctx, entry, memberFile, gzip);
}

const LAYER_ONLY = "method layer: whole layers only";

/**
 * Sets the member's size and digest on `entry` (`known` when the unpacker hashed the member as
 * it wrote it, else reading `memberFile` once) and returns the shipped layer.
 */
async function finish(
  ctx: ShipContext,
  entry: DeltaLayerEntry,
  memberFile: string,
  gzip: number,
  known?: { digest: string; size: number },
): Promise<ShippedLayer> {
  const d = known ?? (await digestFile(memberFile));
  entry.memberSize = d.size;
  entry.memberDigest = d.digest;
  ctx.reporter.debug(
    `${ctx.label}: ${entry.ship} (${entry.reason}), ${d.size} bytes; whole layer ${entry.fullSize ?? entry.fullSizeAbove} bytes`,
  );
  return { entry, memberFile, gzip };
}
