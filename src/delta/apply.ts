/**
 * `delta apply`: rebuilds the exact image from a delta package and the layers the target has.
 *
 * Order of work, so nothing half-made reaches the engine or the disk:
 * 1. read the metadata; check the config bytes against their digest and the layer list;
 * 2. find every needed base layer (reused layers and delta bases) in `--base-archive` files,
 *    else in the engine's images — missing ones fail with `DELTA_BASE_MISSING` listing them;
 * 3. check every package member's digest, then rebuild every layer into a temporary directory
 *    and check sha256 == diff_id for each;
 * 4. only then load into the engine, or write a docker-archive atomically (`output`).
 */
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { capBytes, decompressStream } from "../core/codec.js";
import { digestFile, digestStream, sha256Hex, verifyingStream } from "../core/digest.js";
import { inspectImage, loadImage } from "../core/docker/images.js";
import { DockpackError } from "../core/errors.js";
import {
  createAtomicWriteStream,
  ensureFreeSpace,
  makeTempDir,
  outputKind,
  removeTempDir,
} from "../core/fs.js";
import { type Reporter, silentReporter } from "../core/output.js";
import type { Image } from "../image/image.js";
import { openImage, openImages } from "../image/open.js";
import { type ArchiveLayout, writeImageTar } from "../image/write.js";
import { findInEngine } from "./engine-bases.js";
import {
  DELTA_CONFIG_MEMBER,
  type DeltaLayerEntry,
  type DeltaMetadata,
  isValidRepoTag,
  openDeltaPackage,
} from "./format.js";
import { decodeDelta, unexpectedParams, ZSTD_LONG_THRESHOLD } from "./methods.js";

/**
 * Most bytes a decompressed patch may take for a layer of `size` bytes: a patch never needs
 * more than the layer itself plus its framing (VCDIFF, zstd, bsdiff headers), so size + 1/64 + 1 MiB.
 */
export function patchLimit(size: number): number {
  return size + Math.ceil(size / 64) + 1024 * 1024;
}

/** Options of {@link applyDelta} (also the MCP tool's input). */
export const ApplyDeltaOptionsSchema = z.object({
  package: z.string().describe("the delta package file"),
  imageName: z
    .string()
    .optional()
    .describe("tag the rebuilt image with this name (default: the original tags)"),
  baseArchives: z
    .array(z.string())
    .default([])
    .describe("images holding base layers: docker-archive/oci/oci-archive files"),
  output: z.string().optional().describe("write a docker-archive here instead of loading into the engine"),
  format: z
    .enum(["docker-archive", "docker-archive-oci", "oci-archive"])
    .default("docker-archive")
    .describe("layout of --output"),
  force: z.boolean().default(false).describe("overwrite an existing output file or image tag"),
  dryRun: z
    .boolean()
    .default(false)
    .describe("check the package, its members and that every base layer is found; rebuild and write nothing"),
  noEngine: z
    .boolean()
    .default(false)
    .describe("never read base layers from the Docker Engine (only --base-archive files)"),
});
/** Options of {@link applyDelta}. */
export type ApplyDeltaOptions = z.input<typeof ApplyDeltaOptionsSchema>;

/** Result of {@link applyDelta}. Sizes in bytes. */
export interface ApplyDeltaResult {
  /** Image ID of the rebuilt image (sha256 of its config); equals the source image's ID. */
  imageId: string;
  tags: string[];
  /** The docker-archive written, or undefined when loaded into the engine. */
  output?: string;
  loaded: boolean;
  layers: { total: number; fromBase: number; fromDelta: number; fromFull: number };
  /** Where base layers came from (archives or engine images). */
  baseSources: string[];
  imageSize: number;
  /** True for a dry run: everything was checked, nothing rebuilt, loaded or written. */
  dryRun?: boolean;
}

