/**
 * Issue 12 B (kill -9) and A5 (Ctrl-C): `delta create` and `delta apply -o` killed with SIGKILL
 * at 10 moments each, then a dockpack run: no temp folder and no partial output left. SIGINT at
 * several moments of `apply -o`: exit 130, no stack trace, nothing left.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { sweepStaleTempDirs } from "../../src/core/fs.js";
import { silentReporter } from "../../src/core/output.js";
import { createDelta } from "../../src/delta/index.js";
import { runCli } from "../helpers/cli.js";
import { makeImage, makeLayer, writeSynth } from "../image/synthetic.js";

// The built CLI when present (scripts/setup.sh builds it; CI runs setup first): tsx's start-up
// would dominate the 20 runs on a loaded machine, and tsx handles SIGINT itself.
const DIST = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const CLI = existsSync(DIST) ? [DIST] : ["--import", TSX, MAIN];
const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-kill-"));
const work = join(dir, "tmp");
const outDir = join(dir, "out");
mkdirSync(work);
mkdirSync(outDir);
test.after(() => rmSync(dir, { recursive: true, force: true }));
const env = { TMPDIR: work, DOCKER_HOST: `unix://${join(dir, "none.sock")}` };

let v1: string;
let v2: string;
let pkg: string;
test.before(async () => {
  const base = await makeLayer([{ path: "data/a.bin", size: 256 * 1024, seed: 5 }]);
  const app1 = await makeLayer([{ path: "app/x.bin", size: 256 * 1024, seed: 6 }]);
  const app2 = await makeLayer([{ path: "app/x.bin", size: 256 * 1024, seed: 7 }]);
  v1 = join(dir, "v1.tar");
  v2 = join(dir, "v2.tar");
  await writeSynth(makeImage([base, app1], ["dockpack-test-kill:1"]), v1);
  await writeSynth(makeImage([base, app2], ["dockpack-test-kill:2"], "v2"), v2);
  pkg = join(dir, "p.dpd");
  await createDelta({ image: v2, output: pkg, bases: [v1], compression: "xz" }, silentReporter());
});

/** Runs the CLI, sends `signal` after `afterMs` (if still running); resolves with exit code (128+n for a signal) and stderr. */
function runAndSignal(
  args: string[],
  signal: NodeJS.Signals,
  afterMs: number,
): Promise<{ code: number; stderr: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [...CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill(signal), afterMs);
  return new Promise((resolve) =>
    child.on("exit", (c, sig) => {
      clearTimeout(timer);
      resolve({
        code: c ?? 128 + (sig === "SIGKILL" ? 9 : sig === "SIGINT" ? 2 : 15),
        stderr,
        ms: Date.now() - t0,
      });
    }),
  );
}

async function leftovers(): Promise<{ tmp: string[]; out: string[] }> {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = work;
  try {
    await sweepStaleTempDirs(); // what the next dockpack run does first
  } finally {
    process.env.TMPDIR = saved;
  }
  return {
    tmp: readdirSync(work).filter((n) => n.includes("dockpack")),
    out: readdirSync(outDir),
  };
}

const commands: Record<string, string[]> = {
  create: ["delta", "create", "--no-gzip-measure", "-f", "--base", "V1", "V2", join(outDir, "new.dpd")],
  apply: ["delta", "apply", "PKG", "--base-archive", "V1", "-o", join(outDir, "new.tar"), "-f"],
};
const argsFor = (name: string) =>
  commands[name]
    .map((a) => (a === "V2" ? v2 : a === "V1" ? v1 : a === "PKG" ? pkg : a))
    .map((a, i, all) => (a === "" && all[i - 1] === "--base" ? v1 : a));

for (const name of ["create", "apply"]) {
  test(`kill -9 of delta ${name} at 10 moments, then a dockpack run: no temp folder, no partial output`, async () => {
    const output = join(outDir, name === "create" ? "new.dpd" : "new.tar");
    const sha = () => createHash("sha256").update(readFileSync(output)).digest("hex");
    const full = await runAndSignal(argsFor(name), "SIGKILL", 600_000);
    assert.equal(full.code, 0, full.stderr);
    const whole = sha();
    rmSync(output);
    const startup = 150; // node start-up before dockpack runs
    for (let i = 0; i < 10; i++) {
      const at = startup + Math.round(((full.ms - startup) * (i + 0.5)) / 10);
      const res = await runAndSignal(argsFor(name), "SIGKILL", at);
      const left = await leftovers();
      assert.deepEqual(left.tmp, [], `temp folders after kill at ${at} ms: ${left.tmp.join(", ")}`);
      if (existsSync(output) && res.code !== 0) {
        // committed before the kill landed (the process was exiting): it must be whole. apply's
        // output is byte-reproducible; create's package must read back as a delta package.
        if (name === "apply") assert.equal(sha(), whole, `partial output after kill at ${at} ms`);
        else
          assert.equal(
            runCli(["delta", "info", output], { env }).code,
            0,
            `partial output after kill at ${at} ms`,
          );
      }
      if (existsSync(output)) rmSync(output);
      assert.deepEqual(readdirSync(outDir), [], `temp output after kill at ${at} ms`);
    }
    const after = runCli(["--version"], { env });
    assert.equal(after.code, 0);
  });
}

test("A5: SIGINT during apply -o: exit 130, one plain line at most, no stack trace, nothing left", async () => {
  for (const at of [300, 600, 900, 1200, 1500]) {
    const res = await runAndSignal(argsFor("apply"), "SIGINT", at);
    if (res.code === 0) {
      rmSync(join(outDir, "new.tar"));
      continue;
    }
    assert.equal(res.code, 130, res.stderr);
    assert.doesNotMatch(res.stderr, /^\s+at |ERR_STREAM_PREMATURE_CLOSE|Premature close/m, res.stderr);
    assert.ok(res.stderr.trim().split("\n").filter(Boolean).length <= 1, res.stderr);
    const left = await leftovers();
    assert.deepEqual(left, { tmp: [], out: [] });
  }
});
