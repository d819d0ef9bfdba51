/**
 * The CLI's command groups, loaded lazily: `dockpack --help` lists them from this table without
 * importing any of them, and a command line imports only the group it names.
 *
 * A group is listed here only when it works end to end (no placeholder commands).
 */
import type { Command } from "commander";

/** A command group module: adds its command (with subcommands) to the root program. */
export interface GroupModule {
  register(program: Command): void;
}

/** One row of the group table. */
export interface GroupEntry {
  name: string;
  summary: string;
  load: () => Promise<GroupModule>;
}

/** Every command group, in the order `--help` lists them. */
export const GROUPS: GroupEntry[] = [
  // Each domain adds its row here when its commands work end to end, e.g.:
  // { name: "env", summary: "…", load: () => import("./env.js") },
  {
    name: "tool",
    summary: "tool services: list, invoke, serve as an HTTP API, compile to a container or executable, recover",
    load: () => import("./tool.js"),
  },
];
