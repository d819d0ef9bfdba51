/** `dockpack.packages`: environment packages (the library side of `dockpack packages …`). Each operation is `(options, reporter?)`, honours `options.signal`. */
import * as exp from "../env/export.js";
import * as imp from "../env/import.js";
import * as inspect from "../env/inspect.js";
import * as list from "../env/list.js";
import * as registry from "../env/registry.js";
import * as validate from "../env/validate.js";
import { type Cancellable, operation } from "./operation.js";

export type { ExportResult } from "../env/export.js";
export type { ImportResult } from "../env/import.js";
export type { InspectResult } from "../env/inspect.js";
export type { PackageRow } from "../env/list.js";
export type { PackageMetadata, PackageVolume } from "../env/package-format.js";
export type { PackageProblem } from "../env/package-reader.js";
export type { PullPackageResult, PushPackageResult } from "../env/registry.js";
export type { ValidateResult } from "../env/validate.js";
/** Options of {@link exportEnvironment} (`signal` included). */
export type ExportOptions = exp.ExportOptions & Cancellable;
/** Options of {@link importPackage} (`signal` included). */
export type ImportOptions = imp.ImportOptions & Cancellable;
/** Options of {@link inspectPackage}. */
export type InspectOptions = inspect.InspectOptions & Cancellable;
/** Options of {@link listPackages}. */
export type ListPackagesOptions = list.ListPackagesOptions & Cancellable;
/** Options of {@link pullPackage}. */
export type PullPackageOptions = registry.PullPackageOptions & Cancellable;
/** Options of {@link pushPackage}. */
export type PushPackageOptions = registry.PushPackageOptions & Cancellable;
/** Options of {@link validatePackage}. */
export type ValidateOptions = validate.ValidateOptions & Cancellable;

/** Exports an environment as one verified `.dockpack.tar` package. */
export const exportEnvironment = operation(exp.exportEnvironment);
/** Imports a package as an environment (or standalone), verified before anything changes. */
export const importPackage = operation(imp.importPackage);
/** What a package holds and what its compose files would do; runs nothing. */
export const inspectPackage = operation(inspect.inspectPackage);
/** Packages in a folder, reading only each file's metadata. */
export const listPackages = operation(list.listPackages);
/** Tags (packages) of a registry repository. */
export const listRemotePackages = operation(registry.listRemotePackages);
/** Pulls a package from an OCI registry to a file. */
export const pullPackage = operation(registry.pullPackage);
/** Pushes a package to an OCI registry. */
export const pushPackage = operation(registry.pushPackage);
/** Verifies a package completely (checksums, formats, images); changes nothing. */
export const validatePackage = operation(validate.validatePackage);
