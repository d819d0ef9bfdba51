/**
 * `delta create`: writes a delta package holding only what the target lacks.
 *
 * Per layer of the source image (matched by diff_id, never by file name):
 * 1. the target has the diff_id (a base image or inventory lists it) → not shipped ("reused");
 * 2. an earlier layer of the same image has it → shipped once ("duplicate");
 * 3. with a delta method and a base image with bytes: a delta against the most similar base
 *    layer (see similarity.ts), kept only if smaller than the compressed full layer;
 * 4. else the whole layer, compressed with the package codec.
 * The exact config bytes go in too, so the rebuilt image has the identical image ID.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { z } from "zod";
import type { AppendedMember } from "../core/archive/file-writer.js";
import { CODECS, type Codec, checkLevel } from "../core/codec.js";
import { verifyingStream } from "../core/digest.js";
import { inspectImage } from "../core/docker/images.js";
import { DockpackError } from "../core/errors.js";
import { makeTempDir, outputKind, removeTempDir } from "../core/fs.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { ExtractedContainer } from "../image/extract.js";
import type { Image } from "../image/image.js";
import { type OpenImagesOptions, openImages, parseImageRef } from "../image/open.js";
import {
  DELTA_CONFIG_MEMBER,
  DELTA_FORMAT_NAME,
  DELTA_FORMAT_VERSION,
  type DeltaBaseEntry,
  type DeltaLayerEntry,
  type DeltaMetadata,
  tarMemberSize,
} from "./format.js";
import { type LayerInventory, readInventoryIfAny } from "./inventory.js";
import { type DeltaMethod, pickMethod, ZSTD_LONG_THRESHOLD, ZSTD_PATCH_LEVEL } from "./methods.js";
import { type InPlacePackage, metadataReserve, startInPlacePackage } from "./package-in-place.js";
import { writeDeltaPackage } from "./package-writer.js";
import { type ShipContext, shipLayer } from "./ship-layer.js";
import { type BaseCandidate, chooseBase, EarlyPaths, layerPaths, type PathSizes } from "./similarity.js";
import { DOCKPACK_VERSION } from "./version.js";

/** Options of {@link createDelta} (also the MCP tool's input). */
export const CreateDeltaOptionsSchema = z.object({
  image: z
    .string()
    .describe("source image: name:tag, ID, docker-daemon:, docker-archive:, oci:, oci-archive:"),
  output: z.string().describe("path of the delta package to write"),
  bases: z
    .array(z.string())
    .default([])
    .describe("what the target has: images in any form, or inventory files"),
  method: z.enum(["xdelta3", "bsdiff", "zstd", "layer", "auto"]).default("xdelta3"),
  compression: z.enum(CODECS as [Codec, ...Codec[]]).default("zstd"),
  level: z
    .number()
    .int()
    .optional()
    .describe("compression level; default zstd 9 (3 with method layer), others 6"),
  dryRun: z.boolean().default(false).describe("print the plan, write nothing"),
  force: z.boolean().default(false).describe("overwrite an existing package"),
  measureGzip: z
    .boolean()
    .default(false)
    .describe("measure `docker save | gzip` (gzip -6 over every layer, CPU-heavy) for the saving figures"),
});
/** Options of {@link createDelta}. */
export type CreateDeltaOptions = z.input<typeof CreateDeltaOptionsSchema>;

/** Result of {@link createDelta}. */
export interface CreateDeltaResult {
  /** The package path (also set for a dry run: where it would go). */
  output: string;
  dryRun: boolean;
  /** True when sizes are estimates (dry run). */
  estimated: boolean;
  /** Package size in bytes (estimated upper bound for a dry run). */
  packageSize: number;
  metadata: DeltaMetadata;
}

interface Base {
  entry: DeltaBaseEntry;
  image?: Image;
}

/** Changed layers worked on at once. */
const SHIP_CONCURRENCY = 2;

