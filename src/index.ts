/**
 * dockpack's public library API: one namespace per domain, holding the operations a user calls
 * and the types of their options and results — nothing internal. The CLI and the MCP server are
 * thin front ends over the same functions.
 *
 * ```ts
 * import { packages, env, DockpackError } from "dockpack";
 * const res = await packages.exportEnvironment({ branch: "main", signal }, reporter);
 * ```
 *
 * Operations take an options object and a {@link Reporter} (logs and progress; optional for
 * most, default silent) and return a Promise of their result. `packages.exportEnvironment`,
 * `packages.importPackage` and `tools.invokeTool` take `options.signal`; any operation can be run
 * under an AbortSignal with {@link withSignal} and rolls back when it aborts (as on Ctrl-C in the
 * CLI). Failures are {@link DockpackError}s with a stable `code`, a `message` and a `hint`.
 */
export * as delta from "./api/delta.js";
export * as env from "./api/env.js";
export * as features from "./api/features.js";
export * as image from "./api/image.js";
export * as packages from "./api/packages.js";
export * as targets from "./api/targets.js";
export * as tools from "./api/tools.js";
export { withSignal } from "./core/abort.js";
export { DockpackError, isDockpackError } from "./core/errors.js";
export {
  createReporter,
  type LogLevel,
  type Progress,
  type Reporter,
  type ReporterOptions,
  silentReporter,
} from "./core/output.js";
