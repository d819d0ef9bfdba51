/**
 * Choosing the base layer a changed layer is diffed against.
 *
 * Each candidate base layer is scored by the files it shares with the new layer, read from the
 * tar headers only: score = Σ over paths present in both of min(new size, old size) + 512 (the
 * header). A package upgrade rewrites the same paths, so the old layer holding them scores
 * highest. Ties go to the base layer closest in size, then to the one at the same position.
 * A base layer with no shared path is never used (a delta against it would not be smaller).
 */
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { indexTar } from "../image/container.js";
import type { Image } from "../image/image.js";

/** Regular-file paths of a layer and their sizes in bytes (directories, links and whiteouts are left out: sharing them says nothing). */
export type PathSizes = Map<string, number>;

/**
 * Reads the paths of layer `index` of `image` from its tar headers. Uncompressed layers stored
 * in a file are indexed by seeking over bodies; compressed ones are streamed and decompressed.
 */
export async function layerPaths(image: Image, index: number): Promise<PathSizes> {
  const layer = image.layers[index];
  const out: PathSizes = new Map();
  if (layer.codec === "none") {
    const r = await image.container.range(layer.blob);
    for (const e of await indexTar(r.file, r)) if (e.type === "file") out.set(e.path, e.size);
    return out;
  }
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    if (header.type === "file") out.set(header.name.replace(/^\.?\/+/, ""), header.size ?? 0);
    stream.on("end", next);
    stream.resume();
  });
  await pipeline((await image.openLayer(index)) as Readable, extract);
  return out;
}

/** The regular-file paths and sizes of an uncompressed layer tar file (headers only). */
export async function filePaths(file: string): Promise<PathSizes> {
  const out: PathSizes = new Map();
  for (const e of await indexTar(file)) if (e.type === "file") out.set(e.path, e.size);
  return out;
}

/**
 * Paths of layers indexed as soon as `docker save` unpacked them (see image/open's `onMember`),
 * by the file holding the member, so choosing base layers needs no read once the save ends.
 * Members that are not layer tars (config blobs, VERSION, json) are left out.
 */
export class EarlyPaths {
  private readonly byFile = new Map<string, Promise<PathSizes | undefined>>();

  /** The hook to give openImages. */
  readonly onMember = (m: { path: string; file: string; size: number }): void => {
    if (m.size < 1024 || this.byFile.has(m.file)) return;
    if (!m.path.endsWith("/layer.tar") && !m.path.startsWith("blobs/sha256/")) return;
    this.byFile.set(
      m.file,
      filePaths(m.file).catch(() => undefined),
    );
  };

  /** The paths of layer `index` of `image` when its file was indexed early (an engine image). */
  async get(image: Image, index: number): Promise<PathSizes | undefined> {
    const layer = image.layers[index];
    if (layer.codec !== "none" || this.byFile.size === 0) return undefined;
    const r = await image.container.range(layer.blob);
    return r.start === 0 ? this.byFile.get(r.file) : undefined;
  }
}

/** How similar two layers are (higher is more similar); see the module doc. */
export function similarity(newPaths: PathSizes, oldPaths: PathSizes): { score: number; shared: number } {
  let score = 0;
  let shared = 0;
  const [small, large] = newPaths.size <= oldPaths.size ? [newPaths, oldPaths] : [oldPaths, newPaths];
  for (const [p, s] of small) {
    const o = large.get(p);
    if (o === undefined) continue;
    shared++;
    score += Math.min(s, o) + 512;
  }
  return { score, shared };
}

/** A candidate base layer. */
export interface BaseCandidate {
  /** Base image reference, for messages and the package. */
  image: string;
  diffId: string;
  /** Uncompressed size in bytes. */
  size: number;
  index: number;
  /** True when the layer is stored compressed (reading its paths means decompressing). */
  compressed: boolean;
  paths: PathSizes;
}

/** The chosen base layer and why. */
export interface BaseChoice {
  candidate: BaseCandidate;
  score: number;
  shared: number;
  reason: string;
}

/**
 * Picks the best base layer for a new layer (see the module doc), or undefined when no
 * candidate shares a path with it.
 */
export function chooseBase(
  newPaths: PathSizes,
  newSize: number,
  newIndex: number,
  candidates: BaseCandidate[],
): BaseChoice | undefined {
  let best: BaseChoice | undefined;
  for (const c of candidates) {
    const { score, shared } = similarity(newPaths, c.paths);
    if (shared === 0) continue;
    const better =
      !best ||
      score > best.score ||
      (score === best.score &&
        (Math.abs(c.size - newSize) < Math.abs(best.candidate.size - newSize) ||
          (Math.abs(c.size - newSize) === Math.abs(best.candidate.size - newSize) &&
            c.index === newIndex &&
            best.candidate.index !== newIndex)));
    if (better) {
      best = {
        candidate: c,
        score,
        shared,
        reason: `shares ${shared} of ${newPaths.size} paths with layer ${c.index} of ${c.image}`,
      };
    }
  }
  return best;
}
