/** `dockpack.delta`: image deltas (the library side of `dockpack delta …`). Each operation is `(options, reporter?)`, honours `options.signal`. */
import * as apply from "../delta/apply.js";
import * as create from "../delta/create.js";
import * as info from "../delta/info.js";
import * as inventory from "../delta/inventory.js";
import * as registry from "../delta/registry.js";
import { type Cancellable, operation } from "./operation.js";

export type { ApplyDeltaResult } from "../delta/apply.js";
export type { CreateDeltaResult } from "../delta/create.js";
export type { DeltaInfo, DeltaListRow } from "../delta/info.js";
export type { LayerInventory, LayerInventoryResult } from "../delta/inventory.js";
/** Options of {@link applyDelta}. */
export type ApplyDeltaOptions = apply.ApplyDeltaOptions & Cancellable;
/** Options of {@link createDelta}. */
export type CreateDeltaOptions = create.CreateDeltaOptions & Cancellable;
/** Options of {@link createInventory}. */
export type LayerInventoryOptions = inventory.LayerInventoryOptions & Cancellable;

/** Rebuilds the image a delta package describes (see the domain's `applyDelta`). */
export const applyDelta = operation(apply.applyDelta);
/** Writes a delta package: only the layers the bases lack (see the domain's `createDelta`). */
export const createDelta = operation(create.createDelta);
/** Format, source image, bases, method, totals of a delta package; reads metadata only. */
export const deltaInfo = operation(info.deltaInfo);
/** One row per layer of a delta package; reads metadata only. */
export const deltaList = operation(info.deltaList);
/** Writes the layer inventory of engine images (for `createDelta`'s bases). */
export const createInventory = operation(inventory.createInventory);
/** Pushes a delta package to an OCI registry as an artifact. */
export const pushDelta = operation(registry.pushDelta);
/** Pulls a delta package artifact from an OCI registry to a file. */
export const pullDelta = operation(registry.pullDelta);
