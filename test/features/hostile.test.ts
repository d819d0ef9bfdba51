/**
 * Issue 12 A10 (byte-order mark), A12 (output folder inside a feature folder) and A13 (100 000-deep
 * JSON: a named input error, not a stack overflow).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
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
