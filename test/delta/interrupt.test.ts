/** An interrupted `delta create` leaves no package, no temp file and no temp directory. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { makeImage, makeLayer, writeSynth } from "../image/synthetic.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

test("SIGTERM during create: exit 143, nothing left behind", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-int-"));
  const work = mkdtempSync(join(tmpdir(), "dockpack-delta-int-tmp-"));
  try {
    const big = await makeLayer([{ path: "data/blob.bin", size: 24 * 1024 * 1024, seed: 5 }]);
    const image = makeImage([big], ["dockpack-test-int:1"]);
    const file = join(dir, "img.tar");
    await writeSynth(image, file);
    const out = join(dir, "out.dpd");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "delta", "create", "-v", "-c", "xz", "-l", "9", file, out],
      {
        env: { ...process.env, TMPDIR: work, DOCKER_HOST: `unix://${join(dir, "none.sock")}` },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("opened ")) setTimeout(() => child.kill("SIGTERM"), 300);
    });
    const code = await new Promise<number | null>((resolve) =>
      child.on("exit", (c, sig) => resolve(c ?? (sig ? 128 + 15 : null))),
    );
    assert.equal(code, 143, stderr);
    assert.deepEqual(readdirSync(dir).sort(), ["img.tar"], "no package and no temp file next to it");
    assert.deepEqual(
      readdirSync(work).filter((n) => !n.startsWith("tsx-")),
      [],
      "temp directories removed (tsx keeps its own cache there)",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});
