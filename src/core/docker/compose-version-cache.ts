/**
 * A persistent cache of `docker-compose version` (Compose v1 is a Python program: each run of it
 * costs about 0.9 s on a 2-core machine, and every command that resolves a compose model paid it
 * once more just to learn the version). The answer is kept in
 * `$XDG_CACHE_HOME/dockpack/compose-version.json` (default `~/.cache/dockpack/`), keyed by the
 * program's absolute path and its file identity (device, inode, size, mtime in ms), so an upgrade
 * or a different binary asks compose again. The file is only a cache: unreadable or stale
 * content is ignored and rewritten (atomically, by rename); a failure to write is ignored.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** A compose version as {@link parseComposeVersion} (compose.ts) returns it. */
export interface CachedComposeVersion {
  major: 1 | 2;
  version: string;
}

function cacheFile(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "dockpack", "compose-version.json");
}

/** The identity of the program file at `path` (`dev:ino:size:mtimeMs`), or null when it cannot be read. */
function identity(path: string): string | null {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}:${s.size}:${Math.trunc(s.mtimeMs)}`;
  } catch {
    return null;
  }
}

/**
 * Returns the cached version of the program at `path` (absolute), or `probe()`'s answer, which is
 * cached when it is not null. Never throws for the cache's sake; `probe` is only called on a miss.
 */
export function cachedComposeVersion(
  path: string,
  probe: () => CachedComposeVersion | null,
): CachedComposeVersion | null {
  const id = identity(path);
  if (id === null) return probe();
  const file = cacheFile();
  let entries: Record<string, { id: string; major: 1 | 2; version: string }> = {};
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) entries = parsed as typeof entries;
  } catch {
    // no cache yet, or unreadable: ask compose
  }
  const hit = entries[path];
  if (hit && hit.id === id && (hit.major === 1 || hit.major === 2) && typeof hit.version === "string")
    return { major: hit.major, version: hit.version };
  const v = probe();
  if (!v) return null;
  try {
    mkdirSync(join(file, ".."), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ ...entries, [path]: { id, ...v } }));
    renameSync(tmp, file);
  } catch {
    // a read-only home: no cache
  }
  return v;
}
