/**
 * The Docker Engine building blocks (API v1.41, Docker ≥ 20.10): client, helper image, named
 * volumes, containers, images and the compose runner. See each module for details.
 */
export { dockerHost, engineMessage, getDocker, requireEngine, statusCode } from "./client.js";
export { type ComposeRunOptions, composeCommand, runCompose } from "./compose.js";
export { type ContainerSummary, listContainers, startContainers, stopContainers } from "./containers.js";
export {
  ensureHelperImage,
  HELPER_IMAGE,
  HELPER_LABEL,
  helperLabels,
  removeStaleHelpers,
} from "./helper-image.js";
export { imageExists, inspectImage, type LoadResult, loadImage, saveImage, tagImage } from "./images.js";
export {
  createVolume,
  readVolumeTar,
  removeVolume,
  volumeExists,
  volumeSize,
  writeVolumeTar,
} from "./volumes.js";
