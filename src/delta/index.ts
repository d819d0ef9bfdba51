/** Image delta transfer: create, apply, inspect delta packages; layer inventories. */
export {
  type ApplyDeltaOptions,
  ApplyDeltaOptionsSchema,
  type ApplyDeltaResult,
  applyDelta,
} from "./apply.js";
export {
  type CreateDeltaOptions,
  CreateDeltaOptionsSchema,
  type CreateDeltaResult,
  createDelta,
} from "./create.js";
export * from "./format.js";
export * from "./info.js";
export * from "./inventory.js";
export * from "./methods.js";
export * from "./similarity.js";
