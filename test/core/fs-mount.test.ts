/**
 * Issue 12 A4: an output folder that is itself a mount point (a bind mount, as `docker run -v
 * "$PWD/out:/out"` makes one). `features package -o DIR` and `tool compile … DIR` used to fail
 * with EXDEV (rename from the parent into the mount) or EBUSY (rename over the mount point).
 * The test makes a real bind mount (mount(8), as root) and unmounts it at the end.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { isMountPoint } from "../../src/core/fs/folder.js";
import { silentReporter } from "../../src/core/output.js";
import { packageFeatures } from "../../src/features/index.js";
import { createStage } from "../../src/tools/stage.js";
import { tempDir, writeFeature } from "../features/helpers.js";

/** Bind-mounts a fresh folder on `dir/out`; returns the mount point and the backing folder. */
async function bindMount(dir: string): Promise<{ out: string; backing: string; unmount: () => void }> {
  const backing = join(dir, "backing");
  const out = join(dir, "out");
  await mkdir(backing);
  await mkdir(out);
  execFileSync("mount", ["--bind", backing, out]);
  return { out, backing, unmount: () => execFileSync("umount", [out]) };
}

test("isMountPoint: a same-file-system bind mount is one, its parent and a plain folder are not", async () => {
  const { dir, cleanup } = await tempDir("dockpack-mount-test-");
  const m = await bindMount(dir);
  try {
    assert.equal(await isMountPoint(m.out), true);
    assert.equal(await isMountPoint(`${m.out}/`), true);
    assert.equal(await isMountPoint(m.backing), false);
    assert.equal(await isMountPoint(dir), false);
    assert.equal(await isMountPoint(join(dir, "missing")), false);
    assert.equal(await isMountPoint("/"), true);
  } finally {
    m.unmount();
    await cleanup();
  }
});

test("features package -o MOUNTPOINT: artifacts land in the mount, -f empties it, no temp folder left", async () => {
  const { dir, cleanup } = await tempDir("dockpack-mount-test-");
  const m = await bindMount(dir);
  try {
    const src = join(dir, "src");
    await writeFeature(src, "one");
    await writeFeature(src, "two");
    await writeFile(join(m.out, "kept.txt"), "not an artifact\n");
    const first = await packageFeatures({ target: src, outputFolder: m.out }, silentReporter());
    assert.equal(first.count, 2);
    const expected = [
      "devcontainer-collection.json",
      "devcontainer-feature-one.tgz",
      "devcontainer-feature-two.tgz",
    ];
    assert.deepEqual((await readdir(m.out)).sort(), [...expected, "kept.txt"]);
    // written through the mount: the backing folder holds the same files
    assert.deepEqual((await readdir(m.backing)).sort(), [...expected, "kept.txt"]);
    // again, overwriting the artifacts
    await packageFeatures({ target: src, outputFolder: m.out }, silentReporter());
    assert.deepEqual((await readdir(m.out)).sort(), [...expected, "kept.txt"]);
    // -f empties the mount point's content (not the mount itself), then moves the artifacts in
    await packageFeatures(
      { target: src, outputFolder: m.out, forceCleanOutputFolder: true },
      silentReporter(),
    );
    assert.deepEqual((await readdir(m.out)).sort(), expected);
    assert.equal(await isMountPoint(m.out), true);
    const collection = JSON.parse(await readFile(join(m.out, "devcontainer-collection.json"), "utf8"));
    assert.deepEqual(
      collection.features.map((f: { id: string }) => f.id),
      ["one", "two"],
    );
    assert.deepEqual((await readdir(dir)).sort(), ["backing", "out", "src"], "no staging folder beside it");
  } finally {
    m.unmount();
    await cleanup();
  }
});

test("tool compile's output stage on a MOUNTPOINT: replaces the content, abort leaves it untouched", async () => {
  const { dir, cleanup } = await tempDir("dockpack-mount-test-");
  const m = await bindMount(dir);
  try {
    await mkdir(join(m.out, "old-folder"));
    await writeFile(join(m.out, "old-folder", "x"), "old\n");
    await writeFile(join(m.out, "Dockerfile"), "FROM old\n");
    const aborted = await createStage(m.out);
    await writeFile(join(aborted.dir, "Dockerfile"), "FROM aborted\n");
    await aborted.abort();
    assert.deepEqual((await readdir(m.out)).sort(), ["Dockerfile", "old-folder"]);
    assert.equal(await readFile(join(m.out, "Dockerfile"), "utf8"), "FROM old\n");

    const stage = await createStage(m.out);
    await writeFile(join(stage.dir, "Dockerfile"), "FROM new\n");
    await mkdir(join(stage.dir, "src"));
    await writeFile(join(stage.dir, "src", "tool.js"), "export {};\n");
    await writeFile(join(stage.dir, ".env"), "A=1\n");
    await stage.commit();
    assert.deepEqual((await readdir(m.out)).sort(), [".env", "Dockerfile", "src"]);
    assert.equal(await readFile(join(m.out, "Dockerfile"), "utf8"), "FROM new\n");
    assert.equal(await isMountPoint(m.out), true);
    assert.deepEqual((await readdir(dir)).sort(), ["backing", "out"], "no stage beside the mount");
  } finally {
    m.unmount();
    await cleanup();
  }
});
