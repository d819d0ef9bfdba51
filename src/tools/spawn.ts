/**
 * Runs one tool process as the leader of its own process group, with `node:child_process` alone:
 * one `spawn`, the input written to stdin, stdout and stderr collected (bounded), a timeout that
 * stops the whole group, cancellation by an AbortSignal, and the group killed when the run ends.
 *
 * This is the hot path of `POST /api/invoke` (one call per request), so it does no more than
 * that: no stream wrappers, no per-call module loading, no AbortSignal composition.
 */
import { spawn } from "node:child_process";
import { trackGroup, untrackGroup } from "./reaper.js";

/** Options of {@link runGroup}. */
export interface GroupRunOptions {
  /** Working folder. */
  cwd: string;
  /** Variables added to (and overriding) `process.env`; none → the environment is inherited. */
  env?: Record<string, string>;
  /** Written to stdin, then stdin is closed (empty: stdin is closed at once). */
  input: string;
  /** Milliseconds until the group gets SIGTERM (and SIGKILL 2 s later). */
  timeoutMs: number;
  /** Largest stdout, and largest stderr, in bytes; beyond it the group is killed. */
  maxBytes: number;
  /** Kills the group (SIGKILL) when it aborts. */
  signal?: AbortSignal;
}

/** How a {@link runGroup} run ended. */
export interface GroupRunResult {
  stdout: string;
  /** The last 64 KiB of stderr. */
  stderr: string;
  /** Exit code, or null when a signal ended the process (or it never started). */
  exitCode: number | null;
  /** The signal that ended the process, if any. */
  exitSignal: NodeJS.Signals | null;
  timedOut: boolean;
  canceled: boolean;
  /** stdout or stderr went past `maxBytes`. */
  tooLarge: boolean;
  /** Set when the program could not be started (e.g. `ENOENT`, `EACCES`). */
  spawnError?: NodeJS.ErrnoException;
}

const STDERR_KEEP = 65536;

function killGroup(pgid: number | undefined, signal: NodeJS.Signals): void {
  if (!pgid) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

/**
 * Runs `program args` detached (a new session and process group), resolves when the process has
 * exited and its stdout/stderr are closed. Never rejects: failures are in the result. Whatever
 * the program left running in its group is SIGKILLed when the run ends.
 */
export function runGroup(program: string, args: string[], o: GroupRunOptions): Promise<GroupRunResult> {
  return new Promise((resolve) => {
    const r: GroupRunResult = {
      stdout: "",
      stderr: "",
      exitCode: null,
      exitSignal: null,
      timedOut: false,
      canceled: false,
      tooLarge: false,
    };
    if (o.signal?.aborted) {
      r.canceled = true;
      resolve(r);
      return;
    }
    const sub = spawn(program, args, {
      cwd: o.cwd,
      env: o.env && Object.keys(o.env).length ? { ...process.env, ...o.env } : undefined,
      detached: true,
      stdio: "pipe",
    });
    const pgid = sub.pid;
    if (pgid) trackGroup(pgid);
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    let errBytes = 0;
    let forceTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      r.timedOut = true;
      killGroup(pgid, "SIGTERM");
      forceTimer = setTimeout(() => killGroup(pgid, "SIGKILL"), 2000);
    }, o.timeoutMs);
    const onAbort = () => {
      r.canceled = true;
      killGroup(pgid, "SIGKILL");
    };
    o.signal?.addEventListener("abort", onAbort, { once: true });
    const overflow = () => {
      r.tooLarge = true;
      killGroup(pgid, "SIGKILL");
    };
    sub.stdout.on("data", (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > o.maxBytes) return overflow();
      out.push(chunk);
    });
    sub.stderr.setEncoding("utf8");
    sub.stderr.on("data", (chunk: string) => {
      errBytes += chunk.length;
      if (errBytes > o.maxBytes) return overflow();
      err += chunk;
      if (err.length > 2 * STDERR_KEEP) err = err.slice(-STDERR_KEEP);
    });
    // A program that exits without reading its input makes the write fail with EPIPE: not an error.
    sub.stdin.on("error", () => {});
    sub.stdin.end(o.input);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(forceTimer);
      o.signal?.removeEventListener("abort", onAbort);
      // Whatever the tool started and left running (stdio closed, still in its group) ends here.
      if (pgid) untrackGroup(pgid);
      r.stdout = Buffer.concat(out).toString("utf8");
      r.stderr = err.slice(-STDERR_KEEP);
      resolve(r);
    };
    sub.once("error", (e: NodeJS.ErrnoException) => {
      if (!pgid) {
        r.spawnError = e;
        finish();
      }
    });
    sub.once("close", (code, signal) => {
      if (done) return;
      r.exitCode = code;
      r.exitSignal = signal;
      finish();
    });
  });
}