function normalizeTag(t: string): string {
  const last = t.slice(t.lastIndexOf("/") + 1);
  return last.includes(":") ? t : `${t}:latest`;
}

/**
 * Applies a delta package (see the module doc). Throws `DELTA_PACKAGE_*`, `DELTA_FORMAT_UNSUPPORTED`,
 * `DELTA_CONFIG_MISMATCH`, `DELTA_BASE_MISSING`, `DIGEST_MISMATCH` (a corrupted member or a
 * rebuilt layer that does not match its diff_id, naming the layer), `DELTA_OUTPUT_EXISTS`,
 * `DELTA_TAG_EXISTS`, `ENGINE_UNAVAILABLE` (only when the engine is needed).
 */
export async function applyDelta(
  input: ApplyDeltaOptions,
  reporter: Reporter = silentReporter(),
): Promise<ApplyDeltaResult> {
  const options = ApplyDeltaOptionsSchema.parse(input);
  const pkg = await openDeltaPackage(options.package);
  const md = pkg.metadata;
  const config = await pkg.container.read(DELTA_CONFIG_MEMBER);
  const configDigest = `sha256:${sha256Hex(config)}`;
  if (configDigest !== md.config.digest) {
    throw new DockpackError(
      "DELTA_CONFIG_MISMATCH",
      `${options.package}: the image config has digest ${configDigest}, the metadata says ${md.config.digest}.`,
      { hint: "The package is corrupted; copy it again." },
    );
  }
  let configIds: unknown;
  try {
    configIds = (JSON.parse(config.toString("utf8")) as { rootfs?: { diff_ids?: unknown } })?.rootfs
      ?.diff_ids;
  } catch {
    configIds = undefined;
  }
  if (!Array.isArray(configIds) || configIds.join() !== md.layers.map((l) => l.diffId).join()) {
    throw new DockpackError(
      "DELTA_PACKAGE_INVALID",
      `${options.package}: the layer list does not match the config's rootfs.diff_ids.`,
    );
  }
  const tags = options.imageName ? [normalizeTag(options.imageName)] : md.source.repoTags;
  if (options.imageName && !isValidRepoTag(tags[0])) {
    throw new DockpackError("DELTA_TAG_INVALID", `'${options.imageName}' is not a valid image name[:tag].`, {
      usage: true,
      hint: "Use a lowercase name such as example/app:2 (the tag: letters, digits, '_', '.', '-').",
    });
  }
  const outKind = options.output ? outputKind(options.output, { allowStdout: true }) : undefined;
  if (
    options.output &&
    !options.force &&
    outKind === "file" &&
    (await stat(options.output).catch(() => undefined))
  ) {
    throw new DockpackError("DELTA_OUTPUT_EXISTS", `The file '${options.output}' exists.`, {
      hint: "Pass -f/--force to overwrite it, or choose another name.",
    });
  }
  if (!options.output && !options.force) await checkTags(tags, md.source.id);

  const needed = new Set<string>();
  for (const l of md.layers) {
    if (l.ship === "reused") needed.add(l.diffId);
    if (l.ship === "delta" && l.base) needed.add(l.base.diffId);
  }
  const opened: Image[] = [];
  const sources = new Map<string, { image: Image; index: number }>();
  let tmp: string | undefined;
  try {
    const addSource = (image: Image) => {
      opened.push(image);
      for (const l of image.layers)
        if (!sources.has(l.diffId)) sources.set(l.diffId, { image, index: l.index });
    };
    for (const ref of options.baseArchives) addSource(await openImage(ref, reporter));
    let missing = [...needed].filter((d) => !sources.has(d));
    if (missing.length > 0 && !options.noEngine) {
      const refs = await findInEngine(missing, md).catch((e) => {
        if ((e as { code?: string }).code === "ENGINE_UNAVAILABLE" && options.output) return [];
        throw e;
      });
      if (refs.length > 0) {
        const names = refs.map((r) => r.name).join(", ");
        // With explicit base archives, a fall-back to the engine is said out loud (A9).
        if (options.baseArchives.length > 0)
          reporter.warn(
            `${missing.length} base layer(s) are not in the given --base-archive files; reading them from the engine: ${names} (pass --no-engine to forbid this).`,
          );
        else reporter.info(`Reading base layers from the engine: ${names}`);
        for (const image of await openImages(
          refs.map((r) => `docker-daemon:${r.id}`),
          reporter,
        ))
          addSource(image);
      }
      missing = [...needed].filter((d) => !sources.has(d));
    }
    if (missing.length > 0) throw baseMissing(missing, md, options.noEngine);

    // Check every member's digest before rebuilding anything.
    for (const l of md.layers) {
      if (!l.member) continue;
      const got = await digestStream(await pkg.container.open(l.member));
      if (got.digest !== l.memberDigest || got.size !== l.memberSize) {
        throw new DockpackError(
          "DIGEST_MISMATCH",
          `${options.package}: member ${l.member} of layer ${l.index} (${l.diffId}) is corrupted: expected ${l.memberDigest}, got ${got.digest}.`,
          { hint: "The package is corrupted; copy it again." },
        );
      }
    }

    if (options.dryRun) {
      const distinct = new Map(md.layers.map((l) => [l.diffId, l.size]));
      return {
        imageId: configDigest,
        tags,
        loaded: false,
        layers: {
          total: md.layers.length,
          fromBase: md.layers.filter((l) => l.ship === "reused").length,
          fromDelta: md.layers.filter((l) => l.ship === "delta").length,
          fromFull: md.layers.filter((l) => l.ship === "full").length,
        },
        baseSources: opened.map((i) => i.ref),
        imageSize: [...distinct.values()].reduce((a, b) => a + b, 0),
        ...(options.output ? { output: options.output } : {}),
        dryRun: true,
      };
    }
    const work: string = await makeTempDir("dockpack-delta-apply-");
    tmp = work;
    const rebuilt = md.layers.filter((l) => l.ship === "full" || l.ship === "delta");
    await ensureFreeSpace(
      work,
      rebuilt.reduce((a, l) => a + l.size + (l.base?.size ?? 0), 0),
      "the rebuilt layers",
    );
    if (options.output && outKind === "file") {
      const total = [...new Map(md.layers.map((l) => [l.diffId, l.size])).values()].reduce(
        (a, b) => a + b,
        0,
      );
      await ensureFreeSpace(dirname(resolve(options.output)), total, options.output);
    }
    // The sizes the metadata declares for the layers read from bases: a base stops there.
    const declaredSize = new Map<string, number>();
    for (const l of md.layers) {
      if (l.ship === "reused") declaredSize.set(l.diffId, l.size);
      if (l.ship === "delta" && l.base) declaredSize.set(l.base.diffId, l.base.size);
    }
    const files = new Map<string, string>();
    const counts = { total: md.layers.length, fromBase: 0, fromDelta: 0, fromFull: 0 };
    const progress = reporter.progress("rebuild layers", md.layers.length, "items");
    const baseFile = async (diffId: string): Promise<string> => {
      const have = files.get(diffId);
      if (have) return have;
      const src = sources.get(diffId) as { image: Image; index: number };
      const file = join(work, `${diffId.slice(7)}.tar`);
      const label = `base layer ${diffId} from ${src.image.ref}`;
      await pipeline(
        await src.image.openLayer(src.index),
        capBytes(declaredSize.get(diffId) ?? Number.MAX_SAFE_INTEGER, label),
        verifyingStream(diffId, label),
        createWriteStream(file),
      );
      files.set(diffId, file);
      return file;
    };
    // Uncompressed base layers are checked where they are and streamed from there later.
    const inPlace = new Map<string, { size: number; open: () => Promise<Readable> }>();
    const checkInPlace = async (diffId: string): Promise<boolean> => {
      const src = sources.get(diffId) as { image: Image; index: number };
      const layer = src.image.layers[src.index];
      if (layer.codec !== "none" || layer.size === undefined) return false;
      const got = await digestStream(await src.image.openLayer(src.index));
      if (got.digest !== diffId) {
        throw new DockpackError(
          "DIGEST_MISMATCH",
          `base layer ${diffId} from ${src.image.ref}: expected ${diffId}, got ${got.digest}.`,
          { hint: "The base image's layer does not match its diff_id; it is corrupted." },
        );
      }
      inPlace.set(diffId, { size: got.size, open: () => src.image.openLayer(src.index) });
      return true;
    };
    for (const l of md.layers) {
      if (l.ship === "duplicate" || files.has(l.diffId) || inPlace.has(l.diffId)) {
        progress.increment(1);
        continue;
      }
      if (l.ship === "reused") {
        if (!(await checkInPlace(l.diffId))) await baseFile(l.diffId);
        counts.fromBase++;
      } else {
        await rebuildLayer(l, pkg.container, work, files, baseFile, options.package);
        if (l.ship === "delta") counts.fromDelta++;
        else counts.fromFull++;
      }
      progress.increment(1);
    }
    progress.stop();

    const layers = await Promise.all(
      md.layers.map(async (l) => {
        const here = inPlace.get(l.diffId);
        if (here && !files.has(l.diffId)) return { diffId: l.diffId, ...here };
        const file = files.get(l.diffId) as string;
        return {
          diffId: l.diffId,
          size: (await stat(file)).size,
          open: async (): Promise<Readable> => createReadStream(file),
        };
      }),
    );
    const imageInput = { config, repoTags: tags, layers };
    const imageSize = [...new Set(layers.map((l) => l.diffId))].reduce(
      (a, d) => a + (layers.find((x) => x.diffId === d)?.size ?? 0),
      0,
    );
    const result: ApplyDeltaResult = {
      imageId: configDigest,
      tags,
      loaded: false,
      layers: counts,
      baseSources: opened.map((i) => i.ref),
      imageSize,
    };
    if (options.output) {
      const out = createAtomicWriteStream(options.output, { overwrite: options.force, allowStdout: true });
      try {
        await writeImageTar(imageInput, out.stream, options.format as ArchiveLayout);
        await out.commit();
      } catch (e) {
        await out.abort();
        throw e;
      }
      result.output = options.output;
      return result;
    }
    const pass = new PassThrough();
    const [, loadResult] = await Promise.all([
      writeImageTar(imageInput, pass, "docker-archive"),
      loadImage(pass),
    ]);
    reporter.debug(`docker load: ${loadResult.loaded.join(", ")}`);
    const loadedInfo = await inspectImage(configDigest);
    if (loadedInfo.Id !== configDigest) {
      throw new DockpackError(
        "DELTA_LOAD_MISMATCH",
        `The engine loaded ${loadedInfo.Id}, expected ${configDigest}.`,
      );
    }
    result.loaded = true;
    return result;
  } finally {
    for (const i of opened) await i.close();
    if (tmp) await removeTempDir(tmp);
  }
}