/** Runs `tasks` with at most `limit` at a time; rejects with the first error once all started ones settle. */
async function runPool(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < tasks.length && failure === undefined) {
      const task = tasks[next++];
      await task().catch((e) => {
        failure ??= e;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure !== undefined) throw failure;
}

const DEFAULT_LEVEL: Record<Codec, number> = { zstd: 9, gzip: 6, xz: 6, bzip2: 9, none: 0 };
/**
 * zstd level of `-m layer` unless `-l` says otherwise: 3, the level of `docker save | zstd -T0`,
 * so the package is never larger than that pipeline's output (same bytes at the same level,
 * minus the layers the target has) and costs no more CPU per byte. Level 9 wrote 16 % less on
 * the bench pair (19.4 against 23.2 MiB) for about 4× the CPU (3.2 against 0.6 s on the 64 MiB
 * binary layer).
 */
export const LAYER_ZSTD_LEVEL = 3;

function counter(): { stream: Writable; bytes: () => number } {
  let n = 0;
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        cb();
      },
    }),
    bytes: () => n,
  };
}

/** Streams `input` through gzip -6 and returns the compressed byte count and the input byte count. */
async function gzipSize(input: NodeJS.ReadableStream): Promise<{ gz: number; raw: number }> {
  let raw = 0;
  const count = new Transform({
    transform(chunk: Buffer, _e, cb) {
      raw += chunk.length;
      cb(null, chunk);
    },
  });
  const c = counter();
  await pipeline(input, count, createGzip({ level: 6 }), c.stream);
  return { gz: c.bytes(), raw };
}

/**
 * Opens the source image and the bases together: engine images among them are read with one
 * `docker save`, so the layers they share are saved once. Inventory files become bases without
 * bytes. Returns the source and the bases in the order given.
 */
async function openAll(
  image: string,
  refs: string[],
  reporter: Reporter,
  early: EarlyPaths | undefined,
  needBaseBytes: boolean,
  packLayers: OpenImagesOptions["packLayers"],
  inPlace?: InPlacePackage,
): Promise<{ source: Image; bases: Base[] }> {
  type Kind =
    | { inventory: LayerInventory; raw: string }
    | { engine: Promise<DeltaBaseEntry>; raw: string }
    | { raw: string };
  const kinds: Kind[] = [];
  for (const raw of refs) {
    const parsed = await parseImageRef(raw);
    if (parsed.transport === "docker-daemon") {
      // Without deltas an engine base gives only its diff_ids: inspected (at the same time as
      // the source), never saved.
      kinds.push(needBaseBytes ? { raw } : { raw, engine: inspectedBase(raw, parsed.path) });
      continue;
    }
    const inventory = await readInventoryIfAny(parsed.path);
    kinds.push(inventory ? { inventory, raw } : { raw });
  }
  const engineBases = Promise.all(kinds.map((k) => ("engine" in k ? k.engine : undefined)));
  engineBases.catch(() => undefined); // awaited below, or by the save that needs it
  if (packLayers) {
    // Layers the target has are never shipped: the save need not compress them.
    const have = engineBases.then((entries) => {
      const set = new Set<string>();
      for (const e of entries) for (const d of e?.diffIds ?? []) set.add(d);
      for (const k of kinds) {
        if ("inventory" in k) for (const img of k.inventory.images) for (const d of img.diffIds) set.add(d);
      }
      return set;
    });
    packLayers = { ...packLayers, have };
    if (inPlace) {
      const inventoryEntries = kinds.flatMap((k) =>
        "inventory" in k ? k.inventory.images.map((img) => inventoryBase(k.raw, img)) : [],
      );
      const unknown = kinds.filter((k) => !("inventory" in k) && !("engine" in k)).length;
      packLayers.into = async (layerCount) => {
        const engine = (await engineBases).filter((e) => e !== undefined);
        const bases = [...engine, ...inventoryEntries];
        return inPlace.prepare(metadataReserve(layerCount, bases, unknown, image));
      };
    }
  }
  const imageRefs = kinds.filter((k) => !("inventory" in k) && !("engine" in k)).map((k) => k.raw);
  // A missing base is reported before anything is saved (the packing save awaits `have`).
  if (!packLayers) await engineBases;
  const [source, ...images] = await openImages([image, ...imageRefs], reporter, {
    onMember: early?.onMember,
    // The engine checks each layer against its diff_id as it saves; apply checks every layer
    // it rebuilds (see ship-layer's layerFile).
    hashLayers: false,
    ...(packLayers ? { packLayers } : {}),
  });
  let entries: (DeltaBaseEntry | undefined)[];
  try {
    entries = await engineBases;
  } catch (e) {
    for (const img of [source, ...images]) await img.close();
    throw e;
  }
  const bases: Base[] = [];
  for (const [i, k] of kinds.entries()) {
    if ("inventory" in k) {
      for (const img of k.inventory.images) bases.push({ entry: inventoryBase(k.raw, img) });
      continue;
    }
    if ("engine" in k) {
      bases.push({ entry: entries[i] as DeltaBaseEntry });
      continue;
    }
    const img = images.shift() as Image;
    bases.push({
      image: img,
      entry: {
        ref: k.raw,
        kind: "image",
        id: img.configDigest,
        repoTags: img.repoTags,
        diffIds: img.layers.map((l) => l.diffId),
      },
    });
  }
  return { source, bases };
}

