/**
 * Kill -9 during `packages import REF`'s image step: the images it loaded from the registry are
 * recorded before each load (registry-images-pending.ts), and the next dockpack run removes the
 * ones a dead run never handed over (untagged, unused), keeping any image that got a tag or a
 * container. Real engine; the images are made with `docker import` (untagged).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { silentReporter } from "../../src/core/output.js";
import { runsDir } from "../../src/env/journal.js";
import { recoverDeadRuns } from "../../src/env/recover.js";
import { openPendingRegistryImages } from "../../src/env/registry-images-pending.js";
import { needsEngine } from "../helpers/engine.js";

const state = mkdtempSync(join(tmpdir(), "dockpack-pending-images-state-"));
process.env.DOCKPACK_STATE_DIR = state;
const tag = `dockpack-test-pending-${Math.random().toString(36).slice(2, 8)}:kept`;
const made: string[] = [];

function docker(args: string[], input?: string): string {
  const r = spawnSync("docker", args, { encoding: "utf8", input });
  assert.equal(r.status, 0, `docker ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

/** An untagged single-layer image of one file with unique content, made without a pull. */
function importImage(): string {
  const dir = mkdtempSync(join(tmpdir(), "dockpack-pending-images-"));
  try {
    spawnSync("sh", ["-c", `head -c 64 /dev/urandom > "${dir}/f" && tar -C "${dir}" -cf "${dir}/l.tar" f`]);
    const id = docker(["import", join(dir, "l.tar")]);
    made.push(id);
    return id;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function exists(id: string): boolean {
  return spawnSync("docker", ["image", "inspect", id], { stdio: "ignore" }).status === 0;
}

after(() => {
  for (const id of made) spawnSync("docker", ["rmi", "-f", id], { stdio: "ignore" });
  spawnSync("docker", ["rmi", tag], { stdio: "ignore" });
  rmSync(state, { recursive: true, force: true });
});

test("a dead run's registry images: untagged ones removed, a tagged one kept, the record gone", async (t) => {
  if (!needsEngine(t)) return;
  const orphan = importImage();
  const kept = importImage();
  docker(["tag", kept, tag]);
  // the record as a process killed mid-step leaves it: written by a child that has exited
  const child = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "-e",
      `const m = await import(${JSON.stringify(new URL("../../src/env/registry-images-pending.ts", import.meta.url).href)});
       const p = m.openPendingRegistryImages(); await p.add(${JSON.stringify(orphan)}); await p.add(${JSON.stringify(kept)});
       process.kill(process.pid, "SIGKILL");`,
    ],
    { env: { ...process.env, DOCKPACK_STATE_DIR: state }, encoding: "utf8" },
  );
  assert.equal(child.signal, "SIGKILL", child.stderr);
  assert.equal(readdirSync(runsDir()).filter((n) => n.startsWith("registry-images-")).length, 1);
  // a live run's record is not touched
  const inFlight = importImage();
  const live = openPendingRegistryImages();
  await live.add(inFlight);
  await recoverDeadRuns(silentReporter());
  assert.equal(exists(orphan), false, "the untagged image the dead run loaded is removed");
  assert.equal(exists(kept), true, "an image that got a tag is kept");
  assert.equal(exists(inFlight), true, "a live run's image stays");
  await live.close();
  assert.deepEqual(
    readdirSync(runsDir()).filter((n) => n.startsWith("registry-images-")),
    [],
  );
});
