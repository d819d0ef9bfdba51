/**
 * The container image model shared by delta and friends, after go-containerregistry's `pkg/v1`:
 * an {@link Image} is a config blob plus an ordered list of {@link ImageLayer}s keyed by diff_id
 * (sha256 of the uncompressed layer tar, OCI image-spec config `rootfs.diff_ids`). Every reader
 * (docker-archive of Docker < 25 and ≥ 25, OCI image layout, OCI archive, the Docker daemon)
 * returns this one shape, and every writer takes it, so sources and sinks are interchangeable.
 */
import type { Readable } from "node:stream";
import { type Codec, decompressStream, detectCodec } from "../core/codec.js";
import { sha256Hex } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import type { BlobContainer } from "./container.js";

/**
 * Makes `stream` pass its error to every stream it is `.pipe()`d into (destroying it), so a
 * consumer that pipes a layer instead of using `pipeline` sees a corrupt layer as an error of its
 * own stream instead of the process dying of an unhandled 'error' event.
 */
function errorsReachPipes<T extends Readable>(stream: T): T {
  const pipe = stream.pipe.bind(stream);
  stream.pipe = <D extends NodeJS.WritableStream>(dest: D, options?: { end?: boolean }): D => {
    stream.once("error", (e) => (dest as unknown as { destroy?: (e: Error) => void }).destroy?.(e));
    return pipe(dest, options);
  };
  return stream;
}

/** Where an image was read from (containers/image transport names). */
export type ImageFormat = "docker-daemon" | "docker-archive" | "oci" | "oci-archive";

/** One layer of an image. */
export interface ImageLayer {
  /** Position in the image, 0 = bottom. */
  index: number;
  /** `sha256:<hex>` of the uncompressed layer tar (config `rootfs.diff_ids[index]`). */
  diffId: string;
  /** Member path of the layer blob inside the image's container. */
  blob: string;
  /** Size in bytes of the blob as stored (compressed when `codec` is not "none"). */
  blobSize: number;
  /** Compression of the stored blob, from its magic bytes. */
  codec: Codec;
  /** Uncompressed size in bytes when known without reading (equals `blobSize` when `codec` is "none"). */
  size?: number;
}

/** The parts of an OCI/Docker image config dockpack reads (OCI image-spec config.md). */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
  rootfs?: { type?: string; diff_ids?: string[] };
  history?: { empty_layer?: boolean; created_by?: string }[];
  [key: string]: unknown;
}

/** A readable image. Close it to release temporary files (daemon images are saved to a temp file). */
export interface Image {
  /** The reference it was opened from, e.g. `docker-archive:/tmp/a.tar`. */
  readonly ref: string;
  readonly format: ImageFormat;
  /** The exact config bytes; their sha256 is the image ID. */
  readonly config: Buffer;
  /** `sha256:<hex>` of {@link config}: the image ID. */
  readonly configDigest: string;
  readonly configJson: ImageConfig;
  /** Repository tags (`name:tag`) recorded with the image; may be empty. */
  readonly repoTags: string[];
  readonly layers: ImageLayer[];
  /** Where the blobs are. */
  readonly container: BlobContainer;
  /** Streams layer `index` uncompressed (decompressing gzip/zstd/xz/bzip2 blobs on the fly). */
  openLayer(index: number): Promise<Readable>;
  /** Releases temporary files; safe to call twice. */
  close(): Promise<void>;
}

/** Parses config bytes; throws `IMAGE_CONFIG_INVALID` naming `where`. */
export function parseConfig(bytes: Buffer, where: string): ImageConfig {
  try {
    const c = JSON.parse(bytes.toString("utf8")) as ImageConfig;
    if (!c || typeof c !== "object") throw new Error("not an object");
    return c;
  } catch (e) {
    throw new DockpackError(
      "IMAGE_CONFIG_INVALID",
      `${where}: the image config is not valid JSON (${(e as Error).message}).`,
      {
        cause: e,
      },
    );
  }
}

/** Returns the config's `rootfs.diff_ids`; throws `IMAGE_CONFIG_INVALID` when absent or malformed. */
export function configDiffIds(config: ImageConfig, where: string): string[] {
  const ids = config.rootfs?.diff_ids;
  if (!Array.isArray(ids) || ids.some((d) => typeof d !== "string" || !/^sha256:[a-f0-9]{64}$/.test(d))) {
    throw new DockpackError(
      "IMAGE_CONFIG_INVALID",
      `${where}: the image config has no valid rootfs.diff_ids.`,
    );
  }
  return ids;
}

async function headOf(container: BlobContainer, path: string): Promise<Buffer> {
  const stream = await container.open(path);
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    got += chunk.length;
    if (got >= 8) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, 8);
}

/**
 * Builds an {@link Image} from a container, the config member and the layer member paths (both
 * docker-archive and OCI readers end here). Detects each blob's compression by magic bytes.
 * Throws `IMAGE_CONFIG_INVALID` when the layer count differs from `rootfs.diff_ids`.
 */
export async function assembleImage(args: {
  ref: string;
  format: ImageFormat;
  container: BlobContainer;
  config: Buffer;
  layerPaths: string[];
  repoTags: string[];
  close?: () => Promise<void>;
}): Promise<Image> {
  const { container, config, ref } = args;
  const configJson = parseConfig(config, ref);
  const diffIds = configDiffIds(configJson, ref);
  if (diffIds.length !== args.layerPaths.length) {
    throw new DockpackError(
      "IMAGE_CONFIG_INVALID",
      `${ref}: the manifest lists ${args.layerPaths.length} layers but the config has ${diffIds.length} diff_ids.`,
    );
  }
  const layers: ImageLayer[] = [];
  for (let i = 0; i < diffIds.length; i++) {
    const blob = args.layerPaths[i];
    const blobSize = await container.size(blob);
    const codec =
      blobSize === 0 ? "none" : (container.storedCodec?.(blob) ?? detectCodec(await headOf(container, blob)));
    layers.push({
      index: i,
      diffId: diffIds[i],
      blob,
      blobSize,
      codec,
      ...(codec === "none" ? { size: blobSize } : {}),
    });
  }
  let closed = false;
  return {
    ref,
    format: args.format,
    config,
    configDigest: `sha256:${sha256Hex(config)}`,
    configJson,
    repoTags: args.repoTags,
    layers,
    container,
    async openLayer(index: number): Promise<Readable> {
      const layer = layers[index];
      if (!layer) throw new DockpackError("IMAGE_LAYER_MISSING", `${ref}: there is no layer ${index}.`);
      const raw = await container.open(layer.blob);
      if (layer.codec === "none") return raw;
      const dec = decompressStream(layer.codec, { label: `${ref}: layer ${index} (${layer.diffId})` });
      raw.on("error", (e) => dec.destroy(e));
      return errorsReachPipes(raw.pipe(dec));
    },
    async close() {
      if (closed) return;
      closed = true;
      await args.close?.();
    },
  };
}
