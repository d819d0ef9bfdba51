/** `dockpack.features`: Dev Container Features (the library side of `dockpack features …`). Each operation is `(options, reporter?)`, honours `options.signal`. */
import type { PackageFeaturesOptions as DomainPackageOptions } from "../features/options.js";
import * as pkg from "../features/package.js";
import * as publish from "../features/publish.js";
import { type Cancellable, operation } from "./operation.js";

export type { FeatureMetadata, FeatureProblem } from "../features/metadata.js";
export type { PackagedFeature, PackageFeaturesResult } from "../features/options.js";
export type { FeatureInfo, PublishedFeature, PublishFeaturesResult } from "../features/publish.js";
/** Options of {@link packageFeatures}. */
export type PackageFeaturesOptions = DomainPackageOptions & Cancellable;
/** Options of {@link publishFeatures}. */
export type PublishFeaturesOptions = publish.PublishFeaturesOptions & Cancellable;

/** Packages features as reproducible tarballs with collection metadata. */
export const packageFeatures = operation(pkg.packageFeatures);
/** Publishes packaged features to an OCI registry (devcontainers tag scheme). */
export const publishFeatures = operation(publish.publishFeatures);
/** Reads a published feature's metadata from a registry. */
export const featureInfo = operation(publish.featureInfo);
