/**
 * Issue 14 C17: the built package's public surface (dist/index.js, what `import … from "dockpack"`
 * gives) is one namespace per domain holding only the operations a user calls, plus the error
 * class, the Reporter factories and withSignal — no internals.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

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
const TOP = ["DockpackError", "createReporter", "isDockpackError", "silentReporter", "withSignal"];

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
  // (the image namespace is the image model: functions of an image reference and options)
  for (const [ns, names] of Object.entries(SURFACE))
    if (ns !== "image")
      for (const n of names) {
        const fn = (lib[ns] as Record<string, (...a: unknown[]) => unknown>)[n];
        assert.ok(fn.length <= 1, `${ns}.${n} has ${fn.length} required parameters`);
      }
  assert.equal(typeof lib.withSignal, "function");
  assert.ok(new (lib.DockpackError as new (c: string, m: string) => Error)("X", "m") instanceof Error);
});