async function rebuildLayer(
  l: DeltaLayerEntry,
  container: Awaited<ReturnType<typeof openDeltaPackage>>["container"],
  tmp: string,
  files: Map<string, string>,
  baseFile: (diffId: string) => Promise<string>,
  pkgPath: string,
): Promise<void> {
  const member = l.member as string;
  const codec = l.codec ?? "none";
  const label = `layer ${l.index} (${l.diffId}) rebuilt from ${pkgPath}`;
  const file = join(tmp, `${l.diffId.slice(7)}.tar`);
  // Every decompression stops at the size the metadata declares (bombs never reach the disk).
  const decoded = async (maxBytes: number): Promise<Readable[]> => {
    const raw = await container.open(member);
    const memberLabel = `${pkgPath}: member ${member} of layer ${l.index} (${l.diffId})`;
    return [
      raw,
      decompressStream(codec, { long: l.size > ZSTD_LONG_THRESHOLD, maxBytes, label: memberLabel }),
    ];
  };
  if (l.ship === "full") {
    await pipeline([...(await decoded(l.size)), verifyingStream(l.diffId, label), createWriteStream(file)]);
  } else {
    if (!l.method || !l.base)
      throw new DockpackError(
        "DELTA_PACKAGE_INVALID",
        `${pkgPath}: layer ${l.index} is a delta without method or base.`,
      );
    const params = l.params ?? {};
    const odd = unexpectedParams(l.method, params, l.base.size, l.size);
    if (odd) {
      throw new DockpackError(
        "DELTA_PACKAGE_INVALID",
        `${pkgPath}: layer ${l.index} (${l.diffId}) records ${odd}.`,
        {
          hint: "The package is corrupted or forged; create it again.",
        },
      );
    }
    const old = await baseFile(l.base.diffId);
    const oldSize = (await stat(old)).size;
    if (oldSize !== l.base.size) {
      throw new DockpackError(
        "DELTA_PACKAGE_INVALID",
        `${pkgPath}: layer ${l.index} declares a base layer of ${l.base.size} bytes; ${l.base.diffId} has ${oldSize}.`,
        { hint: "The package is corrupted or forged; create it again." },
      );
    }
    const patch = join(tmp, `patch-${l.index}`);
    await pipeline([...(await decoded(patchLimit(l.size))), createWriteStream(patch)]);
    await decodeDelta(l.method, old, patch, file, params, l.size, label);
    const got = await digestFile(file);
    if (got.digest !== l.diffId) {
      throw new DockpackError(
        "DIGEST_MISMATCH",
        `${label}: expected ${l.diffId}, got ${got.digest} (the delta was applied to other base bytes than it was made from).`,
        { hint: `Give the base image that holds ${l.base.diffId} (${l.base.image}).` },
      );
    }
  }
  files.set(l.diffId, file);
}

