/**
 * The in-place delta package (src/delta/package-in-place.ts) on its own: appended members named
 * at the end, the metadata filled into its reservation; finish declines (and commits nothing)
 * when the metadata outgrows the reservation or an appended member is not shipped; an abort
 * leaves no file. And `delta create -m layer` from the engine killed with SIGKILL at several
 * moments leaves neither a package nor a temp file next to it.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { DeltaMetadata } from "../../src/delta/format.js";
import { startInPlacePackage } from "../../src/delta/package-in-place.js";
import { CLI_ARGS } from "../helpers/cli.js";
import { needsEngine } from "../helpers/engine.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-inplace-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const fakeMetadata = (note: string) => ({ format: "dockpack-delta", note }) as unknown as DeltaMetadata;

async function started(name: string) {
  const path = join(dir, name);
  const p = await startInPlacePackage(path, false);
  assert.ok(p, "O_TMPFILE and /proc/self/fd are there (Linux)");
  const w = await p.prepare(4096);
  const m = await w.beginAppended();
  appendFileSync(w.path, Buffer.alloc(1000, 7)); // what zstd appends through its O_APPEND descriptor
  await w.endAppended(m);
  return { path, p, m };
}

test("finish names the appended member, adds the config and fills the metadata in", async () => {
  const { path, p, m } = await started("ok.dpd");
  assert.equal(existsSync(path), false, "nothing under the name before the commit");
  const size = await p.finish(
    fakeMetadata("x"),
    Buffer.from("{}"),
    [{ name: "layers/000-a.full.tar.zst", file: "", inPackage: m }],
    [m],
  );
  assert.equal(size, readFileSync(path).length);
  assert.deepEqual(execFileSync("tar", ["-tf", path]).toString().trim().split("\n"), [
    "dockpack-delta.json",
    "layers/000-a.full.tar.zst",
    "config.json",
  ]);
  assert.deepEqual(JSON.parse(execFileSync("tar", ["-xOf", path, "dockpack-delta.json"]).toString()), {
    format: "dockpack-delta",
    note: "x",
  });
  assert.deepEqual(execFileSync("tar", ["-xOf", path, "layers/000-a.full.tar.zst"]), Buffer.alloc(1000, 7));
  await p.abort(); // after a commit: nothing to do
  assert.ok(existsSync(path));
});

test("finish declines when the metadata outgrows its room or an appended member is not shipped; abort leaves nothing", async () => {
  const { path, p, m } = await started("no.dpd");
  const member = [{ name: "layers/000-a.full.tar.zst", file: "", inPackage: m }];
  assert.equal(await p.finish(fakeMetadata("y".repeat(5000)), Buffer.from("{}"), member, [m]), undefined);
  assert.equal(await p.finish(fakeMetadata("y"), Buffer.from("{}"), [], [m]), undefined);
  await p.abort();
  assert.equal(existsSync(path), false);
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.startsWith(".no.dpd")),
    [],
  );
});

const V1 = "dockpack-test/delta-small:1";
const V2 = "dockpack-test/delta-small:2";
const SCRIPT = fileURLToPath(new URL("../../scripts/delta-fixtures.sh", import.meta.url));

test("delta create -m layer from the engine killed with SIGKILL leaves no package and no temp file", async (t) => {
  if (!needsEngine(t)) return;
  execFileSync("bash", [SCRIPT, "small"], { stdio: ["ignore", "ignore", "inherit"] });
  const out = mkdtempSync(join(dir, "out-"));
  const work = mkdtempSync(join(dir, "tmp-"));
  const pkg = join(out, "p.dpd");
  // Kill points: when the save's temp folder appears, and at growing delays after it.
  for (const after of [0, 50, 150, 300, 600, 1000]) {
    const child = spawn(
      process.execPath,
      [...CLI_ARGS, "delta", "create", "--base", V1, "-m", "layer", V2, pkg],
      {
        env: { ...process.env, TMPDIR: work },
        stdio: "ignore",
      },
    );
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    let finished = false;
    void exited.then(() => {
      finished = true;
    });
    while (!finished && !readdirSync(work).some((n) => n.startsWith("dockpack-image-")))
      await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, after));
    child.kill("SIGKILL");
    await exited;
    if (existsSync(pkg)) {
      // It finished before the kill: a whole package, never a part of one.
      execFileSync("tar", ["-tf", pkg]);
      rmSync(pkg);
    }
    assert.deepEqual(
      readdirSync(out),
      [],
      `kill ${after} ms after the save started: nothing next to the package`,
    );
  }
  // Ctrl-C (SIGINT) while the layers stream into the package: exit 130, and the run removes its
  // own temp folder.
  for (const after of [100, 400]) {
    const child = spawn(
      process.execPath,
      [...CLI_ARGS, "delta", "create", "--base", V1, "-m", "layer", V2, pkg],
      {
        env: { ...process.env, TMPDIR: work },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const code = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    const before = new Set(readdirSync(work));
    while (!readdirSync(work).some((n) => n.startsWith("dockpack-image-") && !before.has(n)))
      await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, after));
    child.kill("SIGINT");
    const c = await code;
    if (c === 0) rmSync(pkg);
    else {
      assert.equal(c, 130, stderr);
      assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
    }
    assert.deepEqual(readdirSync(out), []);
    assert.deepEqual(
      readdirSync(work).filter((n) => !before.has(n)),
      [],
      "the interrupted run removed its temp folder",
    );
  }
  // The next run sweeps the dead runs' temp folders and writes the package.
  execFileSync(process.execPath, [...CLI_ARGS, "delta", "create", "--base", V1, "-m", "layer", V2, pkg], {
    env: { ...process.env, TMPDIR: work },
    stdio: "ignore",
  });
  assert.deepEqual(readdirSync(out), ["p.dpd"]);
  assert.deepEqual(
    readdirSync(work).filter((n) => n.startsWith("dockpack-")),
    [],
  );
});
