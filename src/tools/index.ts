/**
 * Tool services: tool manifests (tool.yaml), invoke, serve (HTTP API), compile (container
 * build context, single executable) and recover (missing modules and programs → packages).
 */
export {
  COMPILE_TARGETS as TOOL_COMPILE_TARGETS,
  type CompileOptions as ToolCompileOptions,
  type CompileResult as ToolCompileResult,
  type CompileTarget as ToolCompileTarget,
  compileTool,
  DEFAULT_BASE_IMAGE as TOOL_DEFAULT_BASE_IMAGE,
  type GeneratedFile as ToolGeneratedFile,
} from "./compile.js";
export type { ExeInfo as ToolExeInfo } from "./compile-exe.js";
export {
  checkOutput as checkToolOutput,
  type InvokeOptions as ToolInvokeOptions,
  type InvokeResult as ToolInvokeResult,
  invokeTool,
  resolveMapping as resolveWorkflowMapping,
  validateInput as validateToolInput,
} from "./invoke.js";
export {
  findTool,
  listTools,
  loadTool,
  loadTools,
  type Tool,
  type ToolSummary,
} from "./manifest.js";
export {
  parseManifest as parseToolManifest,
  type ToolManifest,
  ToolManifestSchema,
} from "./manifest-schema.js";
export {
  detectMissing,
  type InstallCommand,
  installCommands,
  type MissingItem,
  type RecoverOptions as ToolRecoverOptions,
  type RecoverResult as ToolRecoverResult,
  recoverTool,
} from "./recover.js";
export {
  createToolApp,
  type RunningService as RunningToolService,
  type ServiceConfig as ToolServiceConfig,
  type ServiceOptions as ToolServiceOptions,
  serviceConfigFromEnv as toolServiceConfigFromEnv,
  startToolServer,
} from "./server.js";
