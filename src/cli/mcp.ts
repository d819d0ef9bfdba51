/**
 * `dockpack mcp`: serves dockpack's tools over the Model Context Protocol on stdin/stdout.
 * Logs go to stderr only; stdout carries the protocol.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { currentSignal } from "../core/abort.js";
import { withExamples } from "./common.js";

/** Adds the `mcp` command. */
export function register(program: Command): void {
  const version = (
    JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
  ).version;
  withExamples(
    program
      .command("mcp")
      .description(
        "run the MCP server over stdio (tools: export_package, import_package, list_packages, validate_package, env_list, env_create, …)",
      )
      .action(async () => {
        // the MCP SDK and every domain's tools load only when the server starts
        const { serveStdio } = await import("../mcp/server.js");
        await serveStdio(version, currentSignal());
      }),
    ["dockpack mcp", `claude mcp add dockpack -- npx dockpack mcp`],
  );
}
