/**
 * dockpack's public library API. The CLI and the MCP server are thin front ends over these
 * functions. Each domain adds its `export * from "./<domain>/index.js"` line.
 */

export * from "./core/archive.js";
export * from "./core/codec.js";
export * from "./core/digest.js";
export * from "./core/docker/index.js";
export * from "./core/errors.js";
export * from "./core/fs.js";
export * as git from "./core/git.js";
export * from "./core/output.js";
export * from "./delta/index.js";
export * from "./env/index.js";
export * from "./features/index.js";
export * from "./image/index.js";
export * from "./targets/index.js";
export * from "./tools/index.js";
