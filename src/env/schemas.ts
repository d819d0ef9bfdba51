/**
 * zod schemas of the env/packages operations' options: the MCP tools take them as input schemas,
 * and the CLI builds the same option objects from its flags. Each schema is checked against its
 * options type at compile time, so the two cannot drift apart.
 */
import { z } from "zod";
import type { CreateOptions, EnvRef } from "./environments.js";
import type { ExportOptions } from "./export.js";
import type { ImportOptions } from "./import.js";
import type { ListPackagesOptions } from "./list.js";
import type { ValidateOptions } from "./validate.js";

const cwd = z
  .string()
  .optional()
  .describe("A folder inside the project's git repository (default: the server's cwd)");

/** Input of `exportEnvironment` / MCP `export_package`. */
export const exportOptionsSchema = z.object({
  cwd,
  branch: z.string().describe("Branch of the environment to export"),
  outputDir: z.string().optional().describe("Output folder (default ./packages)"),
  includeCode: z.boolean().optional().describe("Include the worktree's files (default true)"),
  codec: z.enum(["zstd", "gzip", "none"]).optional().describe("Volume compression (default zstd)"),
  images: z
    .discriminatedUnion("mode", [
      z.object({ mode: z.literal("none") }),
      z.object({ mode: z.literal("all") }),
      z.object({
        mode: z.literal("missing-from"),
        inventory: z
          .string()
          .describe("The receiving engine's layer inventory (dockpack delta inventory -o FILE)"),
      }),
    ])
    .optional()
    .describe(
      "Carry the services' images as deltas: none (default), all, or only what the receiver's inventory lacks",
    ),
});

/** Input of `importPackage` / MCP `import_package`. */
export const importOptionsSchema = z.object({
  cwd,
  package: z.string().describe("Path of the .dockpack.tar package"),
  targetBranch: z.string().optional().describe("Branch to import as (default: the package's branch)"),
  restoreData: z.boolean().optional().describe("Restore volume data (default true); false: empty volumes"),
  force: z
    .boolean()
    .optional()
    .describe("Replace an existing branch/worktree/volumes of that name (kept aside until success)"),
  standalone: z
    .string()
    .optional()
    .describe("Create a fresh repository in this folder from the package's code and import there"),
  allowSpecialFiles: z
    .boolean()
    .optional()
    .describe("Restore device nodes and fifos found in volume data (refused by default)"),
  project: z
    .string()
    .optional()
    .describe("With standalone: the new repository's project name (default: the folder's name)"),
  images: z
    .boolean()
    .optional()
    .describe("Load the package's images before anything needs them (default true; false: skip them)"),
});

/** Input of `listPackages` / MCP `list_packages`. */
export const listPackagesOptionsSchema = z.object({
  cwd,
  packageDir: z.string().optional().describe("Folder holding packages (default ./packages)"),
});

/** Input of `validatePackage` / MCP `validate_package`. */
export const validateOptionsSchema = z.object({
  cwd,
  package: z.string().describe("Path of the .dockpack.tar package"),
  allowSpecialFiles: z
    .boolean()
    .optional()
    .describe("Accept device nodes and fifos in volume data, as import with allowSpecialFiles would"),
});

/** Input of `listEnvironments` / MCP `env_list`. */
export const envListOptionsSchema = z.object({ cwd });

/** Input of `createEnvironment` / MCP `env_create`. */
export const createOptionsSchema = z.object({
  cwd,
  branch: z.string().describe("Branch of the new environment (created when missing)"),
  from: z.string().optional().describe("Start point of a new branch (default HEAD)"),
  copyDataFrom: z.string().optional().describe("Copy the volume data of this environment"),
});

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const checks: [
  Same<z.infer<typeof exportOptionsSchema>, ExportOptions>,
  Same<z.infer<typeof importOptionsSchema>, ImportOptions>,
  Same<z.infer<typeof listPackagesOptionsSchema>, ListPackagesOptions>,
  Same<z.infer<typeof validateOptionsSchema>, ValidateOptions>,
  Same<z.infer<typeof createOptionsSchema>, CreateOptions>,
  Same<z.infer<typeof envListOptionsSchema>, Omit<EnvRef, "branch">>,
] = [true, true, true, true, true, true];
void checks;
