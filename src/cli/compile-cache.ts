/**
 * The launcher of the bundled `dockpack` command with a V8 code cache (issue 14 C18). Node 20 has
 * no compile cache for modules (`module.enableCompileCache` is Node 22.1+), so scripts/bundle-cli.mjs
 * writes the command's files (`dist/bin/dockpack-main.js` and its chunks) as CommonJS function
 * expressions, and this file loads them as require() would, compiling each with `vm.Script` and the
 * bytecode V8 produced for the same command in an earlier run (`cachedData`): parsing and compiling
 * the functions a command runs is most of what a short command spends of its own.
 *
 * Cache files: `$XDG_CACHE_HOME/dockpack/compile-cache/<build>-<node version>-<flags>/<command>.v8`
 * (default `~/.cache/dockpack/`), one per command (`env-list`, `tool-list-help`, …) holding the
 * bytecode of every bundle file that command loaded, functions compiled while it ran included.
 * `<build>` is a hash of the bundle written at build time, so a rebuilt bundle never meets another
 * build's bytecode; `<flags>` hashes the options given to node (V8 also checks its flags itself).
 * A cache is written (temp file + rename: a kill leaves the old or the new file) when the command
 * exits after a file ran without bytecode (no cache, or one V8 rejected); never after a usage error
 * (exit code 2), so mistyped commands leave no file. The cache only ever saves time: an unreadable,
 * corrupt or rejected file is compiled without and rewritten (V8 checks a checksum of it, see
 * withChecksums), as is one not owned by this user or writable by others (bytecode runs as this
 * user); an unwritable folder is left alone.
 * At most {@link MAX_BUILDS} build folders are kept (the oldest go when one is written) and at most
 * {@link MAX_FILES} command files in one. The build folder also holds the bundle's parse cache
 * (core/parse-cache.ts). `DOCKPACK_NO_COMPILE_CACHE=1` compiles without cache, parses every time
 * and writes neither.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { Script } from "node:vm";
import { readOwnFile } from "../core/fs/own-file.js";
import { PARSE_CACHE_DIR } from "../core/parse-cache.js";
import { withV8Defaults } from "./v8-tuning.js";

/** Build folders kept side by side (several installed versions may be used in turn). */
export const MAX_BUILDS = 4;
/** Command cache files kept in one build folder. */
export const MAX_FILES = 128;

/** FNV-1a (32 bits) of `s` in hex: a cheap, stable name part (not a security hash). */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/**
 * The cache name of the command in `argv` (the arguments after the script): its first two command
 * words (lower-case letters, digits and `-`, as dockpack's group and command names are), then
 * `help` or `version` when asked for; `root` without words. Options with a value that come before
 * the words (`--log-level X`, `-C DIR`) are skipped, as main.ts does.
 * @example commandKey(["env", "list", "--json"]) === "env-list"
 */
export function commandKey(argv: string[]): string {
  const words: string[] = [];
  let flag = "";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--log-level" || a === "-C") i++;
    else if (a === "-h" || a === "--help") flag = "help";
    else if ((a === "-V" || a === "--version") && !flag) flag = "version";
    else if (a === "--") break;
    else if (!a.startsWith("-") && words.length < 2 && /^[a-z][a-z0-9-]{0,31}$/.test(a)) words.push(a);
    else if (!a.startsWith("-")) break;
  }
  return [...words, flag].filter(Boolean).join("-") || "root";
}

/** The folder of this build's cache files: `<cache home>/dockpack/compile-cache/<build>-<node>-<flags>`. */
export function cacheDir(buildId: string): string {
  const home = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  const flags = fnv1a(`${process.execArgv.join("\0")}\0${process.env.NODE_OPTIONS ?? ""}`);
  return join(home, "dockpack", "compile-cache", `${buildId}-${process.version}-${flags}`);
}

