/**
 * Temp directories that do not outlive their process, and free-space checks.
 *
 * Every temp directory carries its owner in its name: `<prefix>p<pid>t<start>h<host>-XXXXXX`,
 * where `start` is the owner's start time (clock ticks since boot, /proc/<pid>/stat field 22,
 * so a reused pid is told apart) and `host` four hex digits of the host name's hash. The
 * directory is removed by {@link removeTempDir}, on a normal exit and on SIGINT/SIGTERM/SIGHUP;
 * after a SIGKILL or a crash, {@link sweepStaleTempDirs} — run at the start of every dockpack
 * command — removes it once its owner is gone. A directory made elsewhere than the OS temp dir
 * (`parent`, e.g. a stage folder next to the final output) leaves a symlink
 * `dockpack-tempref-<marker>` in the OS temp dir pointing at it, so the same sweep finds it.
 */
import { readFileSync, rmSync, unlinkSync } from "node:fs";
import { lstat, mkdtemp, readdir, readlink, rm, statfs, symlink, unlink } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { DockpackError } from "../errors.js";
import { pidAlive } from "../exec.js";
import { formatBytes } from "../output.js";
import { onCleanup } from "./cleanup.js";

const tempDirs = new Map<string, () => void>();

/** Prefix of the symlinks in the OS temp dir that point at temp dirs made elsewhere. */
const REF_PREFIX = "dockpack-tempref-";
/** The owner marker at the end of a temp dir's name (before mkdtemp's six characters). */
const MARKER_RE = /p(\d+)t(\d+)h([0-9a-f]{4})-[A-Za-z0-9]{6}$/;

/** Start time of process `pid` in clock ticks since boot (/proc/<pid>/stat field 22); 0 where unknown. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const v = Number(fields[19]);
    return Number.isSafeInteger(v) ? v : undefined;
  } catch {
    return process.platform === "linux" ? undefined : 0;
  }
}

let ownHostTag: string | undefined;
/**
 * The first 4 hex digits of sha256(hostname). node:crypto is imported on first use: most runs
 * (every list command's sweep of an OS temp dir without dockpack temp dirs) never need it, and
 * loading it costs start-up time (issue 14 C18).
 */
async function hostTag(): Promise<string> {
  if (ownHostTag === undefined) {
    const { createHash } = await import("node:crypto");
    ownHostTag = createHash("sha256").update(hostname()).digest("hex").slice(0, 4);
  }
  return ownHostTag;
}

let ownMarker: string | undefined;
/** This process's owner marker: `p<pid>t<start>h<host>-`. */
async function marker(): Promise<string> {
  ownMarker ??= `p${process.pid}t${processStartTicks(process.pid) ?? 0}h${await hostTag()}-`;
  return ownMarker;
}

/** True when process `pid` of this host runs and started at `startText` (clock ticks, see {@link processStartTicks}). */
function localOwnerAlive(pid: number, startText: string): boolean {
  if (pid === process.pid) return Number(startText) === (processStartTicks(pid) ?? 0);
  if (!pidAlive(pid)) return false;
  const start = processStartTicks(pid);
  return start === undefined ? false : start === 0 || start === Number(startText);
}

/**
 * True when the owner named by a temp dir's name still runs (or cannot be judged: another host).
 * The local process is looked at before the host tag: the same answer, and the live temp dirs of
 * other dockpack runs never need the tag's sha256 (node:crypto) (issue 14 C18).
 */
async function ownerAlive(name: string): Promise<boolean> {
  const m = MARKER_RE.exec(name);
  if (!m) return true;
  const [, pidText, startText, host] = m;
  if (localOwnerAlive(Number(pidText), startText)) return true;
  return host !== (await hostTag());
}

/**
 * Creates a new directory `<parent>/<prefix>p<pid>t<start>h<host>-XXXXXX` (parent: the OS temp
 * dir, `$TMPDIR`) and returns its absolute path. It is removed with its content by
 * {@link removeTempDir}, on a normal exit, on SIGINT/SIGTERM/SIGHUP (see onCleanup), and by the
 * next dockpack run's {@link sweepStaleTempDirs} when this process was killed. Pass `parent` to
 * stage next to the final output (same file system, so a rename moves it into place).
 * @param prefix e.g. `dockpack-export-` (keep "dockpack" in it)
 */
