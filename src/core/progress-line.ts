/**
 * The progress line drawn on a terminal (stderr) for one Reporter progress bar: one rate and one
 * ETA computed here (an exponentially smoothed rate, so the ETA moves steadily at a steady rate),
 * a spinner instead of a bar when the total is unknown (never "100% 0 B/?"), and a layout that
 * fits the terminal's width (`stream.columns`, 80 when unknown).
 */
import type { Writable } from "node:stream";
import { formatBytes } from "./output.js";

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
/** Smoothing time constant of the rate, in seconds. */
const RATE_TAU = 3;
/** Minimum time between two redraws, in milliseconds. */
const REDRAW_MS = 100;

/** What one progress line shows. */
export interface ProgressState {
  label: string;
  /** Units done (bytes or items). */
  done: number;
  /** Total units; undefined or 0 when unknown (a spinner is drawn). */
  total?: number;
  unit: "bytes" | "items";
  /** Smoothed rate in units per second; undefined before the first measurement. */
  rate?: number;
  /** Seconds left; undefined when unknown. */
  eta?: number;
  /** Terminal width in columns. */
  columns: number;
  /** Spinner frame counter. */
  frame: number;
}

/** `1m05s`, `42s`, `1h02m`. */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** The line for `state`, at most `state.columns - 1` characters (no wrap on any terminal). */
export function renderProgressLine(state: ProgressState): string {
  const { label, done, total, unit, rate, eta } = state;
  const width = Math.max(20, state.columns) - 1;
  const amount = (n: number) => (unit === "bytes" ? formatBytes(n) : String(n));
  const known = total !== undefined && total > 0;
  const parts: string[] = [];
  if (known) parts.push(`${Math.min(100, Math.floor((done / total) * 100))}%`.padStart(4));
  parts.push(known ? `${amount(done)}/${amount(total)}` : amount(done));
  if (rate !== undefined && unit === "bytes") parts.push(`${formatBytes(Math.round(rate))}/s`);
  if (known) parts.push(`ETA ${eta === undefined ? "--" : formatEta(eta)}`);
  const tail = parts.join(" ");
  let name = label;
  if (!known) {
    const line = `${SPINNER[state.frame % SPINNER.length]} ${name} ${tail}`;
    return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
  }
  // label [bar] tail: the tail first, then the label (shortened to what is left, at least 8
  // characters), then a bar of up to 40 cells in what remains (none when under 5)
  const room = width - tail.length - 1;
  if (name.length > Math.max(8, room - 10)) name = `${name.slice(0, Math.max(7, room - 11))}…`;
  const barWidth = Math.min(40, room - name.length - 3);
  let line = `${name} ${tail}`;
  if (barWidth >= 5) {
    const filled = Math.round((Math.min(done, total) / total) * barWidth);
    line = `${name} [${"█".repeat(filled)}${"░".repeat(barWidth - filled)}] ${tail}`;
  }
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}

/** A live progress line on `stream` (a TTY): see the module comment. */
export class ProgressLine {
  #state: ProgressState;
  #stream: Writable & { columns?: number };
  #lastDraw = 0;
  #sampleAt: number;
  #sampleDone = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    stream: Writable & { columns?: number },
    label: string,
    total: number | undefined,
    unit: "bytes" | "items",
  ) {
    this.#stream = stream;
    this.#sampleAt = Date.now();
    this.#state = { label, done: 0, total, unit, columns: stream.columns || 80, frame: 0 };
    // the spinner turns (and the line redraws) even while no data arrives
    this.#timer = setInterval(() => this.#draw(true), 250);
    this.#timer.unref();
    this.#draw(true);
  }

  /** Sets the units done. */
  update(done: number): void {
    this.#state.done = done;
    this.#draw(false);
  }

  /** Sets the total (0 or undefined: unknown). */
  setTotal(total: number | undefined): void {
    this.#state.total = total;
    this.#draw(true);
  }

  /** The current state (for tests). */
  get state(): Readonly<ProgressState> {
    return this.#state;
  }

  /** Clears the line and stops redrawing. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#stream.write("\r\u001b[2K");
  }

  #measure(now: number): void {
    const dt = (now - this.#sampleAt) / 1000;
    if (dt < 0.25) return;
    const instant = (this.#state.done - this.#sampleDone) / dt;
    const prev = this.#state.rate;
    const w = 1 - Math.exp(-dt / RATE_TAU);
    this.#state.rate = prev === undefined ? instant : prev + w * (instant - prev);
    this.#sampleAt = now;
    this.#sampleDone = this.#state.done;
    const { total, done, rate } = this.#state;
    if (total && rate && rate > 0) this.#state.eta = Math.max(0, (total - done) / rate);
  }

  #draw(force: boolean): void {
    if (this.#stopped) return;
    const now = Date.now();
    if (!force && now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    this.#measure(now);
    this.#state.frame++;
    this.#state.columns = this.#stream.columns || 80;
    this.#stream.write(`\r${renderProgressLine(this.#state)}\u001b[K`);
  }
}
