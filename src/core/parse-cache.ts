/**
 * The installed command's cache of parse results (issue 14 C18): `tool list` reads every tool's
 * `tool.yaml`, and parsing them (the `yaml` library, then the zod schema) was most of what the
 * command spent beyond `--help`. The result of parsing a text is cached under that exact text
 * (the whole text is the key: a changed byte is a miss), so a later run that reads the same
 * files loads neither the YAML parser nor zod. The parsers stay the parsers of record: a miss, or
 * any text whose parse throws, goes through them, and only their successful results are stored.
 *
 * Active only inside the bundled `dockpack` command: its launcher (cli/compile-cache.ts) sets
 * {@link PARSE_CACHE_DIR} to its build's code cache folder, so a rebuilt dockpack (other parser
 * code) never meets another build's results, and old builds' results go with their folder. The
 * library, tests and `DOCKPACK_NO_COMPILE_CACHE=1` parse every time.
 *
 * File: `<build folder>/parsed-<kind>.bin`, `v8.serialize` of `[text, serialized result][]` (a
 * result is deserialized at each use, so callers never share an object), written at exit (temp
 * file + rename) after a run that parsed something new; at most {@link MAX_ENTRIES} texts, those of
 * the last run first. Read only when this user owns it and others cannot write it (the results
 * become tool commands); anything unreadable or malformed is an empty cache.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deserialize, serialize } from "node:v8";
import { readOwnFile } from "./fs/own-file.js";

/** Global slot (a registered symbol, shared by the launcher and the bundle) holding the cache folder. */
export const PARSE_CACHE_DIR = Symbol.for("dockpack.parse-cache-dir");
/** Texts kept per kind. */
export const MAX_ENTRIES = 256;

interface Store {
  file: string;
  /** Text → `v8.serialize`d result. */
  entries: Map<string, Buffer>;
  /** Texts looked up or added in this run (kept first when the file is written). */
  used: Set<string>;
  dirty: boolean;
}

const stores = new Map<string, Store | undefined>();

function store(kind: string): Store | undefined {
  if (stores.has(kind)) return stores.get(kind);
  const dir = (globalThis as Record<symbol, unknown>)[PARSE_CACHE_DIR];
  let s: Store | undefined;
  if (typeof dir === "string" && /^[\w.-]+$/.test(kind)) {
    const file = join(dir, `parsed-${kind}.bin`);
    s = { file, entries: readEntries(file), used: new Set(), dirty: false };
    const st = s;
    process.once("exit", () => save(st));
  }
  stores.set(kind, s);
  return s;
}

function readEntries(file: string): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  try {
    const data = readOwnFile(file);
    const list = data ? (deserialize(data) as unknown) : [];
    if (!Array.isArray(list)) return entries;
    for (const e of list)
      if (Array.isArray(e) && typeof e[0] === "string" && Buffer.isBuffer(e[1])) entries.set(e[0], e[1]);
  } catch {
    entries.clear(); // not a cache file: parse again
  }
  return entries;
}

function save(s: Store): void {
  if (!s.dirty) return;
  const texts = [...s.used, ...[...s.entries.keys()].filter((t) => !s.used.has(t))].slice(0, MAX_ENTRIES);
  const tmp = `${s.file}.${process.pid}.tmp`;
  try {
    mkdirSync(join(s.file, ".."), { recursive: true });
    writeFileSync(tmp, serialize(texts.map((t) => [t, s.entries.get(t)])), { mode: 0o600 });
    renameSync(tmp, s.file);
  } catch {
    // a read-only or full cache folder: the next run parses again
    try {
      rmSync(tmp, { force: true });
    } catch {
      // never written
    }
  }
}

/**
 * The result of `parse()` for `text`, from the cache when an earlier run of this build parsed the
 * same text (see the file comment), else from `parse()` (stored when it returns; an error it
 * throws propagates and nothing is stored).
 * @param kind what the text is, a file name part (`tool-manifest`)
 * @param text the whole input of `parse` (what its result depends on besides the build)
 * @param parse the parser of record; may load its modules lazily
 */
export async function cachedParse<T>(kind: string, text: string, parse: () => T | Promise<T>): Promise<T> {
  const s = store(kind);
  const hit = s?.entries.get(text);
  if (s && hit) {
    try {
      const value = deserialize(hit) as T;
      s.used.add(text);
      return value;
    } catch {
      s.entries.delete(text);
    }
  }
  const value = await parse();
  // `__proto__` keys may give an object another prototype, which serializing would not keep.
  if (s && !text.includes("__proto__")) {
    try {
      s.entries.set(text, serialize(value));
      s.used.add(text);
      s.dirty = true;
    } catch {
      // a value V8 cannot serialize: parsed every time
    }
  }
  return value;
}