async function checkTags(tags: string[], id: string): Promise<void> {
  for (const t of tags) {
    let existing: string | undefined;
    try {
      existing = (await inspectImage(t)).Id;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "IMAGE_NOT_FOUND") continue;
      throw e;
    }
    if (existing && existing !== id) {
      throw new DockpackError(
        "DELTA_TAG_EXISTS",
        `The tag '${t}' already names another image (${existing}).`,
        {
          hint: "Pass -f/--force to move the tag, or give another IMAGE_NAME.",
        },
      );
    }
  }
}

function baseMissing(missing: string[], md: DeltaMetadata, noEngine = false): DockpackError {
  const lines = missing.map((d) => {
    const from = md.bases.filter((b) => b.diffIds.includes(d)).map((b) => b.repoTags[0] ?? b.id ?? b.ref);
    return `  ${d}${from.length ? ` (in ${from.join(", ")})` : ""}`;
  });
  const images = [
    ...new Set(
      md.bases
        .filter((b) => missing.some((d) => b.diffIds.includes(d)))
        .map((b) => b.repoTags[0] ?? b.id ?? b.ref),
    ),
  ];
  return new DockpackError(
    "DELTA_BASE_MISSING",
    `The delta needs ${missing.length} base layer(s) that ${noEngine ? "the given archives do not provide (--no-engine)" : "neither the given archives nor the engine provide"}:\n${lines.join("\n")}`,
    {
      hint: noEngine
        ? `Pass the base image${images.length ? ` (${images.join(", ")})` : ""} with --base-archive FILE, or drop --no-engine.`
        : images.length
          ? `Load ${images.join(", ")} into the engine, or pass it with --base-archive FILE.`
          : "Pass the base image with --base-archive FILE.",
      details: { missing, images },
    },
  );
}
