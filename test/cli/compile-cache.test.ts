/**
 * The installed command's V8 code cache (src/cli/compile-cache.ts, issue 14 C18): a command's
 * first run writes its cache, later runs use it; a corrupt, truncated or foreign cache file and an
 * unwritable cache folder never change what the command does. Runs the bundle
 * (`dist/bin/dockpack.js`, needs `npm run build`) with its own XDG_CACHE_HOME.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { commandKey, encodeCacheFile, readCacheFile } from "../../src/cli/compile-cache.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "dist/bin/dockpack.js");
const tmp = mkdtempSync(join(tmpdir(), "dockpack-compile-cache-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the bundle with cache home `home`; `outcome` is what the launcher reports on stderr. */
function run(home: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", XDG_CACHE_HOME: home, DOCKPACK_COMPILE_CACHE_DEBUG: "1", ...env },
    encoding: "utf8",
  });
  const m = /dockpack: compile cache (\w+) (.*)\n/.exec(r.stderr);
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr.replace(/dockpack: compile cache .*\n/, ""),
    outcome: m?.[1],
    file: m?.[2],
  };
}

/** The cache files under `home` (relative paths). */
function cacheFiles(home: string): string[] {
  try {
    return readdirSync(join(home, "dockpack", "compile-cache"), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".v8"))
      .sort();
  } catch {
    return [];
  }
}

test("commandKey names a command by its first two words and help/version", () => {
  assert.equal(commandKey([]), "root");
  assert.equal(commandKey(["--version"]), "version");
  assert.equal(commandKey(["--help"]), "help");
  assert.equal(commandKey(["env", "list", "--json"]), "env-list");
  assert.equal(commandKey(["-C", "/x", "--log-level", "debug", "env", "info", "main"]), "env-info");
  assert.equal(commandKey(["tool", "list", "-h"]), "tool-list-help");
  assert.equal(commandKey(["packages", "inspect", "/tmp/A.dockpack.tar"]), "packages-inspect");
  assert.equal(commandKey(["login", "registry.example:5000"]), "login");
  assert.equal(commandKey(["../../etc"]), "root");
});

test("the cache file format reads back what it wrote and ignores garbage", () => {
  const entries = new Map([
    ["a.js", Buffer.from("abc")],
    ["chunk-X.js", Buffer.alloc(0)],
  ]);
  const file = join(tmp, "format.v8");
  writeFileSync(file, encodeCacheFile(entries));
  assert.deepEqual(readCacheFile(file), entries);
  for (const garbage of [Buffer.alloc(0), Buffer.from("not a cache"), Buffer.from([0, 0, 0, 200, 1, 2])]) {
    writeFileSync(file, garbage);
    assert.equal(readCacheFile(file).size, 0);
  }
  assert.equal(readCacheFile(join(tmp, "missing.v8")).size, 0);
});

test("the first run writes the command's cache, the next ones use it with the same output", () => {
  const home = join(tmp, "fresh");
  const first = run(home, ["tool", "list", "--tools-dir", "examples/tools"]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.outcome, "miss");
  assert.deepEqual(
    cacheFiles(home).map((f) => f.split("/").pop()),
    ["tool-list.v8"],
  );
  const second = run(home, ["tool", "list", "--tools-dir", "examples/tools"]);
  assert.equal(second.outcome, "hit");
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout, first.stdout);
  assert.equal(second.stderr, first.stderr);
  // A usage error (exit 2) leaves no cache; the escape hatch neither reads nor writes one.
  assert.equal(run(home, ["tool", "lsit"]).code, 2);
  const off = run(home, ["--version"], { DOCKPACK_NO_COMPILE_CACHE: "1" });
  assert.equal(off.outcome, "disabled");
  assert.equal(off.code, 0);
  assert.equal(cacheFiles(home).length, 1);
});

test("a corrupt, truncated, foreign or writable-by-others cache file is compiled without and rewritten", () => {
  const home = join(tmp, "corrupt");
  const ok = run(home, ["targets", "--help"]);
  assert.equal(ok.outcome, "miss");
  const file = ok.file!;
  const good = readFileSync(file);
  const entries = readCacheFile(file);
  const foreign = encodeCacheFile(
    new Map([...entries].map(([name, data]) => [name, Buffer.from(data).fill(7, 64)])),
  );
  for (const bad of [Buffer.from("garbage"), good.subarray(0, good.length >> 1), foreign]) {
    writeFileSync(file, bad);
    const r = run(home, ["targets", "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, ok.stdout);
    assert.notEqual(r.outcome, "hit");
    assert.equal(run(home, ["targets", "--help"]).outcome, "hit", "the cache was rewritten");
  }
  // Bytecode runs as this user: a cache file others may write is not used, and is replaced.
  chmodSync(file, 0o666);
  assert.equal(run(home, ["targets", "--help"]).outcome, "miss");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(run(home, ["targets", "--help"]).outcome, "hit");
});

test("an unwritable cache folder changes nothing but the time", () => {
  // A file where the cache folder would be: mkdir fails (also for root, unlike a read-only mode).
  const home = join(tmp, "blocked");
  mkdirSync(home);
  writeFileSync(join(home, "dockpack"), "a file, not a folder");
  for (let i = 0; i < 2; i++) {
    const r = run(home, ["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    assert.equal(r.outcome, "miss");
  }
});
