/**
 * Keeps tool processes from outliving their invoke or the server that started them.
 *
 * Every tool runs as the leader of its own process group. {@link trackGroup} records the group;
 * {@link untrackGroup} SIGKILLs what is left of it when the invoke ends (children that closed
 * their stdio and kept running). When the process exits normally (including `process.exit` after
 * a second signal) the 'exit' handler kills every group still tracked. For the cases no handler
 * sees (SIGKILL, OOM kill, crash), {@link enableWatchdog} starts a small watchdog process that
 * reads the tracked groups from a pipe: when the pipe closes — the server is gone, however it
 * died — the watchdog SIGKILLs every group still listed and exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";

/** Environment variable that makes the runtime entry (or `node -e`) act as the watchdog. */
export const WATCHDOG_ENV = "DOCKPACK_TOOL_WATCHDOG";

const groups = new Set<number>();
let watchdog: ChildProcess | undefined;
let exitHookInstalled = false;

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

let pending = "";
let flushQueued = false;
let lateTimer: NodeJS.Timeout | undefined;

function flush(): void {
  flushQueued = false;
  clearTimeout(lateTimer);
  lateTimer = undefined;
  const w = watchdog;
  const text = pending;
  pending = "";
  if (text && w?.stdin && !w.stdin.destroyed) w.stdin.write(text);
}

/**
 * Queues one line for the watchdog; lines go out together, so a busy server wakes the watchdog
 * about once per turn of its event loop, not twice per invoke. A new group (`+`) is sent at the
 * end of the current turn; an ended one (`-`) may wait up to 500 ms (a group id is not reused
 * that fast, and a late `-` only makes the watchdog signal a group that no longer exists).
 */
function send(line: string): void {
  if (!watchdog) return;
  pending += `${line}\n`;
  if (line[0] === "+") {
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flush);
    }
  } else if (!lateTimer && !flushQueued) {
    lateTimer = setTimeout(flush, 500);
    lateTimer.unref();
  }
}

/**
 * The watchdog's source: reads `+PGID` / `-PGID` lines on stdin; at end of input SIGKILLs every
 * group still listed, then exits. Plain JavaScript text (it runs as `node -e` or inside the
 * runtime bundle), so no transpiler helper can leak into it.
 */
export const WATCHDOG_SOURCE = `
const live = new Set();
let buf = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buf += chunk;
  let i;
  while ((i = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const n = Number(line.slice(1));
    if (Number.isInteger(n) && n > 1) {
      if (line[0] === "+") live.add(n);
      else live.delete(n);
    }
  }
});
const finish = () => {
  for (const g of live) {
    try { process.kill(-g, "SIGKILL"); } catch {}
  }
  process.exit(0);
};
process.stdin.on("end", finish);
process.stdin.on("error", finish);
process.on("SIGTERM", () => {});
process.on("SIGINT", () => {});
`;

/** Runs the watchdog in this process (see {@link WATCHDOG_SOURCE}). */
export function watchdogMain(): void {
  new Function(WATCHDOG_SOURCE)();
}

function isSea(): boolean {
  try {
    const req = createRequire(import.meta.url);
    return (req("node:sea") as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}

/**
 * Starts the watchdog process once per process (idempotent). It does not keep the event loop
 * alive. Under a single executable the executable itself is started with {@link WATCHDOG_ENV}
 * set (the runtime entry dispatches on it); otherwise `node -e`.
 */
export function enableWatchdog(): void {
  installExitHook();
  if (watchdog && watchdog.exitCode === null) return;
  const args = isSea() ? [] : ["-e", WATCHDOG_SOURCE];
  const child = spawn(process.execPath, args, {
    stdio: ["pipe", "ignore", "ignore"],
    detached: true,
    env: { ...process.env, [WATCHDOG_ENV]: "1" },
  });
  child.on("error", () => {
    watchdog = undefined;
  });
  child.stdin?.on("error", () => {});
  child.unref();
  (child.stdin as unknown as { unref?: () => void })?.unref?.();
  watchdog = child;
  for (const g of groups) send(`+${g}`);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const g of groups) killGroup(g, "SIGKILL");
  });
}

/** Records process group `pgid` (a tool run that just started). */
export function trackGroup(pgid: number): void {
  installExitHook();
  groups.add(pgid);
  send(`+${pgid}`);
}

/** Ends process group `pgid`: SIGKILLs whatever is left of it and forgets it. */
export function untrackGroup(pgid: number): void {
  killGroup(pgid, "SIGKILL");
  groups.delete(pgid);
  send(`-${pgid}`);
}

/** Sends `signal` to every tracked group (shutdown deadline). */
export function signalAllGroups(signal: NodeJS.Signals): void {
  for (const g of groups) killGroup(g, signal);
}
