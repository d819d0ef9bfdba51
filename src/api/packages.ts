/** `dockpack.packages`: environment packages (the library side of `dockpack packages …`). */
export { type ExportOptions, type ExportResult, exportEnvironment } from "../env/export.js";
export { type ImportOptions, type ImportResult, importPackage } from "../env/import.js";
export { type InspectOptions, type InspectResult, inspectPackage } from "../env/inspect.js";
export { type ListPackagesOptions, listPackages, type PackageRow } from "../env/list.js";
export type { PackageMetadata, PackageVolume } from "../env/package-format.js";
export type { PackageProblem } from "../env/package-reader.js";
export {
  listRemotePackages,
  type PullPackageOptions,
  type PullPackageResult,
  type PushPackageOptions,
  type PushPackageResult,
  pullPackage,
  pushPackage,
} from "../env/registry.js";
export { type ValidateOptions, type ValidateResult, validatePackage } from "../env/validate.js";
