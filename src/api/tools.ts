/** `dockpack.tools`: tool services (the library side of `dockpack tool …`). Each operation is `(options, reporter?)`, honours `options.signal`. */
import { onAbort, withoutSignal } from "../core/abort.js";
import { DockpackError } from "../core/errors.js";
import * as compile from "../tools/compile.js";
import * as invoke from "../tools/invoke.js";
import { findTool, listTools as listToolsIn, type Tool } from "../tools/manifest.js";
import * as recover from "../tools/recover.js";
import * as server from "../tools/server.js";
import { type Cancellable, operation } from "./operation.js";

export type { CompileResult, CompileTarget } from "../tools/compile.js";
export type { InvokeResult } from "../tools/invoke.js";
export type { Tool, ToolManifest, ToolSummary } from "../tools/manifest.js";
export type { RecoverResult } from "../tools/recover.js";
export type { RunningService } from "../tools/server.js";
/** Options of {@link compileTool}. */
export type CompileOptions = compile.CompileOptions & Cancellable;
/** Options of {@link invokeTool} (`signal` kills the running program). */
export type InvokeOptions = invoke.InvokeOptions & Cancellable;
/** Options of {@link recoverTool}. */
export type RecoverOptions = recover.RecoverOptions & Cancellable;
/**
 * Options of {@link startToolServer}: the tool (`tool`, or `id` looked up in `toolsDir`), the
 * service settings, and `signal`, whose abort closes the server (in-flight requests may finish
 * within the shutdown timeout).
 */
export type ServiceOptions = server.ServiceOptions & Cancellable & { tool?: Tool; id?: string };

/** Compiles a tool to a container image or a single executable. */
export const compileTool = operation(compile.compileTool);

/**
 * Runs a tool (executable, LLM or workflow) on `input`, validated against its schemas. Without
 * `onStderr`, each executable run's stderr goes to the reporter's debug log.
 */
export const invokeTool = operation((o: InvokeOptions, reporter) =>
  invoke.invokeTool({
    ...o,
    onStderr: o.onStderr ?? ((id, text) => text.trim() && reporter.debug(`${id}: ${text.trimEnd()}`)),
  }),
);

/** The tools of a tools folder (default `$DOCKPACK_TOOLS_DIR` or `./tools`), broken ones apart. */
export const listTools = operation(listToolsIn);

/** Rebuilds a failed tool image with the missing packages it detects in the build log. */
export const recoverTool = operation(recover.recoverTool);

/**
 * Serves a tool over HTTP (`/api/invoke`, `/api/info`, `/api/health`, OpenAPI) and resolves once it
 * listens. Close it with `close()` or by aborting `signal`.
 * @throws DockpackError `TOOL_NOT_FOUND`, `SERVICE_LISTEN_FAILED`
 */
export const startToolServer = operation(async (o: ServiceOptions, reporter) => {
  const { tool: given, id, signal, ...config } = o;
  if (!given && !id)
    throw new DockpackError("USAGE", "startToolServer needs `tool` or `id`.", { usage: true });
  const tool = given ?? (await findTool(id as string, config.toolsDir));
  // Requests are served outside the caller's signal: its abort closes the server gracefully.
  const running = await withoutSignal(() => server.startToolServer(tool, config));
  reporter.info(`serving ${tool.manifest.id} at ${running.url}`);
  if (!signal) return running;
  const off = onAbort(() => void running.close(), signal);
  return {
    ...running,
    close: (deadlineSeconds?: number) => {
      off();
      return running.close(deadlineSeconds);
    },
  };
});
