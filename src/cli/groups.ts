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
    name: "env",
    summary: "per-branch environments: init, create, up, down, list, info, remove",
    load: () => import("./env.js"),
  },
  {
    name: "packages",
    summary: "environment packages: export, import, list, validate",
    load: () => import("./packages.js"),
  },
  {
    name: "delta",
    summary: "image deltas: ship only the layers a target lacks, rebuild the identical image",
    load: () => import("./delta.js"),
  },
  {
    name: "features",
    summary: "Dev Container Features: package features and collection metadata, reproducibly",
    load: () => import("./features.js"),
  },
  {
    name: "targets",
    summary:
      "packaging targets: registry of services, jobs and apps, Dockerfile templates, build, build-all, verify",
    load: () => import("./targets.js"),
  },
  {
    name: "mcp",
    summary: "run the MCP server over stdio (every domain's tools)",
    load: () => import("./mcp.js"),
  },
  {
    name: "tool",
    summary:
      "tool services: list, invoke, serve as an HTTP API, compile to a container or executable, recover",
    load: () => import("./tool.js"),
  },
  {
    name: "login",
    summary: "store registry credentials in the docker config (as docker login), after checking them",
    load: () => import("./registry.js").then((m) => m.loginGroup),
  },
  {
    name: "logout",
    summary: "remove a registry's stored credentials",
    load: () => import("./registry.js").then((m) => m.logoutGroup),
  },
  {
    name: "completion",
    summary: "print a shell completion script: bash, zsh or fish",
    load: () => import("./completion.js"),
  },
];
