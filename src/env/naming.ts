/**
 * Per-environment names: the compose project `<project>-<branch>` (sanitised the way
 * docker-compose v1 normalises project names: lower case, only `[a-z0-9_-]`), the Docker volume
 * `<project>-<branch>_<volume>` of each logical volume, the worktree folder, and free host ports.
 */
import { mkdir, readdir, stat, unlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockpackError } from "../core/errors.js";
import { withLock } from "../core/fs/lock.js";

/**
 * Sanitises a branch name for use in Docker object names: lower case, every run of characters
 * outside `[a-z0-9_-]` (e.g. `/`, `.`) becomes one `-`, leading/trailing `-` removed.
 * `feature/Login.v2` → `feature-login-v2`.
 */
export function sanitizeName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+|[-_]+$/g, "");
}

/**
 * Checks a git branch name for use as an environment (git check-ref-format rules, simplified).
 * @throws DockpackError `ENV_BRANCH_INVALID` (usage) naming the branch and the problem
 */
export function checkBranchName(branch: string): void {
  const bad =
    !branch ||
    branch.startsWith("-") ||
    branch.startsWith("/") ||
    branch.endsWith("/") ||
    branch.endsWith(".lock") ||
    branch.includes("..") ||
    branch.includes("//") ||
    branch === "@" ||
    /[\s~^:?*[\\\x00-\x1f\x7f]/.test(branch);
  if (bad || sanitizeName(branch) === "")
    throw new DockpackError("ENV_BRANCH_INVALID", `'${branch}' is not a usable branch name.`, {
      hint: "Use letters, digits, '-', '_', '.' and '/' (e.g. feature/login).",
      usage: true,
    });
}

/** The compose project name of `branch`: `<project>-<sanitised branch>`. */
export function composeProjectName(project: string, branch: string): string {
  return `${project}-${sanitizeName(branch)}`;
}

/** The Docker volume name of logical volume `volume` in compose project `composeProject`. */
export function volumeName(composeProject: string, volume: string): string {
  return `${composeProject}_${volume}`;
}

/** The worktree folder name of `branch` (sanitised, `/` kept out). */
export function worktreeFolder(branch: string): string {
  return sanitizeName(branch);
}

/** True when `port` can be bound on all interfaces right now (TCP). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "0.0.0.0", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Seconds a port picked by any dockpack process on this machine stays reserved for it. */
export const PORT_RESERVATION_SECONDS = 300;

/** Folder of machine-wide port reservations (`DOCKPACK_PORT_RESERVATIONS`, default in the temp dir). */
export function portReservationDir(): string {
  return process.env.DOCKPACK_PORT_RESERVATIONS ?? join(tmpdir(), "dockpack-port-reservations");
}

/** The lock under which expired reservations are removed (never needed to make a new one). */
const SWEEP_LOCK = ".sweep.lock";

/** True when the reservation file's age (by its mtime) is past {@link PORT_RESERVATION_SECONDS}. */
async function expired(file: string): Promise<boolean> {
  const st = await stat(file).catch(() => null);
  return st !== null && Date.now() - st.mtimeMs >= PORT_RESERVATION_SECONDS * 1000;
}

/**
 * Runs `fn` under the reservation folder's sweep lock; false (fn not run) when the lock cannot be
 * had (e.g. held for long, or the folder belongs to another user).
 */
async function underSweepLock(dir: string, fn: () => Promise<void>): Promise<boolean> {
  try {
    await withLock(join(dir, SWEEP_LOCK), fn, { wait: true, timeoutSeconds: 10 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the expired reservations of the folder (every file named by a port number whose mtime
 * is older than {@link PORT_RESERVATION_SECONDS}), so the folder does not grow with every port
 * ever picked. A reservation is only created with O_EXCL where no file exists, and only removed
 * under the sweep lock after its age was read under that lock: a fresh reservation is never
 * removed. Best effort: files of other users (sticky folder) are left. Returns how many went.
 */
export async function sweepPortReservations(dir = portReservationDir()): Promise<number> {
  let removed = 0;
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  const old: string[] = [];
  for (const n of names) if (await expired(join(dir, n))) old.push(join(dir, n));
  if (old.length === 0) return 0;
  await underSweepLock(dir, async () => {
    for (const file of old) {
      if (!(await expired(file))) continue; // replaced by a fresh one meanwhile
      await unlink(file).then(
        () => removed++,
        () => {},
      );
    }
  });
  return removed;
}

/**
 * Reserves `port` for this process for {@link PORT_RESERVATION_SECONDS}: creates the file
 * `<dir>/<port>` exclusively (an expired one is removed first, under the sweep lock). False when
 * another dockpack process (of any repository) reserved it a moment ago and has not started it
 * yet.
 */
async function reservePort(port: number): Promise<boolean> {
  const dir = portReservationDir();
  const file = join(dir, String(port));
  try {
    await mkdir(dir, { recursive: true, mode: 0o1777 });
  } catch {
    return true; // no shared folder: rely on the bind check alone
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: "wx" });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") return true;
      if (!(await expired(file))) return false;
      const swept = await underSweepLock(dir, async () => {
        if (await expired(file)) await unlink(file).catch(() => {});
      });
      if (!swept) return false;
    }
  }
  return false;
}

/**
 * Picks `count` host ports from `[lo, hi]` that no other environment has recorded (`taken`),
 * that no other dockpack process on this machine reserved in the last
 * {@link PORT_RESERVATION_SECONDS} (environments of other repositories draw from the same range),
 * and that can be bound now. Expired reservations of the folder are removed first
 * ({@link sweepPortReservations}).
 * @throws DockpackError `ENV_NO_FREE_PORT` when the range is exhausted
 */
export async function allocatePorts(
  count: number,
  range: [number, number],
  taken: Set<number>,
): Promise<number[]> {
  await sweepPortReservations();
  const out: number[] = [];
  for (let p = range[0]; p <= range[1] && out.length < count; p++) {
    if (taken.has(p)) continue;
    if ((await portIsFree(p)) && (await reservePort(p))) out.push(p);
  }
  if (out.length < count)
    throw new DockpackError(
      "ENV_NO_FREE_PORT",
      `No ${count} free host port(s) left in ${range[0]}–${range[1]} for the environment.`,
      { hint: "Remove unused environments or widen port_range in .dockpack/config.yml." },
    );
  return out;
}