/** The base entry of image `img` of the inventory file `raw`. */
function inventoryBase(raw: string, img: LayerInventory["images"][number]): DeltaBaseEntry {
  return {
    ref: `${raw}#${img.repoTags[0] ?? img.id}`,
    kind: "inventory",
    id: img.id,
    repoTags: img.repoTags,
    diffIds: img.diffIds,
  };
}

/**
 * The base entry of engine image `name` from its inspection (GET /images/{name}/json: ID and
 * `RootFS.Layers`), tagged as `docker save NAME` would tag it. Throws `IMAGE_NOT_FOUND`.
 */
async function inspectedBase(raw: string, name: string): Promise<DeltaBaseEntry> {
  const info = await inspectImage(name);
  const isId = /^(sha256:)?[a-f0-9]{12,64}$/.test(name);
  const tag = name.includes(":") || name.includes("@") ? name : `${name}:latest`;
  return {
    ref: raw,
    kind: "image",
    id: info.Id,
    repoTags: isId ? [] : [tag],
    diffIds: info.RootFS?.Layers ?? [],
  };
}

function baseName(b: DeltaBaseEntry): string {
  return b.repoTags[0] ?? b.id ?? b.ref;
}

/**
 * Creates a delta package (see the module doc). Sizes in bytes.
 * Throws `DELTA_OUTPUT_EXISTS` (without `force`), `IMAGE_NOT_FOUND`, `DIGEST_MISMATCH` (a source
 * layer whose bytes do not match its diff_id), `DELTA_BSDIFF_TOO_LARGE`, `PROGRAM_MISSING`,
 * `CODEC_LEVEL_INVALID`, `ENGINE_UNAVAILABLE`.
 */
export async function createDelta(
  input: CreateDeltaOptions,
  reporter: Reporter = silentReporter(),
): Promise<CreateDeltaResult> {
  const options = CreateDeltaOptionsSchema.parse(input);
  const codec = options.compression;
  const level =
    options.level ??
    (options.method === "layer" && codec === "zstd" ? LAYER_ZSTD_LEVEL : DEFAULT_LEVEL[codec]);
  if (codec !== "none") checkLevel(codec, level);
  else if (options.level !== undefined) {
    throw new DockpackError(
      "CODEC_LEVEL_INVALID",
      `Compression 'none' takes no level (got ${options.level}).`,
      {
        usage: true,
        hint: "Drop -l/--level, or choose a codec (-c zstd|gzip|xz|bzip2).",
        details: { codec, level: options.level },
      },
    );
  }
  const outKind = options.dryRun ? "file" : outputKind(options.output, { allowStdout: true });
  if (
    !options.dryRun &&
    !options.force &&
    outKind === "file" &&
    (await stat(options.output).catch(() => undefined))
  ) {
    throw new DockpackError("DELTA_OUTPUT_EXISTS", `The file '${options.output}' exists.`, {
      hint: "Pass -f/--force to overwrite it, or choose another name.",
    });
  }
  const packing = options.method === "layer" && codec === "zstd" && !options.dryRun && !options.measureGzip;
  // `-m layer` into a file: the package is assembled where it is written (package-in-place.ts).
  const inPlace =
    packing && outKind === "file"
      ? await startInPlacePackage(options.output, options.force).catch((e: unknown) => {
          if ((e as { code?: string }).code !== "FS_EXISTS") throw e;
          throw new DockpackError("DELTA_OUTPUT_EXISTS", `The file '${options.output}' exists.`, {
            hint: "Pass -f/--force to overwrite it, or choose another name.",
          });
        })
      : undefined;
  try {
    return await createWith(options, codec, level, reporter, packing, inPlace);
  } finally {
    await inPlace?.abort();
  }
}

