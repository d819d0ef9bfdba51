/**
 * Dev Container Features: discover, validate and package features and their collection metadata
 * (`dockpack features package`, MCP tool `features_package`).
 */
export {
  discoverFeatures,
  type FeatureDiscovery,
  type FeatureSource,
  formatFeatureProblems,
} from "./discover.js";
export {
  checkFeatureMetadata,
  FEATURE_FILE,
  FEATURE_ID_RE,
  FEATURE_PROPERTIES,
  type FeatureMetadata,
  type FeatureMetadataCheck,
  type FeatureProblem,
  INSTALL_SCRIPT,
  publishedMetadata,
  validateFeatureMetadata,
} from "./metadata.js";
export {
  DEFAULT_SOURCE_DATE_EPOCH,
  type PackagedFeature,
  type PackageFeaturesOptions,
  type PackageFeaturesResult,
  packageFeaturesOptionsSchema,
} from "./options.js";
export {
  COLLECTION_FILE,
  collectionDocument,
  featureTarballName,
  packageFeatures,
  resolveSourceDateEpoch,
} from "./package.js";
