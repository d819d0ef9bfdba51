/** `dockpack.tools`: tool services (the library side of `dockpack tool …`). */
export {
  type CompileOptions,
  type CompileResult,
  type CompileTarget,
  compileTool,
} from "../tools/compile.js";
export { type InvokeOptions, type InvokeResult, invokeTool } from "../tools/invoke.js";
export { listTools, type Tool, type ToolManifest, type ToolSummary } from "../tools/manifest.js";
export { type RecoverOptions, type RecoverResult, recoverTool } from "../tools/recover.js";
export { type RunningService, type ServiceOptions, startToolServer } from "../tools/server.js";
