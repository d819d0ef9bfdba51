/**
 * Advisory locks between dockpack processes: a lock file created with O_EXCL holding the
 * holder's pid, host and start time. A lock whose holder process no longer runs (same host) is
 * stale and taken over. Locks are released when `fn` settles, and on exit and signals.
 */
import { readFileSync, unlinkSync } from "node:fs";
import { open, readFile, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { DockpackError } from "../errors.js";
import { pidAlive } from "../exec.js";
import { onCleanup } from "./cleanup.js";

/** Options of {@link withLock}. */
export interface LockOptions {
  /** Wait for the holder to release the lock (default false: fail at once with `LOCKED`). */
  wait?: boolean;
  /** How long to wait, in seconds (default 30). */
  timeoutSeconds?: number;
}

/** What a lock file holds (JSON). */
interface Holder {
  pid: number;
  host: string;
  since: string;
  token: string;
}

/** Seconds after which an empty or unreadable lock file (a holder that died while creating it) is stale. */
const TORN_SECONDS = 10;

async function readHolder(
  lockPath: string,
): Promise<{ holder?: Holder; raw: string; ageSeconds: number } | null> {
  try {
    const [raw, st] = await Promise.all([readFile(lockPath, "utf8"), stat(lockPath)]);
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(raw) as Holder;
    } catch {
      holder = undefined;
    }
    return { holder, raw, ageSeconds: (Date.now() - st.mtimeMs) / 1000 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** Tries once to create the lock file; true when this process now holds it. */
async function tryCreate(lockPath: string, me: Holder): Promise<boolean> {
  try {
    const fh = await open(lockPath, "wx", 0o644);
    try {
      await fh.writeFile(JSON.stringify(me));
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/** Removes a stale lock file unless it changed since it was read (guarded by a second lock). */
async function takeOverStale(lockPath: string, raw: string): Promise<void> {
  const guard = `${lockPath}.takeover`;
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(guard, "wx");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const st = await stat(guard).catch(() => null);
    if (st && (Date.now() - st.mtimeMs) / 1000 > TORN_SECONDS) await unlink(guard).catch(() => undefined);
    return;
  }
  try {
    const now = await readFile(lockPath, "utf8").catch(() => null);
    if (now === raw) await unlink(lockPath).catch(() => undefined);
  } finally {
    await fh.close();
    await unlink(guard).catch(() => undefined);
  }
}

/** True when the lock file read as `seen` is stale for process `me` (see {@link withLock}). */
function isStale(seen: { holder?: Holder; ageSeconds: number }, host: string): boolean {
  const { holder, ageSeconds } = seen;
  return holder
    ? holder.host === host && holder.pid !== process.pid && !pidAlive(holder.pid)
    : ageSeconds > TORN_SECONDS;
}

/**
 * Removes the lock file `lockPath` when it is stale (its holder process no longer runs on this
 * host, or it is a torn file older than 10 s), so a lock a killed process held does not stay
 * behind until the next {@link withLock} of it. Returns true when no lock file is left.
 * Never throws for a missing file; other file system errors are thrown.
 */
export async function removeStaleLock(lockPath: string): Promise<boolean> {
  const seen = await readHolder(lockPath);
  if (!seen) return true;
  if (!isStale(seen, hostname())) return false;
  await takeOverStale(lockPath, seen.raw);
  return (await readHolder(lockPath)) === null;
}

/**
 * Runs `fn` while holding the advisory lock `lockPath` (a file; its directory must exist), then
 * releases it, also when `fn` throws. A stale lock (holder pid dead on this host, or a torn lock
 * file older than 10 s) is taken over.
 * @throws DockpackError `LOCKED` naming the holder pid and the lock file (details `{ lockPath,
 *   pid, host, since }`) when it is held by another live process and `wait` is false, or still
 *   held after `timeoutSeconds`.
 */
export async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T> | T,
  options: LockOptions = {},
): Promise<T> {
  const me: Holder = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    // node:crypto on first use: loading it costs start-up time of commands that never lock (issue 14 C18)
    token: (await import("node:crypto")).randomBytes(8).toString("hex"),
  };
  const deadline = Date.now() + (options.timeoutSeconds ?? 30) * 1000;
  let delay = 50;
  for (;;) {
    if (await tryCreate(lockPath, me)) break;
    const seen = await readHolder(lockPath);
    if (!seen) continue; // released meanwhile
    const { holder, raw } = seen;
    if (isStale(seen, me.host)) {
      await takeOverStale(lockPath, raw);
      continue;
    }
    if (!options.wait || Date.now() >= deadline) {
      const who = holder
        ? `process ${holder.pid}${holder.host !== me.host ? ` on ${holder.host}` : ""}`
        : "another process";
      throw new DockpackError(
        "LOCKED",
        `${lockPath} is locked by ${who}${holder ? ` since ${holder.since}` : ""}${options.wait ? ` (waited ${options.timeoutSeconds ?? 30} s)` : ""}.`,
        {
          hint: `Wait for it to finish and try again; if no such process runs, remove ${lockPath}.`,
          details: { lockPath, pid: holder?.pid, host: holder?.host, since: holder?.since },
        },
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 500);
  }

  const ours = (raw: string) => {
    try {
      return (JSON.parse(raw) as Holder).token === me.token;
    } catch {
      return false;
    }
  };
  const releaseSync = () => {
    try {
      if (ours(readFileSync(lockPath, "utf8"))) unlinkSync(lockPath);
    } catch {
      // gone already
    }
  };
  const unregister = onCleanup(releaseSync, releaseSync);
  try {
    return await fn();
  } finally {
    unregister();
    const raw = await readFile(lockPath, "utf8").catch(() => "");
    if (ours(raw)) await unlink(lockPath).catch(() => undefined);
  }
}