/** The body of {@link createDelta} once the options are checked (`inPlace`: see package-in-place.ts). */
async function createWith(
  options: z.output<typeof CreateDeltaOptionsSchema>,
  codec: Codec,
  level: number,
  reporter: Reporter,
  packing: boolean,
  inPlace: InPlacePackage | undefined,
): Promise<CreateDeltaResult> {
  // Engine layers are indexed (tar headers, for the base-layer choice) while the save streams.
  const early = new EarlyPaths();
  const { source, bases } = await openAll(
    options.image,
    options.bases,
    reporter,
    options.method === "layer" || options.bases.length === 0 ? undefined : early,
    options.method !== "layer",
    // `-m layer` ships whole layers compressed: engine layers are compressed while the save
    // streams, as `docker save | zstd -T0` does (ship-layer then takes them as they are).
    packing ? { level, longAbove: ZSTD_LONG_THRESHOLD } : undefined,
    inPlace,
  );
  reporter.debug(`opened ${options.image} (${source.layers.length} layers) and ${bases.length} base(s)`);
  let tmp: string | undefined;
  try {
    const providers = new Map<string, string[]>();
    for (const b of bases) {
      for (const d of b.entry.diffIds) providers.set(d, [...(providers.get(d) ?? []), baseName(b.entry)]);
    }
    const candidates: BaseCandidate[] = [];
    const candidateImage = new Map<BaseCandidate, { image: Image; index: number }>();
    const wantDelta = options.method !== "layer";
    const pathsCache = new Map<BaseCandidate, Promise<PathSizes>>();
    if (wantDelta) {
      for (const b of bases) {
        if (!b.image) continue;
        const seen = new Set<string>();
        for (const l of b.image.layers) {
          if (seen.has(l.diffId)) continue;
          seen.add(l.diffId);
          const c: BaseCandidate = {
            image: baseName(b.entry),
            diffId: l.diffId,
            size: l.size ?? l.blobSize,
            index: l.index,
            compressed: l.codec !== "none",
            paths: new Map(),
          };
          candidates.push(c);
          candidateImage.set(c, { image: b.image, index: l.index });
        }
      }
    }
    const candidatePaths = (c: BaseCandidate): Promise<PathSizes> => {
      let p = pathsCache.get(c);
      if (!p) {
        const src = candidateImage.get(c);
        p = (
          src
            ? early.get(src.image, src.index).then((known) => known ?? layerPaths(src.image, src.index))
            : Promise.resolve(new Map<string, number>())
        ).then((paths) => {
          c.paths = paths;
          return paths;
        });
        pathsCache.set(c, p);
      }
      return p;
    };
    const hasBytesBase = candidates.length > 0;
    if (wantDelta && !hasBytesBase && bases.some((b) => b.entry.kind === "inventory")) {
      reporter.info(
        "Bases are inventories only: changed layers ship whole. A delta needs the base layer bytes; give the old image with --base IMAGE for deltas.",
      );
    }

    const layers: DeltaLayerEntry[] = new Array(source.layers.length);
    const tasks: (() => Promise<void>)[] = [];
    const firstIndex = new Map<string, number>();
    let gzipTotal = 0;
    const measure = options.measureGzip && !options.dryRun;
    tmp = options.dryRun ? undefined : await makeTempDir("dockpack-delta-create-");
    const members: { index: number; name: string; file: string; inPackage?: AppendedMember }[] = [];
    const baseFiles = new Map<string, Promise<string>>();
    const background: Promise<void>[] = [];
    let backgroundError: unknown;
    const progress = reporter.progress("layers", source.layers.length, "items");
    for (const layer of source.layers) {
      const label = `layer ${layer.index} (${layer.diffId}) of ${options.image}`;
      const known = layer.size;
      const prov = providers.get(layer.diffId);
      if (prov) {
        const entry: DeltaLayerEntry = {
          index: layer.index,
          diffId: layer.diffId,
          size: known ?? 0,
          ship: "reused",
          providers: prov,
          reason: `the target has it (${prov.join(", ")})`,
        };
        if ((measure || known === undefined) && !firstIndex.has(layer.diffId)) {
          // Measured in the background while later layers are worked on.
          background.push(
            (async () => {
              const m = await gzipSize(
                (await source.openLayer(layer.index)).pipe(verifyingStream(layer.diffId, label)),
              );
              if (measure) gzipTotal += m.gz;
              entry.size = m.raw;
            })().catch((e) => {
              backgroundError ??= e;
            }),
          );
        }
        firstIndex.set(layer.diffId, firstIndex.get(layer.diffId) ?? layer.index);
        layers[layer.index] = entry;
        progress.increment(1);
        continue;
      }
      const earlier = firstIndex.get(layer.diffId);
      if (earlier !== undefined) {
        layers[layer.index] = {
          index: layer.index,
          diffId: layer.diffId,
          size: 0, // set from layer `earlier` below
          ship: "duplicate",
          sameAs: earlier,
          reason: `same diff_id as layer ${earlier}`,
        };
        progress.increment(1);
        continue;
      }
      firstIndex.set(layer.diffId, layer.index);
      if (options.dryRun) {
        layers[layer.index] = await planOnly(
          source,
          layer.index,
          codec,
          wantDelta && hasBytesBase ? (options.method as DeltaMethod | "auto") : undefined,
          candidates,
          candidatePaths,
        );
        progress.increment(1);
        continue;
      }
      const ctx: ShipContext = {
        source,
        dir: tmp as string,
        codec,
        level,
        patchLevel: codec === "zstd" && options.level !== undefined ? options.level : ZSTD_PATCH_LEVEL,
        method: options.method,
        candidates: wantDelta ? candidates : [],
        candidatePaths,
        candidateImage,
        inventoriesOnly: bases.length > 0 && bases.every((b) => b.entry.kind === "inventory"),
        measureGzip: async (file) => (measure ? (await gzipSize(createReadStream(file))).gz : 0),
        reporter,
        label,
        baseFiles,
        early,
      };
      tasks.push(async () => {
        const shipped = await shipLayer(ctx, layer.index);
        gzipTotal += shipped.gzip;
        members.push({
          index: layer.index,
          name: shipped.entry.member as string,
          file: shipped.memberFile,
          ...(shipped.inPackage ? { inPackage: shipped.inPackage } : {}),
        });
        layers[layer.index] = shipped.entry;
        progress.increment(1);
      });
    }
    // Two layers at a time: the delta tools are single-threaded and the machine has cores to spare.
    await runPool(tasks, SHIP_CONCURRENCY);
    members.sort((a, b) => a.index - b.index);
    for (const l of layers) if (l.ship === "duplicate") l.size = layers[l.sameAs as number].size;
    await Promise.all(background);
    if (backgroundError) throw backgroundError;
    progress.stop();
    const uniq = new Map(layers.map((l) => [l.diffId, l.size]));
    const imageSize = [...uniq.values()].reduce((a, b) => a + b, 0) + source.config.length;
    const dockerSaveSize =
      [...uniq.values()].reduce((a, s) => a + tarMemberSize(s) + 3 * 512 + tarMemberSize(1500), 0) +
      tarMemberSize(source.config.length) +
      tarMemberSize(200 + 80 * layers.length) +
      1024;
    const membersSize = layers.reduce((a, l) => a + (l.memberSize ?? 0), 0) + source.config.length;
    const metadata: DeltaMetadata = {
      format: DELTA_FORMAT_NAME,
      formatVersion: DELTA_FORMAT_VERSION,
      dockpackVersion: DOCKPACK_VERSION,
      created: new Date().toISOString(),
      source: {
        ref: options.image,
        format: source.format,
        id: source.configDigest,
        repoTags: source.repoTags,
        os: source.configJson.os,
        architecture: source.configJson.architecture,
      },
      bases: bases.map((b) => b.entry),
      method: options.method,
      compression: codec,
      ...(codec === "none" ? {} : { level }),
      config: { member: DELTA_CONFIG_MEMBER, digest: source.configDigest, size: source.config.length },
      layers,
      totals: {
        imageSize,
        dockerSaveSize,
        ...(measure ? { dockerSaveGzipSize: gzipTotal + 1024 } : {}),
        membersSize,
      },
    };
    if (options.dryRun) {
      const packageSize =
        layers.reduce((a, l) => a + (l.memberSize ? tarMemberSize(l.memberSize) : 0), 0) +
        tarMemberSize(source.config.length) +
        tarMemberSize(8192) +
        1024;
      return { output: options.output, dryRun: true, estimated: true, packageSize, metadata };
    }
    let packageSize: number | undefined;
    if (inPlace?.prepared()) {
      const c = source.container;
      const appended = c instanceof ExtractedContainer ? c.appended() : [];
      packageSize = await inPlace.finish(metadata, source.config, members, appended);
      if (packageSize === undefined)
        reporter.debug(
          "the metadata outgrew its room, or a compressed layer is not shipped: writing the package again",
        );
    }
    packageSize ??= await writeDeltaPackage(
      options.output,
      metadata,
      source.config,
      members.map((m) =>
        m.inPackage ? { name: m.name, file: m.file, start: m.inPackage.start, size: m.inPackage.size } : m,
      ),
      options.force,
    );
    return { output: options.output, dryRun: false, estimated: false, packageSize, metadata };
  } finally {
    await source.close();
    for (const b of bases) await b.image?.close();
    if (tmp) await removeTempDir(tmp);
  }
}

