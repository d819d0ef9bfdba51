/**
 * Issue 14 C15–C17: the built package's public surface (dist/index.js, what `import … from
 * "dockpack"` gives) is one namespace per domain holding only the operations a user calls, plus the
 * error class and the Reporter factories — no internals. Every operation has one shape,
 * `(options, reporter?) → Promise<Result>`, takes `options.signal` and rolls back on abort; the
 * library installs no process signal handler.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ensureFixture } from "../helpers/fixtures.js";

const DIST = fileURLToPath(new URL("../../dist/index.js", import.meta.url));

/** What a user calls, per namespace (types are erased and not checked here). */
const SURFACE: Record<string, string[]> = {
  delta: ["applyDelta", "createDelta", "createInventory", "deltaInfo", "deltaList", "pullDelta", "pushDelta"],
  env: [
    "createEnvironment",
    "environmentBuild",
    "environmentDown",
    "environmentInfo",
    "environmentUp",
    "initEnvironments",
    "listEnvironments",
    "pruneEnvironments",
    "removeEnvironment",
  ],
  features: ["featureInfo", "packageFeatures", "publishFeatures"],
  image: ["openImage", "openImages", "parseImageRef", "writeImageTar"],
  packages: [
    "exportEnvironment",
    "importPackage",
    "inspectPackage",
    "listPackages",
    "listRemotePackages",
    "pullPackage",
    "pushPackage",
    "validatePackage",
  ],
  targets: [
    "addTarget",
    "buildAllTargets",
    "buildTarget",
    "initTargets",
    "listTargets",
    "removeTarget",
    "verifyTargets",
  ],
  tools: ["compileTool", "invokeTool", "listTools", "recoverTool", "startToolServer"],
};
const TOP = ["DockpackError", "createReporter", "isDockpackError", "silentReporter"];
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const listeners = () => SIGNALS.map((s) => process.listenerCount(s));
const before = listeners();

type Op = (options: Record<string, unknown>, reporter?: unknown) => Promise<unknown>;
type Lib = Record<string, Record<string, Op>> & {
  createReporter(o: Record<string, unknown>): Record<string, unknown>;
};
const load = async () => (await import(DIST)) as Lib;

test("dist/index.js exports one namespace per domain with only the user-facing operations", async () => {
  assert.ok(existsSync(DIST), `${DIST} is missing: npm run build (scripts/setup.sh builds it)`);
  const lib = (await import(DIST)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(lib).sort(), [...Object.keys(SURFACE), ...TOP].sort());
  for (const [ns, names] of Object.entries(SURFACE)) {
    const mod = lib[ns] as Record<string, unknown>;
    assert.deepEqual(Object.keys(mod).sort(), [...names].sort(), `namespace ${ns}`);
    for (const n of names) assert.equal(typeof mod[n], "function", `${ns}.${n}`);
  }
  // names the old flat surface leaked
  const all = Object.values(SURFACE).flat();
  for (const internal of [
    "bsdiffLimit",
    "MAGIC_LENGTH",
    "pendingCleanups",
    "renderInspection",
    "verifyPackage",
  ])
    assert.ok(!all.includes(internal) && !(internal in lib), internal);
  // one signature shape, (options, reporter?) → Promise<result>: at most one required parameter
  for (const [ns, names] of Object.entries(SURFACE))
    for (const n of names) {
      const fn = (lib[ns] as Record<string, (...a: unknown[]) => unknown>)[n];
      assert.ok(fn.length <= 1, `${ns}.${n} has ${fn.length} required parameters`);
    }
  assert.ok(new (lib.DockpackError as new (c: string, m: string) => Error)("X", "m") instanceof Error);
});

test("every operation takes one options object: the image namespace too", async () => {
  const lib = await load();
  assert.deepEqual(await lib.image.parseImageRef({ ref: "oci:/nowhere:v1" }), {
    transport: "oci",
    path: "/nowhere",
    select: "v1",
    raw: "oci:/nowhere:v1",
  });
  // an already aborted signal: nothing starts, INTERRUPTED at once (also for a quick operation)
  const ac = new AbortController();
  ac.abort();
  for (const [ns, op, options] of [
    ["env", "listEnvironments", {}],
    ["packages", "listPackages", { packageDir: tmpdir() }],
    ["image", "openImage", { ref: "dockpack-fixture/scratch:1" }],
    ["tools", "listTools", {}],
  ] as const)
    await assert.rejects(
      lib[ns][op]({ ...options, signal: ac.signal }),
      { code: "INTERRUPTED" },
      `${ns}.${op}`,
    );
});

test("aborting options.signal mid-operation rolls back (delta.createDelta during docker save); no signal handler", async () => {
  const image = await ensureFixture("debian");
  const lib = await load();
  const dir = mkdtempSync(join(tmpdir(), "dockpack-library-abort-"));
  // this process's temp folders (core/fs/temp names them with the pid)
  const mine = () => readdirSync(tmpdir()).filter((n) => n.includes(`p${process.pid}t`));
  const ac = new AbortController();
  let tempAtAbort: string[] = [];
  const base = lib.createReporter({ level: "error" }) as {
    progress(l: string, t?: number): Record<string, unknown>;
  };
  const reporter = {
    ...base,
    progress(label: string, total?: number) {
      const p = base.progress(label, total) as { update(n: number): void; increment(n?: number): void };
      const abortOnce = () => {
        if (ac.signal.aborted) return;
        tempAtAbort = mine();
        ac.abort("test");
      };
      return {
        ...p,
        update(n: number) {
          if (n > 0) abortOnce();
          p.update(n);
        },
        increment(n?: number) {
          abortOnce();
          p.increment(n);
        },
      };
    },
  };
  try {
    await assert.rejects(
      lib.delta.createDelta({ image, output: join(dir, "app.dpd"), signal: ac.signal }, reporter),
      { code: "INTERRUPTED" },
    );
    assert.ok(ac.signal.aborted, "the operation reported progress before it ended");
    assert.ok(tempAtAbort.length > 0, "a temp folder existed when the abort came");
    assert.deepEqual(readdirSync(dir), [], "no delta package (nor a partial one) is left");
    assert.deepEqual(mine(), [], "the temp folders are removed");
    assert.deepEqual(listeners(), before, "the library installed no SIGINT/SIGTERM/SIGHUP handler");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("tools.startToolServer({ id, signal }): aborting the signal closes the server", async () => {
  const lib = await load();
  const ac = new AbortController();
  const svc = (await lib.tools.startToolServer({
    id: "upper",
    toolsDir: fileURLToPath(new URL("../../examples/tools", import.meta.url)),
    port: 0,
    signal: ac.signal,
  })) as { url: string; close(): Promise<void> };
  const health = await fetch(`${svc.url}/api/health`);
  assert.equal(health.status, 200);
  await health.arrayBuffer();
  ac.abort();
  // closed: new connections are refused
  let refused = false;
  for (let i = 0; i < 100 && !refused; i++)
    refused = await fetch(`${svc.url}/api/health`).then(
      async (r) => {
        await r.arrayBuffer();
        await new Promise((r) => setTimeout(r, 50));
        return false;
      },
      () => true,
    );
  assert.ok(refused, "the server still answers after the abort");
  await svc.close();
  assert.deepEqual(listeners(), before);
});
