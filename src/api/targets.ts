/** `dockpack.targets`: packaging targets (the library side of `dockpack targets …`). Each operation is `(options, reporter?)`, honours `options.signal`. */
import * as add from "../targets/add.js";
import * as build from "../targets/build.js";
import * as buildAll from "../targets/build-all.js";
import * as init from "../targets/init.js";
import * as list from "../targets/list.js";
import * as remove from "../targets/remove.js";
import * as verify from "../targets/verify.js";
import { type Cancellable, operation } from "./operation.js";

export type { AddResult } from "../targets/add.js";
export type { BuildResult } from "../targets/build.js";
export type { BuildAllResult, BuildAllRow } from "../targets/build-all.js";
export type { TargetsInitResult } from "../targets/init.js";
export type { ListResult } from "../targets/list.js";
export type { TargetsRemoveResult } from "../targets/remove.js";
export type { Registry, Target, TargetType } from "../targets/schema.js";
export type { Finding, VerifyResult } from "../targets/verify.js";
/** Options of {@link addTarget}. */
export type AddOptions = add.AddOptions & Cancellable;
/** Options of {@link buildTarget}. */
export type BuildOptions = build.BuildOptions & Cancellable;
/** Options of {@link buildAllTargets}. */
export type BuildAllOptions = buildAll.BuildAllOptions & Cancellable;
/** Options of {@link initTargets}. */
export type TargetsInitOptions = init.TargetsInitOptions & Cancellable;
/** Options of {@link removeTarget}. */
export type TargetsRemoveOptions = remove.TargetsRemoveOptions & Cancellable;
/** Options of {@link verifyTargets}. */
export type VerifyOptions = verify.VerifyOptions & Cancellable;

/** Adds a target (service, job, app …) to the registry and writes its files. */
export const addTarget = operation(add.addTarget);
/** Builds one target's image. */
export const buildTarget = operation((o: BuildOptions, reporter) => build.buildTarget(o, reporter));
/** Builds every target, in dependency order, with bounded concurrency. */
export const buildAllTargets = operation(buildAll.buildAllTargets);
/** Creates the packaging tree and the registry (never overwrites). */
export const initTargets = operation(init.initTargets);
/** The registry's targets. */
export const listTargets = operation(list.listTargets);
/** Removes a target from the registry (and its files). */
export const removeTarget = operation(remove.removeTarget);
/** Checks the registry against the files and images. */
export const verifyTargets = operation(verify.verifyTargets);
