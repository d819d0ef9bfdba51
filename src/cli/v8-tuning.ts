/**
 * V8 tuning of the `dockpack` process, imported first by main.ts (before any other module runs).
 *
 * A command of the CLI is mostly short: it parses a few YAML and JSON files, validates them and
 * prints. V8's default tier-up budget sends such code to the TurboFan compiler after a few
 * milliseconds of work; the compiled code is thrown away at exit and, for the yaml parser's
 * generators, often deoptimised and compiled again, so that `tool list` spent more CPU in
 * TurboFan than parsing its seven small tool.yaml files in the interpreter would take (issue 14
 * C18: ~20 → ~6 ms of CPU for those files). A budget 16 times V8's default (67584 bytes of
 * bytecode) keeps short commands in the interpreter and Sparkplug; long ones (export, import,
 * serve) still reach TurboFan, a moment later. The flag changes when code is optimised, never
 * what it does. The library (`dist/index.js`) leaves V8 as its host configured it.
 */
import { setFlagsFromString } from "node:v8";

const TUNED = "--interrupt-budget=1081344";
/** V8's default (V8 11–12, Node 20–22): any other value makes V8 reject Node's own code cache. */
const DEFAULT = "--interrupt-budget=67584";

setFlagsFromString(TUNED);

/**
 * Runs `f` (e.g. the first require() of a Node built-in module) under V8's default flags. Node
 * ships the bytecode of its built-in modules, made under V8's default flags, and V8 accepts it only
 * under the same flags: a built-in first loaded while the budget is raised is compiled from its
 * source, ~2× the CPU time (node:zlib, node:crypto, node:child_process …).
 */
export function withV8Defaults<T>(f: () => T): T {
  setFlagsFromString(DEFAULT);
  try {
    return f();
  } finally {
    setFlagsFromString(TUNED);
  }
}
