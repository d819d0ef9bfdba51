/**
 * MCP tools of the env domain: export_package, import_package, list_packages, validate_package,
 * env_list, env_create. Input schemas are the library's option schemas (src/env/schemas.ts);
 * each tool calls the library directly and returns its result as structured JSON. Progress and
 * logs are not sent (silent reporter), so stdout carries only the protocol.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { silentReporter } from "../core/output.js";
import {
  createEnvironment,
  createOptionsSchema,
  envListOptionsSchema,
  exportEnvironment,
  exportOptionsSchema,
  importOptionsSchema,
  importPackage,
  listEnvironments,
  listPackages,
  listPackagesOptionsSchema,
  validateOptionsSchema,
  validatePackage,
} from "../env/index.js";
import { registerLibraryTool } from "./tool.js";

/** Registers the env domain's tools on `server`. */
export function register(server: McpServer): void {
  registerLibraryTool(
    server,
    "export_package",
    "Export an environment (env files, config, code, named volume data) as one verified .dockpack.tar package file.",
    exportOptionsSchema,
    (input) => exportEnvironment(input, silentReporter()),
  );
  registerLibraryTool(
    server,
    "import_package",
    "Verify a .dockpack.tar package and recreate its environment (worktree, env files, volumes); rolls back on failure.",
    importOptionsSchema,
    (input) => importPackage(input, silentReporter()),
  );
  registerLibraryTool(
    server,
    "list_packages",
    "List the .dockpack.tar packages in a folder (metadata only; damaged files get an error row).",
    listPackagesOptionsSchema,
    (input) => listPackages(input),
  );
  registerLibraryTool(
    server,
    "validate_package",
    "Fully verify a package (every checksum, format version, safe paths) and list every problem.",
    validateOptionsSchema,
    (input) => validatePackage(input, silentReporter()),
  );
  registerLibraryTool(
    server,
    "env_list",
    "List the environments of a repository: branch, status, URL, containers, volumes with sizes.",
    envListOptionsSchema,
    (input) => listEnvironments(input),
  );
  registerLibraryTool(
    server,
    "env_create",
    "Create the environment of a branch: git worktree, compose project, volume names and free host ports.",
    createOptionsSchema,
    (input) => createEnvironment(input, silentReporter()),
  );
}
