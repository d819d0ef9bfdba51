/**
 * MCP tools of the env domain — the whole lifecycle of an environment and its packages:
 * env_list, env_info, env_create, env_up, env_build, env_down, env_remove, export_package,
 * import_package, list_packages, validate_package, packages_inspect. Input schemas are the library's option schemas
 * (src/env/schemas.ts, plus the small ones below); each tool calls the library directly and
 * returns its result as structured JSON. Long tools send progress notifications and stop with
 * rollback when the request is cancelled (see tool.ts).
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { DockpackError } from "../core/errors.js";
import {
  createEnvironment,
  createOptionsSchema,
  environmentBuild,
  environmentDown,
  environmentInfo,
  environmentUp,
  envListOptionsSchema,
  exportEnvironment,
  exportOptionsSchema,
  importOptionsSchema,
  importPackage,
  inspectPackage,
  listEnvironments,
  listPackages,
  listPackagesOptionsSchema,
  removeEnvironment,
  validateOptionsSchema,
  validatePackage,
} from "../env/index.js";
import { registerLibraryTool } from "./tool.js";

const cwd = envListOptionsSchema.shape.cwd;
const branch = z.string().describe("Branch of the environment");
const envRefSchema = z.object({ cwd, branch });
const upSchema = envRefSchema.extend({
  build: z.boolean().optional().describe("Build every build: image again before starting"),
  offline: z
    .boolean()
    .optional()
    .describe(
      "Never pull or build: every service's image must already be in the engine (e.g. loaded by import_package); excludes build",
    ),
});

/** The server's `$DOCKPACK_PASSPHRASE`: the only way a passphrase reaches the MCP tools. */
const serverPassphrase = (): string | undefined => process.env.DOCKPACK_PASSPHRASE || undefined;

const exportSchema = exportOptionsSchema.extend({
  encryptTo: z
    .array(z.string())
    .optional()
    .describe("Encrypt the env files with age to these recipients (age1…)"),
  encryptPassphrase: z
    .boolean()
    .optional()
    .describe(
      "Encrypt the env files with age to the passphrase in the server's DOCKPACK_PASSPHRASE environment variable (passphrases are never tool arguments)",
    ),
  encryptAll: z
    .boolean()
    .optional()
    .describe(
      "With encryptTo or encryptPassphrase: encrypt the code, every environment file and the volume data too (not with images)",
    ),
});

/** Maps export_package's arguments onto the library's {@link exportEnvironment} options. */
function exportOptions(input: z.infer<typeof exportSchema>) {
  const { encryptTo, encryptPassphrase, ...rest } = input;
  let passphrase: string | undefined;
  if (encryptPassphrase) {
    passphrase = serverPassphrase();
    if (!passphrase)
      throw new DockpackError(
        "ENCRYPTION_OPTIONS_INVALID",
        "encryptPassphrase needs the passphrase in the MCP server's DOCKPACK_PASSPHRASE environment variable, which is not set.",
        { hint: "Start `dockpack mcp` with DOCKPACK_PASSPHRASE set, or use encryptTo." },
      );
  }
  const encrypt = encryptTo?.length || passphrase ? { recipients: encryptTo, passphrase } : undefined;
  return { ...rest, encrypt };
}

const importSchema = importOptionsSchema.extend({
  identity: z
    .array(z.string())
    .optional()
    .describe(
      "age identity files (AGE-SECRET-KEY-1… lines) to decrypt an encrypted package; a package encrypted to a passphrase is decrypted with the server's DOCKPACK_PASSPHRASE environment variable",
    ),
});
const removeSchema = z.object({
  cwd,
  branch,
  volumes: z.boolean().optional().describe("Also remove the environment's named volumes (default: kept)"),
  deleteBranch: z.boolean().optional().describe("Also delete the git branch"),
  force: z.boolean().optional().describe("Remove a worktree with uncommitted changes (they are lost)"),
});

/** structuredContent of the tools returning one environment. */
const environmentOutput = z.looseObject({
  branch: z.string(),
  path: z.string(),
  composeProject: z.string(),
  status: z.enum(["running", "stopped"]),
  containers: z.array(z.looseObject({ name: z.string(), service: z.string(), state: z.string() })),
  volumes: z.array(
    z.looseObject({ name: z.string(), volume: z.string(), exists: z.boolean(), size: z.number().nullable() }),
  ),
});
const exportOutput = z.looseObject({
  package: z.string().describe("absolute path of the package file"),
  size: z.number().describe("bytes"),
  metadata: z.looseObject({}),
  seconds: z.number(),
});

