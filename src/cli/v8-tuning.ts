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

setFlagsFromString("--interrupt-budget=1081344");
