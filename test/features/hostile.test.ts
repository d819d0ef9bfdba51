/**
 * Issue 12 A10 (byte-order mark), A12 (output folder inside a feature folder) and A13 (100 000-deep
 * JSON: a named input error, not a stack overflow); a fifo or 1.5 GiB devcontainer-feature.json
 * (no hang, no read into memory) and sparse files larger than the free space (refused up front).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { rm, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { freeSpace } from "../../src/core/fs.js";
import { silentReporter } from "../../src/core/output.js";
import { packageFeatures } from "../../src/features/index.js";
import { metaFor, tempDir, writeFeature } from "./helpers.js";

const r = silentReporter();

test("A12: an output folder inside a feature folder is refused before anything is deleted", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await writeFeature(src, "one", {});
    await writeFeature(src, "other", {});
    await assert.rejects(
      packageFeatures({ target: src, outputFolder: join(src, "other"), forceCleanOutputFolder: true }, r),
      (e: any) => e.code === "FEATURES_OUTPUT_IN_FEATURE" && e.message.includes(join(src, "other")),
    );
    await assert.rejects(
      packageFeatures({ target: src, outputFolder: join(src, "other", "deeper") }, r),
      (e: any) => e.code === "FEATURES_OUTPUT_IN_FEATURE",
    );
    assert.ok(existsSync(join(src, "other", "devcontainer-feature.json")), "the feature is intact");
    assert.ok(existsSync(join(src, "other", "install.sh")));
    const ok = await packageFeatures({ target: src, outputFolder: join(dir, "out") }, r);
    assert.equal(ok.count, 2);
  } finally {
    await cleanup();
  }
});

test("A10/A13: a BOM is accepted; 100 000-deep JSON is a named input error", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await writeFeature(src, "bom", {});
    const file = join(src, "bom", "devcontainer-feature.json");
    await writeFile(file, `\uFEFF${JSON.stringify(metaFor("bom"))}`);
    const ok = await packageFeatures({ target: src, outputFolder: join(dir, "out") }, r);
    assert.equal(ok.count, 1);
    await writeFile(file, `{"id":"bom","version":"1.0.0","x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`);
    await assert.rejects(packageFeatures({ target: src, outputFolder: join(dir, "out2") }, r), (e: any) => {
      assert.notEqual(e.code, "INTERNAL_ERROR");
      assert.match(e.message, /nesting is 100001 levels deep/);
      return true;
    });
  } finally {
    await cleanup();
  }
});

test("a devcontainer-feature.json that is a fifo or too large is a named problem, read without blocking", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await writeFeature(src, "pipe", {});
    const pipe = join(src, "pipe", "devcontainer-feature.json");
    await rm(pipe);
    execFileSync("mkfifo", [pipe]);
    await writeFeature(src, "big", {});
    const big = join(src, "big", "devcontainer-feature.json");
    await truncate(big, 1.5 * 1024 ** 3); // sparse: 1.5 GiB that must never be read into memory
    await assert.rejects(packageFeatures({ target: src, outputFolder: join(dir, "out") }, r), (e: any) => {
      assert.equal(e.code, "FEATURES_INVALID");
      assert.match(
        e.message,
        /pipe\/devcontainer-feature\.json: cannot read it: it is a fifo, not a regular file/,
      );
      assert.match(e.message, /big\/devcontainer-feature\.json: cannot read it: it is 1610612736 bytes/);
      return true;
    });
    assert.ok(!existsSync(join(dir, "out")), "nothing written");
  } finally {
    await cleanup();
  }
});

test("a devcontainer-feature.json linking out of the feature folder is never read; a link inside is", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await writeFeature(src, "out", {});
    const secret = join(dir, "secret.json");
    await writeFile(secret, JSON.stringify(metaFor("out", { description: "SECRET" })));
    await rm(join(src, "out", "devcontainer-feature.json"));
    await symlink(secret, join(src, "out", "devcontainer-feature.json"));
    await assert.rejects(packageFeatures({ target: src, outputFolder: join(dir, "o") }, r), (e: any) => {
      assert.equal(e.code, "FEATURES_INVALID");
      assert.match(
        e.message,
        /devcontainer-feature\.json: cannot read it: it is a link to .*secret\.json, outside the feature folder/,
      );
      return true;
    });
    await rm(join(src, "out", "devcontainer-feature.json"));
    await writeFile(join(src, "out", "real.json"), JSON.stringify(metaFor("out")));
    await symlink("real.json", join(src, "out", "devcontainer-feature.json"));
    assert.equal((await packageFeatures({ target: src, outputFolder: join(dir, "o2") }, r)).count, 1);
  } finally {
    await cleanup();
  }
});

test("files larger than the free space of the output folder are refused before anything is written", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFeature(dir, "huge", {});
    const free = await freeSpace(dir);
    await writeFile(join(dir, "huge", "blob.bin"), "");
    await truncate(join(dir, "huge", "blob.bin"), free + 1024 ** 3); // sparse
    await assert.rejects(
      packageFeatures({ target: join(dir, "huge"), outputFolder: join(dir, "out") }, r),
      (e: any) => e.code === "NO_SPACE" && /the tarballs of 1 feature/.test(e.message),
    );
    assert.ok(!existsSync(join(dir, "out")), "nothing written");
  } finally {
    await cleanup();
  }
});