const problem = z.looseObject({ code: z.string(), message: z.string() });
/** structuredContent of import_package (camelCase keys, see src/cli/json-keys.ts). */
const importOutput = z.looseObject({
  environment: environmentOutput,
  repository: z.string(),
  commit: z.string(),
  replaced: z.array(z.string()),
  seconds: z.number(),
});
const listPackagesOutput = z.looseObject({
  directory: z.string(),
  packages: z.array(
    z.looseObject({
      file: z.string(),
      size: z.number(),
      branch: z.string().nullable(),
      volumes: z.array(z.string()),
    }),
  ),
});
const validateOutput = z.looseObject({
  package: z.string(),
  valid: z.boolean(),
  size: z.number(),
  problems: z.array(problem),
  metadata: z.looseObject({}).nullable(),
  warnings: z.array(z.string()),
});
const inspectOutput = validateOutput.extend({
  volumes: z.array(z.looseObject({ name: z.string(), size: z.number(), codec: z.string() })),
  composeFiles: z.array(z.string()),
  compose: z.looseObject({}),
});
const envListOutput = z.looseObject({ environments: z.array(environmentOutput) });
const removeOutput = z.looseObject({
  branch: z.string(),
  path: z.string(),
  removedVolumes: z.array(z.string()),
  keptVolumes: z.array(z.string()),
  branchDeleted: z.boolean(),
});

const READ_ONLY = { readOnlyHint: true, openWorldHint: false } as const;

/** Registers the env domain's tools on `server`. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "export_package",
    "Export an environment (env files, config, code, named volume data) as one verified .dockpack.tar package file. Running containers are stopped while volumes are read and started again; a cancelled call leaves them running and writes no package. Sends progress notifications per volume. Encryption (age): encryptTo recipients, or encryptPassphrase with the passphrase taken from the server's DOCKPACK_PASSPHRASE environment variable (never an argument); encryptAll encrypts everything, not only the env files.",
    exportSchema,
    (input, reporter) => exportEnvironment(exportOptions(input), reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      output: exportOutput,
    },
  );
  registerLibraryTool(
    server,
    "import_package",
    "Verify a .dockpack.tar package and recreate its environment (worktree, env files, volumes); rolls back on failure or cancellation. With force, an existing branch/worktree/volumes of that name are replaced. An encrypted package is decrypted with the identity files given, or with the passphrase in the server's DOCKPACK_PASSPHRASE environment variable (never an argument).",
    importSchema,
    (input, reporter) => importPackage({ ...input, passphrase: serverPassphrase() }, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
      output: importOutput,
    },
  );
  registerLibraryTool(
    server,
    "list_packages",
    "List the .dockpack.tar packages in a folder (metadata only; damaged files get an error row).",
    listPackagesOptionsSchema,
    (input) => listPackages(input),
    { annotations: READ_ONLY, output: listPackagesOutput },
  );
  registerLibraryTool(
    server,
    "validate_package",
    "Fully verify a package (every checksum, format version, safe paths) and list every problem.",
    validateOptionsSchema,
    (input, reporter) => validatePackage(input, reporter),
    { annotations: READ_ONLY, output: validateOutput },
  );
  registerLibraryTool(
    server,
    "packages_inspect",
    "Show what a package holds and what its compose files would do (services, volumes with sizes, host ports, bind mounts outside the project, privileged/host settings) after verifying it; runs nothing.",
    validateOptionsSchema,
    (input, reporter) => inspectPackage(input, reporter),
    { annotations: READ_ONLY, output: inspectOutput },
  );
  registerLibraryTool(
    server,
    "env_list",
    "List the environments of a repository: branch, status, URL, containers, volumes with sizes.",
    envListOptionsSchema,
    (input) => listEnvironments(input),
    { annotations: READ_ONLY, output: envListOutput },
  );
  registerLibraryTool(
    server,
    "env_info",
    "Describe one environment: worktree path, compose project, status, containers, volumes with sizes, ports, URL.",
    envRefSchema,
    (input) => environmentInfo(input),
    { annotations: READ_ONLY, output: environmentOutput },
  );
  registerLibraryTool(
    server,
    "env_create",
    "Create the environment of a branch: git worktree, compose project, volume names and free host ports. Does not start it (see env_up).",
    createOptionsSchema,
    (input, reporter) => createEnvironment(input, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      output: environmentOutput,
    },
  );
  registerLibraryTool(
    server,
    "env_up",
    "Start an environment's containers (compose up -d) and return its info (status, containers, URL). With offline, nothing is pulled or built (every image must be in the engine).",
    upSchema,
    (input, reporter) => environmentUp(input, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
      output: environmentOutput,
    },
  );
  registerLibraryTool(
    server,
    "env_build",
    "Build an environment's build: images (compose build), named per compose project, and return its info.",
    envRefSchema,
    (input, reporter) => environmentBuild(input, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: true,
      },
      output: environmentOutput,
    },
  );
  registerLibraryTool(
    server,
    "env_down",
    "Stop and remove an environment's containers (compose down); its volumes, worktree and branch are kept.",
    envRefSchema,
    (input, reporter) => environmentDown(input, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
      output: environmentOutput,
    },
  );
  registerLibraryTool(
    server,
    "env_remove",
    "Remove an environment: its containers and worktree; with volumes also its named volumes, with deleteBranch also its branch. Refuses uncommitted changes unless force. Returns what was removed and the volumes kept.",
    removeSchema,
    (input, reporter) => removeEnvironment(input, reporter),
    {
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
      output: removeOutput,
    },
  );
}
