/** Image delta transfer: create, apply, inspect delta packages; layer inventories. */
export { type ApplyOptions, ApplyOptionsSchema, type ApplyResult, applyDelta } from "./apply.js";
export { type CreateOptions, CreateOptionsSchema, type CreateResult, createDelta } from "./create.js";
export * from "./format.js";
export * from "./info.js";
export * from "./inventory.js";
export * from "./methods.js";
export * from "./similarity.js";
