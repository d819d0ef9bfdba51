/**
 * Environments and environment packages: the public library API of this domain.
 */
export { type EnvConfig, envConfigSchema, loadEnvConfig, parseEnvConfig } from "./config.js";
export {
  type CreateOptions,
  createEnvironment,
  type EnvironmentInfo,
  type EnvRef,
  environmentBuild,
  environmentDown,
  environmentInfo,
  environmentUp,
  listEnvironments,
} from "./environments.js";
export { type ExportOptions, type ExportResult, exportEnvironment } from "./export.js";
export { type ImportOptions, type ImportResult, importPackage } from "./import.js";
export type { ImportConflict } from "./import-aside.js";
export { type InitOptions, type InitResult, initEnvironments } from "./init.js";
export {
  type InspectOptions,
  type InspectResult,
  inspectPackage,
  renderInspection,
} from "./inspect.js";
export type { InspectedCompose, InspectedService } from "./inspect-compose.js";
export { type ListPackagesOptions, listPackages, type PackageRow } from "./list.js";
export {
  PACKAGE_FORMAT_VERSION,
  type PackageMetadata,
  type PackageVolume,
  packageMetadataSchema,
} from "./package-format.js";
export { type PackageProblem, readPackageHead, verifyPackage } from "./package-reader.js";
export { type OrphanVolume, type PruneOptions, type PruneResult, pruneEnvironments } from "./prune.js";
export { type RecoveredRun, recoverDeadRuns } from "./recover.js";
export { type RemoveOptions, type RemoveResult, removeEnvironment } from "./remove.js";
export {
  createOptionsSchema,
  envListOptionsSchema,
  exportOptionsSchema,
  importOptionsSchema,
  listPackagesOptionsSchema,
  validateOptionsSchema,
} from "./schemas.js";
export { type ValidateOptions, type ValidateResult, validatePackage } from "./validate.js";