export async function makeTempDir(prefix: string, options: { parent?: string } = {}): Promise<string> {
  const parent = resolve(options.parent ?? tmpdir());
  const own = await marker();
  const dir = resolve(await mkdtemp(join(parent, `${prefix}${own}`)));
  let ref: string | undefined;
  if (parent !== resolve(tmpdir())) {
    ref = join(tmpdir(), `${REF_PREFIX}${basename(dir).slice(-(own.length + 6))}`);
    await symlink(dir, ref).catch(() => {
      ref = undefined; // best effort: the parent's own sweep still finds it
    });
    void sweepStaleTempDirs([parent]).catch(() => undefined);
  }
  const link = ref;
  const unregister = onCleanup(
    async () => {
      await rm(dir, { recursive: true, force: true });
      if (link) await unlink(link).catch(() => undefined);
    },
    () => {
      rmSync(dir, { recursive: true, force: true });
      if (link) {
        try {
          unlinkSync(link);
        } catch {
          // already gone
        }
      }
    },
  );
  tempDirs.set(dir, () => {
    unregister();
    if (link) {
      try {
        unlinkSync(link);
      } catch {
        // already gone
      }
    }
  });
  return dir;
}

/** Removes a directory made by {@link makeTempDir} (and its content) now. Safe to call twice. */
export async function removeTempDir(dir: string): Promise<void> {
  const key = resolve(dir);
  await rm(key, { recursive: true, force: true });
  tempDirs.get(key)?.();
  tempDirs.delete(key);
}

/**
 * Removes the temp directories (made by {@link makeTempDir}) whose owner process is gone: those
 * in `parents` (default: the OS temp dir) and those the OS temp dir's `dockpack-tempref-*`
 * symlinks point at. A directory of a live owner, of another host, or without an owner marker
 * is left alone. Best effort: errors are ignored. Returns the removed paths.
 */
export async function sweepStaleTempDirs(parents: string[] = [tmpdir()]): Promise<string[]> {
  const removed: string[] = [];
  const tmp = resolve(tmpdir());
  for (const parent of new Set(parents.map((p) => resolve(p)))) {
    let names: string[];
    try {
      names = await readdir(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.includes("dockpack") || !MARKER_RE.test(name) || (await ownerAlive(name))) continue;
      const path = join(parent, name);
      if (parent === tmp && name.startsWith(REF_PREFIX)) {
        try {
          const target = resolve(parent, await readlink(path));
          // Only a temp dir with the same owner marker is ever removed through a link.
          if (
            basename(target).endsWith(name.slice(REF_PREFIX.length)) &&
            basename(target).includes("dockpack")
          ) {
            const st = await lstat(target).catch(() => undefined);
            if (st?.isDirectory()) {
              await rm(target, { recursive: true, force: true });
              removed.push(target);
            }
          }
        } catch {
          // not a link or unreadable: just drop it below
        }
        await unlink(path).catch(() => undefined);
        continue;
      }
      const st = await lstat(path).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
      removed.push(path);
    }
  }
  return removed;
}

/**
 * Bytes available to this (unprivileged) user on the file system holding `dir` (statfs
 * `f_bavail × f_bsize`). A path that does not exist yet is measured at its nearest existing parent.
 */
export async function freeSpace(dir: string): Promise<number> {
  let path = resolve(dir);
  for (;;) {
    try {
      const st = await statfs(path);
      return st.bavail * st.bsize;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === "ENOENT" || code === "ENOTDIR") && dirname(path) !== path) path = dirname(path);
      else throw err;
    }
  }
}

/**
 * Throws `NO_SPACE` when the file system holding `dir` has less than `neededBytes` available.
 * The message names `what` and `dir` and both numbers; details `{ dir, needed, available }` (bytes).
 * @param what what needs the space, e.g. `the environment package`
 */
export async function ensureFreeSpace(dir: string, neededBytes: number, what: string): Promise<void> {
  const available = await freeSpace(dir);
  if (available >= neededBytes) return;
  throw new DockpackError(
    "NO_SPACE",
    `Not enough free space in ${dir} for ${what}: ${formatBytes(neededBytes)} needed, ${formatBytes(available)} available.`,
    {
      hint: "Free some disk space, or choose a directory on another file system (e.g. set TMPDIR).",
      details: { dir, needed: neededBytes, available },
    },
  );
}
