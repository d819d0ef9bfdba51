/** `dockpack.image`: reading and writing container images (docker-archive, OCI layout, engine). */
export type { Image, ImageConfig, ImageFormat, ImageLayer } from "../image/image.js";
export { type ImageRef, openImage, openImages, parseImageRef } from "../image/open.js";
export { type ImageInput, type LayerInput, writeImageTar } from "../image/write.js";
