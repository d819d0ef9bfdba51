/**
 * The installed command's parse cache (src/core/parse-cache.ts, issue 14 C18): `tool list` run
 * again on the same tool.yaml files prints what a run without any cache prints, a changed or
 * broken file is parsed again, and a cache file others may write is not used. Runs the bundle
 * (`dist/bin/dockpack.js`, needs `npm run build`) with its own XDG_CACHE_HOME; and cachedParse
 * in-process.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { deserialize, serialize } from "node:v8";
import { cachedParse, PARSE_CACHE_DIR } from "../../src/core/parse-cache.js";
import { craftPackage } from "../env/craft.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "dist/bin/dockpack.js");
const tmp = mkdtempSync(join(tmpdir(), "dockpack-parse-cache-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const home = join(tmp, "home");
const tools = join(tmp, "tools");
cpSync(join(ROOT, "examples/tools"), tools, { recursive: true });

/** `dockpack --json ARGS` with cache home `cacheHome`, or with no cache at all. */
function dockpack(
  args: string[],
  cache = true,
  cacheHome = home,
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, "--json", ...args], {
    env: {
      ...process.env,
      NO_COLOR: "1",
      XDG_CACHE_HOME: cacheHome,
      ...(cache ? {} : { DOCKPACK_NO_COMPILE_CACHE: "1" }),
    },
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `dockpack --json tool list` of the copied tools with cache home `cacheHome` (or no cache at all). */
const list = (cache = true, cacheHome = home) =>
  dockpack(["tool", "list", "--tools-dir", tools], cache, cacheHome);

/** The parse cache file of tool manifests under `home`. */
function cacheFile(): string | undefined {
  const dir = join(home, "dockpack", "compile-cache");
  const rel = readdirSync(dir, { recursive: true, encoding: "utf8" }).find((f) =>
    f.endsWith("parsed-tool-manifest.bin"),
  );
  return rel && join(dir, rel);
}

test("tool list from the parse cache prints what a run without cache prints, and follows file changes", () => {
  const plain = list(false);
  assert.equal(plain.code, 0, plain.stderr);
  for (let i = 0; i < 3; i++) {
    const r = list();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, plain.stdout);
    assert.equal(r.stderr, plain.stderr);
  }
  assert.ok(cacheFile(), "the first run wrote the cache");
  const upper = join(tools, "upper", "tool.yaml");
  writeFileSync(upper, readFileSync(upper, "utf8").replace(/^description: .*$/m, "description: changed"));
  const changed = list();
  assert.equal(changed.stdout, list(false).stdout);
  assert.match(changed.stdout, /"changed"/);
  // A broken manifest is reported as without cache (errors are never cached).
  writeFileSync(upper, readFileSync(upper, "utf8").replace(/^type: .*$/m, "type: nope"));
  const broken = list();
  assert.equal(broken.code, 0, broken.stderr);
  assert.equal(broken.stdout, list(false).stdout);
  assert.match(broken.stdout, /TOOL_MANIFEST_INVALID/);
});

test("an unwritable cache folder changes nothing but the time", () => {
  const blocked = join(tmp, "blocked");
  mkdirSync(blocked);
  writeFileSync(join(blocked, "dockpack"), "a file, not a folder");
  const plain = list(false);
  for (let i = 0; i < 2; i++) {
    const r = list(true, blocked);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, plain.stdout);
    assert.equal(r.stderr, plain.stderr);
  }
});

test("a parse cache file that others may write is not used", () => {
  const file = cacheFile();
  assert.ok(file);
  const plain = list(false).stdout;
  // The same texts with other results: used only from a file that only this user can write.
  const entries = deserialize(readFileSync(file)) as [string, Buffer][];
  const poisoned = entries.map(([text, value]) => [
    text,
    serialize({ ...(deserialize(value) as object), description: "POISON" }),
  ]);
  writeFileSync(file, serialize(poisoned), { mode: 0o600 });
  chmodSync(file, 0o600);
  assert.match(list().stdout, /POISON/, "the test's entries match the texts read");
  writeFileSync(file, serialize(poisoned));
  chmodSync(file, 0o666);
  assert.equal(list().stdout, plain);
  chmodSync(file, 0o620);
  assert.equal(list().stdout, plain);
  writeFileSync(file, "not a cache");
  chmodSync(file, 0o600);
  assert.equal(list().stdout, plain);
});

test("cachedParse gives each caller its own object, keeps no error and parses without a cache folder", async () => {
  const slot = globalThis as Record<symbol, unknown>;
  let calls = 0;
  const parse = () => ({ n: ++calls, list: [1] });
  // No cache folder (the library, tests): parsed every time.
  assert.equal((await cachedParse("test-none", "a", parse)).n, 1);
  assert.equal((await cachedParse("test-none", "a", parse)).n, 2);
  // A folder that cannot be made: the file written at exit would outlive the test's temp folder.
  slot[PARSE_CACHE_DIR] = "/dev/null/dockpack-parse-cache";
  try {
    const first = await cachedParse("test-own", "a", parse);
    const second = await cachedParse("test-own", "a", parse);
    assert.deepEqual(second, first);
    assert.notEqual(second, first);
    second.list.push(2);
    assert.deepEqual((await cachedParse("test-own", "a", parse)).list, [1]);
    assert.equal(calls, 3, "parsed once for text 'a'");
    await assert.rejects(
      cachedParse("test-own", "bad", () => {
        throw new Error("bad input");
      }),
      /bad input/,
    );
    assert.equal((await cachedParse("test-own", "bad", parse)).n, 4, "the error was not cached");
  } finally {
    delete slot[PARSE_CACHE_DIR];
  }
});

/** `dockpack --json packages inspect FILE` with the parse cache (or none). */
const inspect = (file: string, cache = true) => dockpack(["packages", "inspect", file], cache);

test("packages inspect from the parse cache reports what a run without cache reports; other compose texts are inspected again", async () => {
  const compose = (port: string) =>
    `services:\n  web:\n    image: nginx\n    ports: ["${port}:80"]\n  db:\n    image: postgres\n    privileged: true\n    volumes: ["/etc:/host-etc"]\n`;
  const secret = "API_TOKEN=do-not-store-me\n";
  const make = async (name: string, port: string) => {
    const file = join(tmp, name);
    await craftPackage(file, {
      members: [
        { name: "environment/docker-compose.yml", body: compose(port) },
        { name: "environment/.env", body: secret },
      ],
    });
    return file;
  };
  const a = await make("a.dockpack.tar", "8080");
  const plain = inspect(a, false);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /8080:80/);
  for (let i = 0; i < 2; i++) {
    const r = inspect(a);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, plain.stdout);
  }
  const b = await make("b.dockpack.tar", "9090");
  const other = inspect(b);
  assert.equal(other.stdout, inspect(b, false).stdout);
  assert.match(other.stdout, /9090:80/);
  assert.doesNotMatch(other.stdout, /8080:80/);
  // the cache holds digests of the packaged texts and the inspection, never the texts (.env secrets)
  const dir = join(home, "dockpack", "compile-cache");
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) =>
    f.endsWith("parsed-package-compose.bin"),
  );
  assert.equal(files.length, 1, "the inspection was cached");
  assert.ok(!readFileSync(join(dir, files[0] as string)).includes("do-not-store-me"));
});
