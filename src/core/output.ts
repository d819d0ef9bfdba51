/**
 * Reporter: the one way library code talks to the user while it works.
 *
 * Logs go to stderr (never stdout); the command's result goes to stdout, as human text or, under
 * `--json`, as exactly one JSON document. Progress bars (bytes done, rate, ETA) are drawn only when
 * stderr is a TTY, `--json` is off and `--quiet` is off; otherwise progress is silent (and logged
 * at `debug` when it ends).
 */

import type { Writable } from "node:stream";
import { ProgressLine } from "./progress-line.js";

/** Log levels, most severe first. `info` is the default. */
export const LOG_LEVELS = ["error", "warn", "info", "debug", "trace"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A running progress indicator. All counts are in the unit given at creation (bytes by default). */
export interface Progress {
  /** Sets the amount done so far. */
  update(done: number): void;
  /** Adds `n` to the amount done. */
  increment(n: number): void;
  /** Sets or changes the total (e.g. once it is known). */
  setTotal(total: number): void;
  /** Ends the indicator; safe to call twice. */
  stop(): void;
}

/** What library functions receive to report logs and progress. */
export interface Reporter {
  /** True under `--json`: human text must not reach stdout. */
  readonly json: boolean;
  /** The active log level. */
  readonly level: LogLevel;
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  trace(message: string): void;
  /**
   * Starts a progress indicator.
   * @param label short text before the bar, e.g. `volume db`
   * @param total total amount (bytes unless `unit` says otherwise), or undefined when unknown
   * @param unit `bytes` (default, shown with rate and ETA) or `items`
   */
  progress(label: string, total?: number, unit?: "bytes" | "items"): Progress;
}

/** Options for {@link createReporter}. */
export interface ReporterOptions {
  json?: boolean;
  level?: LogLevel;
  /** Colours on stderr; default: stderr is a TTY and NO_COLOR is unset. */
  color?: boolean;
  /** Quiet: only errors are logged and no progress is drawn. */
  quiet?: boolean;
  /** Where logs go; default process.stderr. */
  stderr?: Writable & { isTTY?: boolean };
}

const NO_PROGRESS: Progress = { update() {}, increment() {}, setTotal() {}, stop() {} };

/** Formats a byte count as a short human string (`1.5 MiB`). */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${value} ${units[i]}` : `${value.toFixed(1)} ${units[i]}`;
}

/** Creates a Reporter writing logs to stderr. See {@link ReporterOptions}. */
export function createReporter(options: ReporterOptions = {}): Reporter {
  const stderr = options.stderr ?? process.stderr;
  const json = options.json ?? false;
  const quiet = options.quiet ?? false;
  const level: LogLevel = quiet ? "error" : (options.level ?? "info");
  const color = options.color ?? (Boolean(stderr.isTTY) && !process.env.NO_COLOR);
  const rank = LOG_LEVELS.indexOf(level);
  const paint = (code: string, s: string) => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const prefix: Record<LogLevel, string> = {
    error: paint("31", "error:"),
    warn: paint("33", "warning:"),
    info: "",
    debug: paint("2", "debug:"),
    trace: paint("2", "trace:"),
  };
  const log = (lvl: LogLevel, message: string) => {
    if (LOG_LEVELS.indexOf(lvl) > rank) return;
    const p = prefix[lvl];
    stderr.write(`${p ? `${p} ` : ""}${message}\n`);
  };
  const bars = Boolean(stderr.isTTY) && !json && !quiet;
  return {
    json,
    level,
    error: (m) => log("error", m),
    warn: (m) => log("warn", m),
    info: (m) => log("info", m),
    debug: (m) => log("debug", m),
    trace: (m) => log("trace", m),
    progress(label, total, unit = "bytes") {
      if (!bars) return NO_PROGRESS;
      // one rate, one ETA, a spinner for an unknown total, the terminal's width (progress-line.ts)
      const line = new ProgressLine(stderr as NodeJS.WriteStream, label, total, unit);
      let done = 0;
      return {
        update(n) {
          done = n;
          line.update(done);
        },
        increment(n) {
          done += n;
          line.update(done);
        },
        setTotal(t) {
          line.setTotal(t);
        },
        stop() {
          line.stop();
        },
      };
    },
  };
}

/** A Reporter that prints nothing: for library callers, tests and the MCP server. */
export function silentReporter(): Reporter {
  const noop = () => {};
  return {
    json: true,
    level: "error",
    error: noop,
    warn: noop,
    info: noop,
    debug: noop,
    trace: noop,
    progress: () => NO_PROGRESS,
  };
}

/** Prints a command's result: JSON (one document, newline-terminated) or the given human text. */
export function printResult(
  json: boolean,
  value: unknown,
  human?: string,
  stdout: Writable = process.stdout,
): void {
  if (json) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (human !== undefined && human !== "") stdout.write(human.endsWith("\n") ? human : `${human}\n`);
}

/** Renders rows as an aligned plain-text table with a header line. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
