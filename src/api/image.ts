/**
 * `dockpack.image`: reading and writing container images (docker-archive, OCI layout, engine).
 * Each operation is `(options, reporter?)` and honours `options.signal`.
 */
import type { Writable } from "node:stream";
import type { Image } from "../image/image.js";
import * as open from "../image/open.js";
import * as write from "../image/write.js";
import { type Cancellable, operation } from "./operation.js";

export type { Image, ImageConfig, ImageFormat, ImageLayer } from "../image/image.js";
export type { ImageRef } from "../image/open.js";
export type { ArchiveLayout, ImageInput, LayerInput } from "../image/write.js";

/** Options of {@link openImage} and {@link parseImageRef}. */
export interface OpenImageOptions extends Cancellable {
  /**
   * An image reference with a containers/image transport prefix: `docker-daemon:NAME[:TAG]` or
   * `docker-daemon:ID` (the engine), `docker-archive:PATH[:NAME:TAG|:@N]`, `oci:DIR[:REF]`,
   * `oci-archive:PATH[:REF]`, `docker://REGISTRY/REPO[:TAG|@DIGEST]`; no prefix: an existing
   * file or folder (format detected), else an engine image name or ID.
   */
  ref: string;
}

/** Options of {@link openImages}. */
export interface OpenImagesOptions extends Cancellable {
  /** Image references (see {@link OpenImageOptions.ref}); engine images are saved together. */
  refs: string[];
}

/** Options of {@link writeImageTar}. */
export interface WriteImageTarOptions extends Cancellable {
  /** The image: config bytes, references, layers (streams with their sizes). */
  image: write.ImageInput;
  /** Where the tar goes (ended when done), e.g. a file stream or `docker load`'s stdin. */
  output: Writable;
  /** Tar layout (default `docker-archive`). */
  layout?: write.ArchiveLayout;
}

/**
 * Parses an image reference (see {@link OpenImageOptions.ref}) into its transport and path;
 * opens nothing. Throws `IMAGE_REF_INVALID` (usage) for an unknown transport or empty path.
 */
export const parseImageRef = operation((o: OpenImageOptions) => open.parseImageRef(o.ref));

/**
 * Opens an image from any reference form (engine images are saved to a temporary file first,
 * streamed; progress through the reporter). Close the image when done. Throws `IMAGE_NOT_FOUND`,
 * `IMAGE_FORMAT_UNKNOWN`, `IMAGE_MANIFEST_INVALID`, `IMAGE_CONFIG_INVALID`, `ARCHIVE_TRUNCATED`,
 * `ENGINE_UNAVAILABLE`.
 */
export const openImage = operation((o: OpenImageOptions, reporter) => open.openImage(o.ref, reporter));

/** Opens several images at once (one `docker save` for engine images); close each when done. */
export const openImages = operation(
  (o: OpenImagesOptions, reporter): Promise<Image[]> => open.openImages(o.refs, reporter),
);

/**
 * Streams an image as a tar in `layout` into `output` (ends it); resolves when all is written.
 * A layer stream yielding a different byte count than its `size` fails with
 * `IMAGE_LAYER_SIZE_MISMATCH`.
 */
export const writeImageTar = operation((o: WriteImageTarOptions) =>
  write.writeImageTar(o.image, o.output, o.layout),
);
