/** `dockpack.delta`: image deltas (the library side of `dockpack delta …`). */
export { type ApplyDeltaOptions, type ApplyDeltaResult, applyDelta } from "../delta/apply.js";
export { type CreateDeltaOptions, type CreateDeltaResult, createDelta } from "../delta/create.js";
export { type DeltaInfo, type DeltaListRow, deltaInfo, deltaList } from "../delta/info.js";
export {
  createInventory,
  type LayerInventory,
  type LayerInventoryOptions,
  type LayerInventoryResult,
} from "../delta/inventory.js";
export { pullDelta, pushDelta } from "../delta/registry.js";
