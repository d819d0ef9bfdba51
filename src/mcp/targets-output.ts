/**
 * structuredContent of the targets MCP tools, as zod objects advertised as each tool's
 * `outputSchema` (the SDK client validates every result against it). They mirror the library's
 * result types (src/targets: ListResult, TargetsInitResult, AddResult, VerifyResult, BuildResult)
 * after the camelCase key pass of src/cli/json-keys.ts; a target is the registry's own entry
 * schema (src/targets/schema.ts). Objects are loose: a field added later does not break older
 * clients.
 */
import { z } from "zod";
import { TargetObjectSchema } from "../targets/index.js";

/** targets_list. */
export const listOutput = z.looseObject({
  registry: z.string().optional().describe("image name prefix of the registry file, e.g. ghcr.io/acme"),
  targets: z.array(TargetObjectSchema),
});

/** targets_init. */
export const initOutput = z.looseObject({
  root: z.string(),
  dryRun: z.boolean(),
  created: z.array(z.string()).describe("paths created (or that would be, under dryRun), relative to root"),
  existing: z.array(z.string()).describe("paths left alone because they exist"),
  blueprint: z.string().nullable().describe("the project blueprint read, if any"),
});

/** targets_add. */
export const addOutput = z.looseObject({
  target: TargetObjectSchema.describe("the registry entry added"),
  dockerfileCreated: z.boolean().describe("false: an existing Dockerfile is used"),
  template: z.string().nullable().describe("the template file used, or null"),
});

const finding = z.looseObject({
  code: z.string(),
  message: z.string(),
  target: z.string().optional(),
  path: z.string().optional().describe("JSON path in the registry, e.g. $.targets[0].module"),
  file: z.string().optional(),
  line: z.number().int().optional(),
});

/** targets_verify. */
export const verifyOutput = z.looseObject({
  ok: z.boolean(),
  strict: z.boolean(),
  root: z.string(),
  registry: z.string().describe("the registry file checked"),
  targets: z.number().int().describe("number of targets checked"),
  errors: z.array(finding),
  warnings: z.array(finding),
});

/** targets_build. */
export const buildOutput = z.looseObject({
  target: z.string(),
  dryRun: z.boolean(),
  plan: z.looseObject({
    target: z.string(),
    context: z.string(),
    contextDir: z.string(),
    dockerfile: z.string(),
    dockerfileInContext: z.string(),
    tags: z.array(z.string()).describe("full image references"),
    buildArgs: z.record(z.string(), z.string()),
    labels: z.record(z.string(), z.string()),
    platform: z.string().optional(),
    push: z.boolean(),
    contextEntries: z.number().int(),
    contextBytes: z.number().int().describe("bytes"),
    dockerignore: z.array(z.string()),
    command: z.string().describe("the equivalent docker CLI command line"),
  }),
  imageId: z.string().optional().describe("sha256:… image ID; absent under dryRun"),
  pushed: z.array(z.string()),
  durationSeconds: z.number(),
});
