/**
 * structuredContent of the delta MCP tools, as zod objects advertised as each tool's
 * `outputSchema` (the SDK client validates every result against it). They mirror the library's
 * result types (src/delta: CreateDeltaResult, ApplyDeltaResult, DeltaInfo + DeltaListRow,
 * LayerInventoryResult) after the camelCase key pass of src/cli/json-keys.ts; a package's
 * `metadata` is the delta format's own schema (src/delta/format.ts, dockpack-delta.json).
 * Objects are loose: a field added later does not break older clients.
 */
import { z } from "zod";
import { DeltaMetadataSchema, DeltaShipKind } from "../delta/index.js";

const bytes = z.number().int().nonnegative().describe("bytes");
const digest = z.string().describe("sha256:<hex>");

/** delta_create. */
export const createOutput = z.looseObject({
  output: z.string().describe("path of the delta package written (or that would be, under dryRun)"),
  dryRun: z.boolean(),
  estimated: z.boolean().describe("true when packageSize is an estimate (dryRun)"),
  packageSize: bytes,
  metadata: DeltaMetadataSchema.describe("the package metadata (dockpack-delta.json), as in the file"),
});

/** delta_apply. */
export const applyOutput = z.looseObject({
  imageId: digest.describe("ID of the rebuilt image (sha256 of its config)"),
  tags: z.array(z.string()),
  output: z.string().optional().describe("the docker-archive written, when output was given"),
  loaded: z.boolean().describe("true when the image was loaded into the engine"),
  layers: z.looseObject({
    total: z.number().int(),
    fromBase: z.number().int(),
    fromDelta: z.number().int(),
    fromFull: z.number().int(),
  }),
  baseSources: z.array(z.string()).describe("where base layers came from (archives, engine images)"),
  imageSize: bytes,
  dryRun: z.boolean().optional(),
});

/** One layer row of delta_list and delta_info. */
const layerRow = z.looseObject({
  index: z.number().int(),
  diffId: digest,
  size: bytes,
  ship: DeltaShipKind,
  how: z.string().describe("how the layer ships, in words"),
  packageBytes: bytes.describe("bytes the layer takes in the package"),
  reason: z.string().optional(),
});

/** delta_list. */
export const listOutput = z.looseObject({ package: z.string(), layers: z.array(layerRow) });

/** delta_info: the package description, its layer counts and one row per layer. */
export const infoOutput = z.looseObject({
  package: z.string(),
  formatVersion: z.number().int(),
  dockpackVersion: z.string(),
  created: z.string().describe("ISO 8601"),
  source: DeltaMetadataSchema.shape.source,
  bases: z.array(
    z.looseObject({
      ref: z.string(),
      kind: z.string(),
      id: z.string().optional(),
      repoTags: z.array(z.string()),
      layers: z.number().int(),
    }),
  ),
  method: DeltaMetadataSchema.shape.method,
  compression: DeltaMetadataSchema.shape.compression,
  level: z.number().int().optional(),
  layerCounts: z.looseObject({
    total: z.number().int(),
    reused: z.number().int(),
    delta: z.number().int(),
    full: z.number().int(),
    duplicate: z.number().int(),
  }),
  layers: z.array(layerRow),
  imageSize: bytes,
  packageSize: bytes,
  dockerSaveSize: bytes,
  dockerSaveGzipSize: bytes.optional(),
  fractionOfDockerSave: z.number(),
  fractionOfDockerSaveGzip: z.number().optional(),
});

/** delta_inventory. */
export const inventoryOutput = z.looseObject({
  output: z.string().describe("the inventory file written"),
  images: z.number().int(),
  layers: z.number().int().describe("distinct layers"),
});
