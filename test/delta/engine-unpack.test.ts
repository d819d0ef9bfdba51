/**
 * The engine's `docker save` unpacked by GNU tar straight from the docker CLI (image/save-unpack,
 * used by delta create): the same members and bytes as node's own unpacking, each layer's
 * bytes matching its diff_id, members reported before the save ends; SIGTERM while it runs
 * stops the CLI and tar, exits 143 and leaves no temp folder and no process writing into one.
 * With `packLayers` (-m layer), the layers the target lacks are stored zstd-compressed, each
 * decompressing to the bytes of its diff_id, and SIGTERM leaves no tar script or zstd behind.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { inspectImage } from "../../src/core/docker/images.js";
import { ZSTD_LONG_THRESHOLD } from "../../src/delta/methods.js";
import type { ExtractedContainer } from "../../src/image/extract.js";
import type { Image } from "../../src/image/image.js";
import { openImages } from "../../src/image/open.js";
import { canPackNatively, canUnpackNatively } from "../../src/image/save-unpack.js";
import { needsEngine } from "../helpers/engine.js";

const SCRIPT = fileURLToPath(new URL("../../scripts/delta-fixtures.sh", import.meta.url));
const DIST = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const CLI = existsSync(DIST) ? [DIST] : ["--import", import.meta.resolve("tsx"), MAIN];
// Private tags of the shared fixtures: test/delta/engine.test.ts removes and reloads
// dockpack-test/delta-small:2 while it runs, in parallel with this file.
const V1 = `dockpack-test/delta-unpack-${process.pid}:1`;
const V2 = `dockpack-test/delta-unpack-${process.pid}:2`;
let tagged = false;

/** Builds the fixtures when missing and tags them privately (again when another file untagged them first). */
function fixtures(): void {
  if (tagged) return;
  for (let attempt = 1; ; attempt++) {
    execFileSync("bash", [SCRIPT, "small"], { stdio: ["ignore", "ignore", "inherit"] });
    try {
      for (const v of ["1", "2"]) {
        execFileSync("docker", ["tag", `dockpack-test/delta-small:${v}`, v === "1" ? V1 : V2], {
          stdio: "pipe",
        });
      }
      tagged = true;
      return;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

test.after(() => {
  if (tagged) execFileSync("docker", ["rmi", V1, V2], { stdio: "ignore" });
});

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
  fixtures();
  assert.ok(
    await canUnpackNatively(),
    "docker CLI, unix socket and GNU tar are installed (scripts/setup.sh)",
  );
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

test("-m layer packing: layers the target lacks are zstd-compressed (and hashed) while the save streams, bytes of their diff_id; the layers it has are dropped", async (t) => {
  if (!needsEngine(t)) return;
  fixtures();
  assert.ok(
    await canPackNatively(),
    "docker CLI, unix socket, GNU tar and zstd are installed (scripts/setup.sh)",
  );
  const have = new Set((await inspectImage(V1)).RootFS?.Layers ?? []);
  const [image] = await openImages([V2], undefined, {
    hashLayers: false,
    packLayers: { level: 3, longAbove: ZSTD_LONG_THRESHOLD, have },
  });
  try {
    const c = image.container as ExtractedContainer;
    let packed = 0;
    for (const l of image.layers) {
      const p = c.packed(l.blob);
      if (c.dropped(l.blob)) {
        assert.ok(have.has(l.diffId), `${l.blob}: only a layer the target has is dropped`);
        assert.equal(l.codec, "none");
        const [whole] = await openImages([V2], undefined, { hashLayers: true });
        try {
          assert.equal(l.size, whole.layers[l.index].size, `${l.blob}: its size is kept`);
        } finally {
          await whole.close();
        }
        continue;
      }
      const file = (await c.range(l.blob)).file;
      const bytes = p
        ? execFileSync("zstd", ["-d", "-c", "-q", file], { maxBuffer: 1 << 30 })
        : readFileSync(file);
      assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, l.diffId, l.blob);
      assert.equal(l.size, bytes.length, `${l.blob}: uncompressed size known without reading`);
      if (p) {
        packed++;
        const stored = readFileSync(file);
        assert.deepEqual(p, {
          codec: "zstd",
          level: 3,
          long: false,
          size: bytes.length,
          stored: {
            digest: `sha256:${createHash("sha256").update(stored).digest("hex")}`,
            size: stored.length,
          },
        });
        assert.equal(l.codec, "zstd");
      } else assert.equal(l.codec, "none");
      if (!have.has(l.diffId)) assert.ok(p, `${l.blob}: a layer the target lacks is compressed`);
    }
    assert.ok(packed >= 2, "the changed layers are compressed");
    assert.ok(
      c.dropped(image.layers[0].blob),
      "the bottom layer, which the target has, is neither compressed nor written",
    );
    assert.ok(
      !(await c.members()).some((m) => m.path.startsWith(".dockpack")),
      "the script's notes are gone",
    );
  } finally {
    await image.close();
  }
});

/** Processes whose arguments or environment name `dir` (docker save, tar and tar's scripts). */
function writersInto(dir: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "latin1");
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "latin1");
      if (env.includes(dir) || cmd.includes(dir)) out.push(`${pid}: ${cmd.replaceAll("\0", " ")}`);
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

for (const method of ["xdelta3", "layer"]) {
  test(`SIGTERM while the engine's save is unpacked (-m ${method}): exit 143, no temp folder, no docker save, tar or zstd left`, async (t) => {
    if (!needsEngine(t)) return;
    fixtures();
    const work = mkdtempSync(join(tmpdir(), "dockpack-delta-unpack-int-"));
    try {
      const child = spawn(
        process.execPath,
        [...CLI, "delta", "create", "-m", method, "--base", V1, V2, join(work, "out.dpd")],
        { env: { ...process.env, TMPDIR: work }, stdio: ["ignore", "ignore", "pipe"] },
      );
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      // The save's folder appears: stop create then, while docker save and tar run (with -m
      // layer, once tar's script wrote the first member into it).
      let saveDir: string | undefined;
      let inner: ReturnType<typeof watch> | undefined;
      const watcher = watch(work, (_e, name) => {
        if (!saveDir && name?.startsWith("dockpack-image-")) {
          saveDir = join(work, name);
          if (method !== "layer") child.kill("SIGTERM");
          else {
            try {
              inner = watch(saveDir, (_e2, n2) => {
                if (n2 && !n2.startsWith(".dockpack")) child.kill("SIGTERM");
              });
              inner.on("error", () => child.kill("SIGTERM"));
            } catch {
              child.kill("SIGTERM"); // already gone
            }
          }
        }
      });
      const code = await new Promise<number | null>((resolve) =>
        child.on("exit", (c, sig) => resolve(c ?? (sig ? 128 + 15 : null))),
      );
      watcher.close();
      inner?.close();
      assert.ok(saveDir, `the save's temp folder appeared (${stderr})`);
      assert.equal(code, 143, stderr);
      assert.deepEqual(
        readdirSync(work).filter((n) => !n.startsWith("tsx-")),
        [],
        "no package, no temp folder",
      );
      assert.deepEqual(
        writersInto(saveDir as string),
        [],
        "no docker save, tar or zstd still writing into the removed folder",
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}
