import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdir, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli } from "../helpers/cli.js";
import { metaFor, tempDir, writeFeature } from "./helpers.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

test("dockpack features package: logs on stderr, one JSON document on stdout, default ./output", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFeature(join(dir, "src"), "one");
    await writeFeature(join(dir, "src"), "two");
    const res = runCli(["features", "package", "src", "--json"], {
      cwd: dir,
      env: { SOURCE_DATE_EPOCH: "1700000000" },
    });
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout);
    assert.deepEqual(Object.keys(doc), ["count", "outputDir", "features"]);
    assert.equal(doc.count, 2);
    assert.equal(doc.outputDir, join(dir, "output"));
    assert.deepEqual(Object.keys(doc.features[0]), ["id", "version", "file", "size", "digest"]);
    assert.match(res.stderr, /^Packaging feature collection\.\.\.$/m);
    assert.match(res.stderr, /^Packaged feature 'one' 1\.0\.0 /m);
    assert.match(res.stderr, /^Packaged 2 features into output$/m);
    const human = runCli(["features", "package", "src/one", "-o", "single", "--log-level", "debug"], {
      cwd: dir,
    });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, /^Packaging single feature\.\.\.$/m);
    assert.match(human.stderr, /^debug: mtime 315532800/m);
    assert.match(
      human.stdout,
      /^FEATURE\s+VERSION\s+SIZE\s+DIGEST\s+FILE\none\s+1\.0\.0 .* single\/devcontainer-feature-one\.tgz$/m,
    );
  } finally {
    await cleanup();
  }
});

test("dockpack features package: invalid features exit 1 with every problem; -f guard exits 2; nothing written", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFeature(join(dir, "src"), "one", {
      meta: metaFor("uno", { options: { x: { type: "string", enum: ["a"], default: "b" } } }),
    });
    const res = runCli(["features", "package", "src", "--json"], { cwd: dir });
    assert.equal(res.code, 1);
    const doc = JSON.parse(res.stdout);
    assert.equal(doc.error.code, "FEATURES_INVALID");
    assert.equal(doc.error.details.problems.length, 2);
    assert.match(res.stderr, /src\/one\/devcontainer-feature\.json \$\.id: the id 'uno' does not match/);
    assert.match(
      res.stderr,
      /src\/one\/devcontainer-feature\.json \$\.options\.x\.default: the default "b" is not one of its 'enum' values/,
    );
    assert.match(res.stderr, /^hint: /m);
    const guard = runCli(["features", "package", "src", "-o", ".", "-f"], { cwd: dir });
    assert.equal(guard.code, 2);
    assert.match(guard.stderr, /Refusing to empty .*: it is the current folder/);
    const sde = runCli(["features", "package", "src"], { cwd: dir, env: { SOURCE_DATE_EPOCH: "soon" } });
    assert.equal(sde.code, 2);
    assert.match(sde.stderr, /SOURCE_DATE_EPOCH='soon' is not a whole number/);
    assert.deepEqual(await readdir(dir), ["src"]);
  } finally {
    await cleanup();
  }
});

test("dockpack features --help lists package with examples", () => {
  const root = runCli(["--help"]);
  assert.match(root.stdout, /features\s+Dev Container Features/);
  const help = runCli(["features", "package", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /-o, --output-folder <dir>/);
  assert.match(help.stdout, /-f, --force-clean-output-folder/);
  assert.match(help.stdout, /Examples:\n\s+\$ dockpack features package src/);
});

test("dockpack features package: SIGINT while packaging leaves no output and no staging folder", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const folder = await writeFeature(join(dir, "src"), "big");
    // 2 GiB sparse file: quick to create, long enough to package that the signal lands mid-run.
    await writeFile(join(folder, "big.bin"), "");
    await truncate(join(folder, "big.bin"), 2 * 1024 ** 3);
    const child = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), MAIN, "features", "package", "src", "-o", "out"],
      { cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const deadline = Date.now() + 60_000;
    let staged = false;
    while (!staged && Date.now() < deadline && child.exitCode === null) {
      staged = (await readdir(dir)).some((n) => n.startsWith(".dockpack-features-"));
      if (!staged) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(staged, `the staging folder appeared (stderr: ${stderr})`);
    child.kill("SIGINT");
    assert.equal(await exited, 130, stderr);
    assert.deepEqual(await readdir(dir), ["src"]);
  } finally {
    await cleanup();
  }
});
