/**
 * Issue 12 A8, A9: `-l` takes decimal whole numbers only (usage error, exit 2, JSON under
 * --json), `-c none` takes no level, `delta apply -d` checks without writing, and an explicit
 * `--base-archive` never falls back to the engine silently (`--no-engine` forbids it).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentReporter } from "../../src/core/output.js";
import { createDelta } from "../../src/delta/index.js";
import { runCli } from "../helpers/cli.js";
import { needsEngine } from "../helpers/engine.js";
import { versionPair, writeSynth } from "../image/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-cli-hostile-"));
const TAG = `dockpack-test-a9-${process.pid}`;
test.after(() => {
  rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync("docker", ["rmi", `${TAG}:1`], { stdio: "ignore" });
  } catch {
    // not loaded
  }
});
const r = silentReporter();
const DEAD = { DOCKER_HOST: `unix://${join(dir, "no-engine.sock")}` };

let v1File: string;
let v2File: string;
let pkg: string;
test.before(async () => {
  const pair = await versionPair(TAG);
  v1File = join(dir, "v1.tar");
  v2File = join(dir, "v2.tar");
  await writeSynth(pair.v1, v1File);
  await writeSynth(pair.v2, v2File);
  pkg = join(dir, "p.dpd");
  await createDelta({ image: v2File, output: pkg, bases: [v1File] }, r);
});

test("A8: -l accepts decimal whole numbers only; each refusal is a usage error with JSON", () => {
  for (const level of ["abc", "1.5", "0x10", "1e1", ""]) {
    const out = join(dir, `l-${level}.dpd`);
    const res = runCli(["--json", "delta", "create", "--base", v1File, v2File, out, "-l", level], {
      env: DEAD,
    });
    assert.equal(res.code, 2, `-l '${level}': ${res.stderr}`);
    assert.equal(JSON.parse(res.stdout).error.code, "USAGE_ERROR", level);
    assert.equal(existsSync(out), false);
  }
  const none = runCli(
    ["--json", "delta", "create", "--base", v1File, v2File, join(dir, "n.dpd"), "-c", "none", "-l", "50"],
    {
      env: DEAD,
    },
  );
  assert.equal(none.code, 2, none.stderr);
  assert.equal(JSON.parse(none.stdout).error.code, "CODEC_LEVEL_INVALID");
  const ok = runCli(
    ["--json", "delta", "create", "--base", v1File, v2File, join(dir, "n.dpd"), "-c", "none"],
    { env: DEAD },
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).metadata.level, undefined, "no level recorded for none");
});

test("A8: delta apply -d checks everything, writes nothing", () => {
  const out = join(dir, "dry.tar");
  const res = runCli(["--json", "delta", "apply", pkg, "--base-archive", v1File, "-o", out, "-d"], {
    env: DEAD,
  });
  assert.equal(res.code, 0, res.stderr);
  const j = JSON.parse(res.stdout);
  assert.equal(j.dryRun, true);
  assert.equal(j.layers.total, 4);
  assert.equal(existsSync(out), false);
  const missing = runCli(["--json", "delta", "apply", pkg, "--base-archive", v2File, "-o", out, "-d"], {
    env: DEAD,
  });
  assert.equal(missing.code, 1);
  assert.equal(JSON.parse(missing.stdout).error.code, "DELTA_BASE_MISSING");
});

test("A9: an explicit --base-archive falls back to the engine only with a warning; --no-engine forbids it", (t) => {
  if (!needsEngine(t)) return;
  execFileSync("docker", ["load", "-i", v1File], { stdio: "ignore" });
  const out = join(dir, "a9.tar");
  // v2.tar holds the shared base layer but not v1's app layer (the delta's base): that comes from the engine.
  const res = runCli(["delta", "apply", pkg, "--base-archive", v2File, "-o", out]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(
    res.stderr,
    /warning: 1 base layer\(s\) are not in the given --base-archive files; reading them from the engine: .*--no-engine/,
  );
  const forbidden = runCli([
    "--json",
    "delta",
    "apply",
    pkg,
    "--base-archive",
    v2File,
    "-o",
    join(dir, "a9b.tar"),
    "--no-engine",
  ]);
  assert.equal(forbidden.code, 1, forbidden.stderr);
  const err = JSON.parse(forbidden.stdout).error;
  assert.equal(err.code, "DELTA_BASE_MISSING");
  assert.match(err.message, /--no-engine/);
  assert.equal(existsSync(join(dir, "a9b.tar")), false);
});