/** Removes all but the newest {@link MAX_BUILDS} build folders beside `dir`, and stale temp files in `dir`. */
function prune(dir: string): void {
  const parent = join(dir, "..");
  const mtime = (path: string): number => {
    try {
      return statSync(path).mtimeMs;
    } catch {
      return 0; // removed meanwhile by another dockpack
    }
  };
  const builds = readdirSync(parent)
    .map((name) => ({ path: join(parent, name), mtime: mtime(join(parent, name)) }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of builds.slice(MAX_BUILDS))
    if (old.path !== dir) rmSync(old.path, { recursive: true, force: true });
  const hourAgo = Date.now() - 3600_000;
  for (const name of readdirSync(dir))
    if (name.endsWith(".tmp") && mtime(join(dir, name)) < hourAgo) rmSync(join(dir, name), { force: true });
}

/** Writes `data` to `file` in `dir` atomically (temp file + rename), unless `dir` is full. */
function writeCache(dir: string, file: string, data: Buffer): void {
  mkdirSync(dir, { recursive: true });
  prune(dir);
  const others = readdirSync(dir).filter((n) => n.endsWith(".v8") && join(dir, n) !== file);
  if (others.length >= MAX_FILES) return;
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Runs `f` with V8's code cache checksums on: V8 then writes a checksum into the data it produces
 * and rejects data whose checksum does not match (without it, corrupt bytecode crashes the
 * process). Only around the cache's own calls: any V8 flag changed while Node compiles one of its
 * built-in modules makes V8 reject Node's own code cache of it (its flag hash differs), and
 * workers would verify V8's start-up snapshot too; switched back, the flags hash as before.
 */
function withChecksums<T>(f: () => T): T {
  setFlagsFromString("--verify-snapshot-checksum");
  try {
    return f();
  } finally {
    setFlagsFromString("--no-verify-snapshot-checksum");
  }
}

/** What {@link runBundle} did with the cache (for tests and `DOCKPACK_COMPILE_CACHE_DEBUG=1`). */
export type CacheOutcome = "disabled" | "hit" | "miss" | "rejected";

/**
 * Reads a command's cache file: a 4-byte big-endian header length, the header (JSON: `[file name,
 * byte length]` pairs) and the cached data of each file in that order. Missing, unreadable,
 * malformed, not owned by this user or writable by others: an empty map.
 */
export function readCacheFile(path: string): Map<string, Buffer> {
  const map = new Map<string, Buffer>();
  try {
    // Bytecode runs as this user: only from a file that only this user can have written.
    const buf = readOwnFile(path);
    if (!buf) return map;
    const headerEnd = 4 + buf.readUInt32BE(0);
    const entries = JSON.parse(buf.toString("utf8", 4, headerEnd)) as unknown;
    if (!Array.isArray(entries)) return map;
    let at = headerEnd;
    for (const e of entries) {
      if (!Array.isArray(e) || typeof e[0] !== "string" || !Number.isSafeInteger(e[1]) || e[1] < 0) break;
      if (at + e[1] > buf.length) break;
      map.set(e[0], buf.subarray(at, at + e[1]));
      at += e[1];
    }
  } catch {
    map.clear(); // no cache yet, or not one: compile without
  }
  return map;
}

/** The bytes of a command's cache file holding `entries` (see {@link readCacheFile}). */
export function encodeCacheFile(entries: Map<string, Buffer>): Buffer {
  const header = Buffer.from(JSON.stringify([...entries].map(([name, data]) => [name, data.length])));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.length);
  return Buffer.concat([length, header, ...entries.values()]);
}

/** A file of the bundle as a module object, as a CommonJS module has one. */
interface BundleModule {
  exports: Record<string, unknown>;
}

/**
 * Runs `main` of the bundle in the folder `binUrl` (see the file comment) for the command in
 * `argv`, with the code cache of build `buildId`. Returns once the entry's top level ran (the
 * command goes on asynchronously). Cache errors are ignored; errors of the bundle propagate.
 */
export function runBundle(binUrl: URL, main: string, buildId: string, argv: string[]): CacheOutcome {
  const dir = fileURLToPath(binUrl);
  const disabled = process.env.DOCKPACK_NO_COMPILE_CACHE === "1";
  const cacheFile = disabled ? "" : join(cacheDir(buildId), `${commandKey(argv)}.v8`);
  const cached = disabled ? new Map<string, Buffer>() : readCacheFile(cacheFile);
  const scripts = new Map<string, Script>();
  const modules = new Map<string, BundleModule>();
  const nodeRequire = createRequire(join(dir, main));
  let outcome: CacheOutcome = disabled ? "disabled" : cached.size ? "hit" : "miss";

  /** Loads a file of the bundle once (as require() loads a module), with its cached bytecode. */
  const load = (name: string): Record<string, unknown> => {
    const loaded = modules.get(name);
    if (loaded) return loaded.exports;
    const filename = join(dir, name);
    // The bundle is ASCII (esbuild escapes the rest): latin1 is the cheapest exact decoding.
    const cachedData = cached.get(name);
    cached.delete(name); // consumed: not kept in memory for the rest of the run
    const source = readFileSync(filename, "latin1");
    const script = withChecksums(() => new Script(source, { filename, cachedData }));
    if (outcome === "hit" && (!cachedData || script.cachedDataRejected))
      outcome = cachedData ? "rejected" : "miss";
    scripts.set(name, script);
    const module: BundleModule = { exports: {} };
    modules.set(name, module);
    const run = script.runInThisContext() as (
      exports: unknown,
      require: NodeJS.Require,
      module: BundleModule,
      url: string,
    ) => void;
    run(module.exports, bundleRequire, module, binUrl.href + name);
    return module.exports;
  };
  const bundleRequire = Object.assign(
    (id: string) => (BUNDLE_FILE.test(id) ? load(id.slice(2)) : withV8Defaults(() => nodeRequire(id))),
    nodeRequire,
  ) as NodeJS.Require;

  if (!disabled)
    process.once("exit", (code) => {
      // Written when a file ran without its bytecode; never after a usage error (a mistyped command).
      if (outcome === "hit" || code === 2) return;
      try {
        const entries = withChecksums(
          () => new Map([...scripts].map(([name, s]) => [name, s.createCachedData()])),
        );
        writeCache(cacheDir(buildId), cacheFile, encodeCacheFile(entries));
      } catch {
        // a read-only or full cache folder: the next run compiles again
      }
    });
  // The bundle's parse cache (core/parse-cache.ts) lives beside this build's bytecode.
  if (!disabled) (globalThis as Record<symbol, unknown>)[PARSE_CACHE_DIR] = cacheDir(buildId);
  if (process.env.DOCKPACK_COMPILE_CACHE_DEBUG === "1")
    process.once("exit", () => process.stderr.write(`dockpack: compile cache ${outcome} ${cacheFile}\n`));
  load(main);
  return outcome;
}

/** The specifiers by which files of the bundle require each other (`./chunk-….js`, `./dockpack-main.js`). */
const BUNDLE_FILE = /^\.\/[\w-]+\.js$/;
