/** `dockpack.features`: Dev Container Features (the library side of `dockpack features …`). */
export type { FeatureMetadata, FeatureProblem } from "../features/metadata.js";
export type { PackagedFeature, PackageFeaturesOptions, PackageFeaturesResult } from "../features/options.js";
export { packageFeatures } from "../features/package.js";
export {
  type FeatureInfo,
  featureInfo,
  type PublishedFeature,
  type PublishFeaturesOptions,
  type PublishFeaturesResult,
  publishFeatures,
} from "../features/publish.js";
