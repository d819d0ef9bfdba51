/** `dockpack.env`: per-branch environments (the library side of `dockpack env …`). Each operation is `(options, reporter?)`, honours `options.signal`. */
import * as environments from "../env/environments.js";
import * as init from "../env/init.js";
import * as prune from "../env/prune.js";
import * as remove from "../env/remove.js";
import { type Cancellable, operation } from "./operation.js";

export type { EnvironmentInfo } from "../env/environments.js";
export type { InitResult } from "../env/init.js";
export type { OrphanVolume, PruneResult } from "../env/prune.js";
export type { RemoveResult } from "../env/remove.js";
/** Options of {@link createEnvironment}. */
export type CreateOptions = environments.CreateOptions & Cancellable;
/** Names an environment: its branch, and the repository folder (default: the current one). */
export type EnvRef = environments.EnvRef & Cancellable;
/** Options of {@link initEnvironments}. */
export type InitOptions = init.InitOptions & Cancellable;
/** Options of {@link pruneEnvironments}. */
export type PruneOptions = prune.PruneOptions & Cancellable;
/** Options of {@link removeEnvironment}. */
export type RemoveOptions = remove.RemoveOptions & Cancellable;

/** Creates a branch's environment: worktree, compose project, named volumes (optionally copied). */
export const createEnvironment = operation(environments.createEnvironment);
/** Builds the environment's images (compose build). */
export const environmentBuild = operation(environments.environmentBuild);
/** Stops the environment's containers (compose down; volumes kept). */
export const environmentDown = operation(environments.environmentDown);
/** Describes one environment: status, URL, ports, containers, volumes with sizes. */
export const environmentInfo = operation(environments.environmentInfo);
/** Starts the environment (compose up), optionally building or offline. */
export const environmentUp = operation(environments.environmentUp);
/** Every environment of the repository. */
export const listEnvironments = operation(environments.listEnvironments);
/** Writes `.dockpack/config.yml` for the repository. */
export const initEnvironments = operation(init.initEnvironments);
/** Finds (and with `remove`, deletes) named volumes of environments that are gone. */
export const pruneEnvironments = operation(prune.pruneEnvironments);
/** Removes an environment: containers, worktree, and with `volumes` its named volumes. */
export const removeEnvironment = operation(remove.removeEnvironment);
