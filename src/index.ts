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
 * Every operation has one shape, `(options, reporter?) → Promise<Result>` (src/api/operation.ts):
 * an options object, an optional {@link Reporter} (logs and progress; default silent), and
 * `options.signal`, an AbortSignal whose abort stops the work, rolls back what it did (as Ctrl-C
 * does in the CLI) and rejects with `INTERRUPTED`. The library installs no process signal handler.
 * Failures are {@link DockpackError}s with a stable `code`, a `message` and a `hint`.
 */
export * as delta from "./api/delta.js";
export * as env from "./api/env.js";
export * as features from "./api/features.js";
export * as image from "./api/image.js";
export * as packages from "./api/packages.js";
export * as targets from "./api/targets.js";
export * as tools from "./api/tools.js";
export { DockpackError, isDockpackError } from "./core/errors.js";
export {
  createReporter,
  type LogLevel,
  type Progress,
  type Reporter,
  type ReporterOptions,
  silentReporter,
} from "./core/output.js";