/**
 * Dry-run plan for one shipped layer, never decompressing: the member size is an upper bound
 * (the stored blob size, or the uncompressed size), and the base is chosen from tar headers only
 * when both layers are stored uncompressed; the method is picked as create would ({@link pickMethod}).
 */
async function planOnly(
  source: Image,
  index: number,
  codec: Codec,
  delta: DeltaMethod | "auto" | undefined,
  candidates: BaseCandidate[],
  candidatePaths: (c: BaseCandidate) => Promise<PathSizes>,
): Promise<DeltaLayerEntry> {
  const layer = source.layers[index];
  const size = layer.size ?? layer.blobSize;
  const upper = layer.codec !== "none" ? layer.blobSize : size;
  const entry: DeltaLayerEntry = {
    index,
    diffId: layer.diffId,
    size,
    ship: "full",
    memberSize: upper,
    codec,
    reason: "estimate: upper bound (stored size)",
  };
  if (delta && layer.codec === "none") {
    const uncompressed = candidates.filter((c) => !c.compressed);
    for (const c of uncompressed) await candidatePaths(c);
    const choice = chooseBase(await layerPaths(source, index), size, index, uncompressed);
    const pick = choice && pickMethod(delta, choice.candidate.size, size, choice.score);
    if (choice && pick?.method) {
      entry.reason = `estimate: delta likely (${pick.method}), ${choice.reason}; size known only after creating`;
      entry.base = {
        diffId: choice.candidate.diffId,
        size: choice.candidate.size,
        image: choice.candidate.image,
      };
    }
    if (pick?.reason) entry.methodReason = pick.reason;
  }
  return entry;
}
