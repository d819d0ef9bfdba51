/** `dockpack.targets`: packaging targets (the library side of `dockpack targets …`). */
export { type AddOptions, type AddResult, addTarget } from "../targets/add.js";
export { type BuildOptions, type BuildResult, buildTarget } from "../targets/build.js";
export {
  type BuildAllOptions,
  type BuildAllResult,
  type BuildAllRow,
  buildAllTargets,
} from "../targets/build-all.js";
export { initTargets, type TargetsInitOptions, type TargetsInitResult } from "../targets/init.js";
export { type ListResult, listTargets } from "../targets/list.js";
export { removeTarget, type TargetsRemoveOptions, type TargetsRemoveResult } from "../targets/remove.js";
export type { Registry, Target, TargetType } from "../targets/schema.js";
export { type Finding, type VerifyOptions, type VerifyResult, verifyTargets } from "../targets/verify.js";
