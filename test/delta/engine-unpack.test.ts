/**
 * The engine's `docker save` unpacked by GNU tar straight from the docker CLI (image/save-unpack,
 * used by delta create): the same members and bytes as node's own unpacking, each layer's
 * bytes matching its diff_id, members reported before the save ends; SIGTERM while it runs
 * stops the CLI and tar, exits 143 and leaves no temp folder and no process writing into one.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Image } from "../../src/image/image.js";
import { openImages } from "../../src/image/open.js";
import { canUnpackNatively } from "../../src/image/save-unpack.js";
import { needsEngine } from "../helpers/engine.js";

const SCRIPT = fileURLToPath(new URL("../../scripts/delta-fixtures.sh", import.meta.url));
const DIST = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const CLI = existsSync(DIST) ? [DIST] : ["--import", import.meta.resolve("tsx"), MAIN];
const V1 = "dockpack-test/delta-small:1";
const V2 = "dockpack-test/delta-small:2";

async function layerBytes(image: Image): Promise<{ diffId: string; sha: string; size: number }[]> {
  const out = [];
  for (const l of image.layers) {
    const r = await image.container.range(l.blob);
    const bytes = readFileSync(r.file);
    out.push({
      diffId: l.diffId,
      sha: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
      size: r.size,
    });
  }
  return out;
}

test("GNU tar unpacks the engine's save: same members and bytes as node's unpacking, members reported early", async (t) => {
  if (!needsEngine(t)) return;
  execFileSync("bash", [SCRIPT, "small"], { stdio: ["ignore", "ignore", "inherit"] });
  assert.ok(canUnpackNatively(), "docker CLI, unix socket and GNU tar are installed (scripts/setup.sh)");
  const seen: string[] = [];
  const native = await openImages([V2, V1], undefined, {
    hashLayers: false,
    onMember: (m) => {
      assert.ok(readFileSync(m.file).length === m.size, `${m.path} complete when reported`);
      seen.push(m.path);
    },
  });
  const node = await openImages([V2, V1], undefined, { hashLayers: true });
  try {
    assert.ok(native[0].container.location.startsWith("docker save of"));
    assert.deepEqual(
      (await native[0].container.members()).map((m) => m.path).sort(),
      (await node[0].container.members()).map((m) => m.path).sort(),
    );
    assert.deepEqual([...seen].sort(), (await native[0].container.members()).map((m) => m.path).sort());
    for (let i = 0; i < 2; i++) {
      assert.equal(native[i].configDigest, node[i].configDigest);
      const a = await layerBytes(native[i]);
      assert.deepEqual(a, await layerBytes(node[i]));
      for (const l of a) assert.equal(l.sha, l.diffId, "each layer file holds the bytes of its diff_id");
    }
  } finally {
    for (const img of [...native, ...node]) await img.close();
  }
});

test("SIGTERM while the engine's save is unpacked: exit 143, no temp folder, no docker save or tar left", async (t) => {
  if (!needsEngine(t)) return;
  execFileSync("bash", [SCRIPT, "small"], { stdio: ["ignore", "ignore", "inherit"] });
  const work = mkdtempSync(join(tmpdir(), "dockpack-delta-unpack-int-"));
  try {
    const child = spawn(
      process.execPath,
      [...CLI, "delta", "create", "--base", V1, V2, join(work, "out.dpd")],
      { env: { ...process.env, TMPDIR: work }, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    // The save's folder appears: stop create then, while docker save and tar run.
    let saveDir: string | undefined;
    const watcher = watch(work, (_e, name) => {
      if (!saveDir && name?.startsWith("dockpack-image-")) {
        saveDir = join(work, name);
        child.kill("SIGTERM");
      }
    });
    const code = await new Promise<number | null>((resolve) =>
      child.on("exit", (c, sig) => resolve(c ?? (sig ? 128 + 15 : null))),
    );
    watcher.close();
    assert.ok(saveDir, `the save's temp folder appeared (${stderr})`);
    assert.equal(code, 143, stderr);
    assert.deepEqual(
      readdirSync(work).filter((n) => !n.startsWith("tsx-")),
      [],
      "no package, no temp folder",
    );
    let writers = "";
    try {
      writers = execFileSync("pgrep", ["-af", saveDir as string]).toString();
    } catch {
      // pgrep exits 1: no such process
    }
    assert.equal(writers, "", "no docker save or tar still writing into the removed folder");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
