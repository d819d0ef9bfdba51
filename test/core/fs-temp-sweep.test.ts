/**
 * Issue 12 A3: temp folders carry their owner (pid + start time + host) in their name, and any
 * dockpack run removes those whose owner is gone — also after SIGKILL, also stage folders made
 * next to an output (found through their `dockpack-tempref-*` link in the OS temp dir).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { makeTempDir, processStartTicks, removeTempDir, sweepStaleTempDirs } from "../../src/core/fs.js";
import { runCli } from "../helpers/cli.js";

const CHILD = fileURLToPath(new URL("./fs-child.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const root = mkdtempSync(join(tmpdir(), "dockpack-sweep-test-"));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** Starts fs-child in "cleanup" mode (a temp dir under `parent`, or $TMPDIR) and returns its dir. */
function childWithTempDir(
  env: NodeJS.ProcessEnv,
  parent?: string,
): Promise<{ dir: string; kill: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    ["--import", TSX, CHILD, "cleanup", join(root, "never"), ...(parent ? [parent] : [])],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const exited = new Promise((r) => child.on("exit", r));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /ready (.+)\n/.exec(out);
      if (m)
        resolve({
          dir: m[1],
          kill: async () => {
            child.kill("SIGKILL");
            await exited;
          },
        });
    });
    child.on("error", reject);
  });
}

test("A3: the name carries pid and start time; removeTempDir removes dir and link", async () => {
  const parent = join(root, "out");
  mkdirSync(parent);
  const d = await makeTempDir(".dockpack-t-", { parent });
  assert.match(
    d,
    new RegExp(`p${process.pid}t${processStartTicks(process.pid)}h[0-9a-f]{4}-[A-Za-z0-9]{6}$`),
  );
  const links = () =>
    readdirSync(tmpdir()).filter((n) => n.startsWith("dockpack-tempref-") && d.endsWith(n.slice(17)));
  assert.equal(links().length, 1);
  assert.deepEqual(await sweepStaleTempDirs([parent]), [], "a live owner's dir is kept");
  await removeTempDir(d);
  assert.equal(existsSync(d), false);
  assert.equal(links().length, 0);
});

test("A3: after SIGKILL, the next dockpack run removes the killed run's temp dirs (OS temp dir and stage dir)", async () => {
  const tmp = join(root, "tmp");
  const stage = join(root, "stage");
  mkdirSync(tmp);
  mkdirSync(stage);
  const env = { TMPDIR: tmp };
  const a = await childWithTempDir(env);
  const b = await childWithTempDir(env, stage);
  assert.ok(a.dir.startsWith(tmp) && b.dir.startsWith(stage));
  const live = await makeTempDir("dockpack-live-", { parent: tmp });
  await a.kill();
  await b.kill();
  assert.ok(existsSync(a.dir) && existsSync(b.dir), "SIGKILL left them");
  // help and --version start without sweeping (issue 14, start-up time): they leave the dirs
  const version = runCli(["--version"], { env });
  assert.equal(version.code, 0, version.stderr);
  assert.ok(existsSync(a.dir) && existsSync(b.dir), "--version does not sweep");
  // any command that does work sweeps first
  const res = runCli(["completion", "bash"], { env });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(existsSync(a.dir), false);
  assert.equal(existsSync(b.dir), false);
  assert.deepEqual(readdirSync(stage), []);
  assert.deepEqual(
    readdirSync(tmp).filter((n) => n.includes("dockpack")),
    [live.slice(tmp.length + 1)],
    "only the live owner's dir stays",
  );
  await removeTempDir(live);
});

test("A3: a reused pid (same pid, other start time), another host, and no marker", async () => {
  const dir = join(root, "fake");
  mkdirSync(dir);
  const mine = processStartTicks(process.pid);
  const host = (await makeTempDir("dockpack-probe-", { parent: dir })).match(/h([0-9a-f]{4})-/)?.[1];
  for (const n of readdirSync(dir)) rmSync(join(dir, n), { recursive: true });
  const names = {
    reused: `dockpack-x-p${process.pid}t${(mine ?? 0) + 1}h${host}-abcdef`,
    dead: `dockpack-x-p4194303t1h${host}-abcdef`,
    otherHost: `dockpack-x-p4194303t1h${host === "0000" ? "ffff" : "0000"}-abcdef`,
    noMarker: "dockpack-x-abcdef",
    notOurs: `somebody-p4194303t1h${host}-abcdef`,
  };
  for (const n of Object.values(names)) mkdirSync(join(dir, n));
  const removed = (await sweepStaleTempDirs([dir])).map((p) => p.slice(dir.length + 1)).sort();
  assert.deepEqual(removed, [names.dead, names.reused].sort());
  assert.deepEqual(readdirSync(dir).sort(), [names.noMarker, names.notOurs, names.otherHost].sort());
});
