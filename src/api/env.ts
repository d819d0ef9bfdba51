/** `dockpack.env`: per-branch environments (the library side of `dockpack env …`). */
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
} from "../env/environments.js";
export { type InitOptions, type InitResult, initEnvironments } from "../env/init.js";
export { type OrphanVolume, type PruneOptions, type PruneResult, pruneEnvironments } from "../env/prune.js";
export { type RemoveOptions, type RemoveResult, removeEnvironment } from "../env/remove.js";
