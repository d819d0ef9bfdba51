/**
 * Helpers shared by every command group: global options, the Reporter, result rendering,
 * examples in help, and error → exit code mapping.
 */
import type { Command } from "commander";
import { currentSignal, interrupted, isInterrupted } from "../core/abort.js";
import { type DockpackError, toDockpackError } from "../core/errors.js";
import { createReporter, type LogLevel, printResult, type Reporter } from "../core/output.js";
import { interruptExitCode } from "./interrupt.js";
import { camelKeys } from "./json-keys.js";

/** Global options every command inherits from the root program. */
export interface GlobalOptions {
  json: boolean;
  logLevel: LogLevel;
  color: boolean;
  quiet: boolean;
}

/** Reads the root program's global options from any (sub)command. */
export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as {
    json?: boolean;
    logLevel?: LogLevel;
    color?: boolean;
    quiet?: boolean;
  };
  return {
    json: Boolean(o.json),
    logLevel: o.logLevel ?? "info",
    color: o.color !== false && !process.env.NO_COLOR,
    quiet: Boolean(o.quiet),
  };
}

/** Creates the Reporter for a command from its global options. */
export function reporterFor(cmd: Command): Reporter {
  const g = globalOptions(cmd);
  return createReporter({
    json: g.json,
    level: g.logLevel,
    quiet: g.quiet,
    color: g.color && Boolean(process.stderr.isTTY),
  });
}

/** Keys holding a result's primary value, most specific first (see {@link primaryLines}). */
const PRIMARY_KEYS = [
  "package",
  "imageId",
  "outputFolder",
  "outputDir",
  "output",
  "file",
  "branch",
  "url",
  "path",
  "id",
  "name",
  "volume",
] as const;
/** Keys holding a list result's rows. */
const LIST_KEYS = [
  "environments",
  "packages",
  "features",
  "targets",
  "tools",
  "layers",
  "images",
  "volumes",
  "tags",
];

/**
 * The primary result of a command, one item per line, as `docker -q` prints it: the package path,
 * the image ID, the output folder, the URL; for a list, the primary value of each row.
 * Lets scripts write `P=$(dockpack -q packages export main)`.
 */
export function primaryLines(result: unknown): string[] {
  if (result === null || result === undefined) return [];
  if (typeof result !== "object") return [String(result)];
  if (Array.isArray(result)) return result.flatMap((r) => primaryLines(r).slice(0, 1));
  const o = result as Record<string, unknown>;
  for (const k of PRIMARY_KEYS) {
    const v = o[k];
    if (typeof v === "string" && v !== "") return [v];
  }
  if (o.environment && typeof o.environment === "object") return primaryLines(o.environment);
  for (const k of LIST_KEYS) if (Array.isArray(o[k])) return primaryLines(o[k]);
  return [];
}

/**
 * `dockpack …args` as the user must type it from the current folder: with `-C DIR` when the
 * command must run in `repository` and the current folder is outside it.
 */
export function commandLine(args: string, repository?: string): string {
  if (!repository) return `dockpack ${args}`;
  const cwd = process.cwd();
  const inside = cwd === repository || cwd.startsWith(`${repository}/`);
  const quoted = /^[\w./~@:+-]+$/.test(repository) ? repository : `'${repository.replace(/'/g, "'\\''")}'`;
  return inside ? `dockpack ${args}` : `dockpack -C ${quoted} ${args}`;
}

/** Help is wrapped at this width when stdout is not a terminal (else at the terminal's width). */
export const HELP_WIDTH = 80;

/**
 * The root program's help style, inherited by every command: descriptions wrap even beside long
 * command terms (commander gives up wrapping when fewer than 40 columns are left).
 */
export function helpStyle(program: Command): Command {
  return program.configureHelp({ minWidthToWrap: 20 });
}

/** `  $ command…` wrapped at {@link HELP_WIDTH} columns with shell line continuations. */
function exampleLines(example: string): string[] {
  const lines: string[] = [];
  let line = "  $";
  // shell words: a quoted string is never split
  for (const word of example.match(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g) ?? []) {
    if (line.length + 1 + word.length + 2 > HELP_WIDTH && line.trim() !== "$" && line.trim() !== "") {
      lines.push(`${line} \\`);
      line = "     ";
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

/** Appends an "Examples:" section to a command's help (long commands wrapped with `\\`). */
export function withExamples(cmd: Command, examples: string[]): Command {
  cmd.addHelpText("after", `\nExamples:\n${examples.flatMap(exampleLines).join("\n")}\n`);
  return cmd;
}

/** Prints an error as the CLI does: `error:`/`hint:` on stderr, and JSON on stdout under --json. */
export function reportError(err: DockpackError, g: GlobalOptions): void {
  if (g.json) process.stdout.write(`${JSON.stringify(camelKeys({ error: err.toJSON() }), null, 2)}\n`);
  const red = (s: string) => (g.color && process.stderr.isTTY ? `\u001b[31m${s}\u001b[0m` : s);
  process.stderr.write(`${red("error:")} ${err.message}\n`);
  if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  if (g.logLevel === "debug" || g.logLevel === "trace") {
    const stack = (err.cause instanceof Error ? err.cause.stack : undefined) ?? err.stack;
    if (stack) process.stderr.write(`${stack}\n`);
  }
}

/**
 * Wraps a command action: builds the Reporter, runs `fn`, prints its result (JSON with camelCase
 * keys under --json, see {@link camelKeys};
 * under -q only its primary value, see {@link primaryLines}; else the text from `human`), and maps
 * errors to exit codes (1, or 2 for usage errors; 130/143/129 when interrupted).
 */
export function action<T>(
  fn: (reporter: Reporter, cmd: Command, ...args: any[]) => Promise<T>,
  human?: (result: T) => string,
): (...args: any[]) => Promise<void> {
  return async (...args: any[]) => {
    const cmd = args[args.length - 1] as Command;
    const g = globalOptions(cmd);
    const reporter = reporterFor(cmd);
    try {
      const result = await fn(reporter, cmd, ...args.slice(0, -1));
      if (g.quiet && !g.json) printResult(false, undefined, primaryLines(result).join("\n"));
      else printResult(g.json, g.json ? camelKeys(result) : result, human ? human(result) : undefined);
    } catch (e) {
      const signal = currentSignal();
      if (isInterrupted(e, signal)) {
        // Ctrl-C (or SIGTERM/SIGHUP): one plain line, never a stack trace — whatever error the
        // aborted work ended with (a destroyed stream's "Premature close" included).
        const err = interrupted(signal);
        if (g.json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
        process.stderr.write(`${err.message.replace(/^Interrupted/, "interrupted")}\n`);
        process.exitCode = interruptExitCode(typeof signal?.reason === "string" ? signal.reason : null);
        return;
      }
      const err = toDockpackError(e);
      reportError(err, g);
      process.exitCode = err.usage ? 2 : 1;
    }
  };
}

/**
 * A module imported on first use: `await lib()` inside an action; `lib.loaded()` inside a result
 * renderer (renderers run after their action, so the module is there by then). Keeps `--help`
 * and unrelated commands from loading a domain and its dependencies (zod, dockerode, ajv, undici…).
 */
export function lazy<T>(load: () => Promise<T>): (() => Promise<T>) & { loaded(): T } {
  let mod: T | undefined;
  let pending: Promise<T> | undefined;
  const get = () => {
    pending ??= load().then((m) => {
      mod = m;
      return m;
    });
    return pending;
  };
  return Object.assign(get, {
    loaded(): T {
      if (mod === undefined) throw new Error("a lazily imported module was used before it was loaded");
      return mod;
    },
  });
}
