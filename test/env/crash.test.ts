/**
 * Crash consistency on the real engine, through the real CLI as a child process (issue 10 A6–A8,
 * C): `packages export` and `packages import` are killed with SIGKILL at 10 moments each, spread
 * over their run (measured from the moment the run journal appears, over the length of a full
 * run); after the next dockpack command (`env list`) the environment is as before — containers
 * running, no stage folder, no helper container, no half environment, no journal left. Also:
 * Ctrl-C while export stops containers, `env remove --force` of a half import, two concurrent
 * exports of one environment. Small volumes (~1 MiB); budget ~2 min.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createEnvironment, environmentUp, listEnvironments } from "../../src/env/index.js";
import { type CliResult, runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import {
  initAppRepo,
  inVolume,
  sh,
  tearDownAppRepo,
  volumeListing,
  volumesWithPrefix,
} from "./engine-helpers.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const project = `dpc${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";
let state = "";
let out = "";
let pkg = "";
const runs = () => join(state, "runs");
const env = () => ({ DOCKPACK_STATE_DIR: state });
const cli = (args: string[]): CliResult => runCli(args, { cwd: app, env: env() });

/**
 * "The next dockpack command": `env list`, every third time through the CLI, else the library
 * function the CLI calls (in this process, to keep the test fast on a loaded machine).
 */
async function nextCommand(i: number): Promise<{ branch: string; volumes: { exists: boolean }[] }[]> {
  if (i % 3 === 0) {
    const r = cli(["--json", "env", "list"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).environments;
  }
  return (await listEnvironments({ cwd: app })).environments;
}

function spawnCli(args: string[]): ChildProcess & { done: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], {
    cwd: app,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...env() },
  });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const done = new Promise<number | null>((res) => child.on("exit", (c, s) => res(c ?? (s ? -1 : null))));
  return Object.assign(child, { done, stderrText: () => stderr });
}

const journals = () => (existsSync(runs()) ? readdirSync(runs()).filter((n) => n.endsWith(".jsonl")) : []);

async function journalAppears(child: ChildProcess & { done: Promise<number | null> }): Promise<number> {
  let exited = false;
  void child.done.then(() => {
    exited = true;
  });
  while (journals().length === 0) {
    if (exited) throw new Error("the run ended before its journal appeared");
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now();
}

/** Waits until the live run's journal records `op` last (or the run ends): a kill moment in a given phase. */
async function opAppears(child: ChildProcess & { done: Promise<number | null> }, op: string): Promise<void> {
  let exited = false;
  void child.done.then(() => {
    exited = true;
  });
  // a `stopping:ID` mark (a container stop asked of the engine) belongs to the containers-stopped phase
  const inPhase = (last: string) =>
    last === op || (op === "containers-stopped" && last.startsWith("mark stopping:"));
  while (!exited && !inPhase(lastOp())) await new Promise((r) => setTimeout(r, 2));
}

/** The last op recorded in the (dead) run's journal, e.g. `containers-stopped` or `volume`. */
function lastOp(): string {
  const [name] = journals();
  if (!name) return "(no journal)";
  const lines = readFileSync(join(runs(), name), "utf8").trim().split("\n").filter(Boolean);
  let last: { op?: string; commit?: boolean; mark?: number; state?: string } = {};
  try {
    last = JSON.parse(lines[lines.length - 1] ?? "{}");
  } catch {
    return "(torn line)";
  }
  if (lines.length === 0) return "(empty journal)";
  return last.op ?? (last.commit ? "commit" : last.mark ? `mark ${last.state}` : "header");
}

/**
 * True when a killed import had already committed: it exited 0, its journal's last record is the
 * commit, or its journal was gone at the kill — a live run deletes its journal only after the
 * commit (nothing in these rounds makes it roll back on its own), so only its exit was cut.
 */
const committed = (code: number | null, op: string) => code === 0 || op === "commit" || op === "(no journal)";

const running = (p: string) =>
  sh("docker", ["ps", "-q", "--no-trunc", "--filter", `label=com.docker.compose.project=${p}`])
    .trim()
    .split("\n")
    .filter(Boolean)
    .sort();
const helpersOf = (pid: number) =>
  sh("docker", [
    "ps",
    "-aq",
    "--filter",
    "label=io.dockpack.helper",
    "--filter",
    `label=io.dockpack.pid=${pid}`,
  ]).trim();

before(async () => {
  if (!engineAnswers()) return;
  ({ work, app, state } = await initAppRepo("dockpack-crash", project, { state: true, ownPorts: true }));
  out = join(work, "out");
  await createEnvironment({ cwd: app, branch: "src" });
  await environmentUp({ cwd: app, branch: "src" });
  inVolume(
    `${project}-src_db`,
    "dd if=/dev/urandom of=/data/blob bs=64k count=16 2>/dev/null && echo rec > /data/r.log",
  );
  inVolume(
    `${project}-src_media`,
    "dd if=/dev/urandom of=/data/pic bs=64k count=16 2>/dev/null && ln -s pic /data/l",
  );
});

after(() => tearDownAppRepo({ work, app, state }, project));

test("export killed with SIGKILL at 10 moments: the next command starts the containers again and removes the stage folder and helpers", async (t) => {
  if (!needsEngine(t)) return;
  const before = running(`${project}-src`);
  assert.equal(before.length, 2);
  // calibrate: one full run, from the journal's appearance to the exit
  const cal = spawnCli(["packages", "export", "src", "--output-dir", out]);
  const t0 = await journalAppears(cal);
  assert.equal(await cal.done, 0);
  const span = Date.now() - t0;
  pkg = join(out, readdirSync(out).find((n) => n.endsWith(".dockpack.tar")) as string);
  const seen: string[] = [];
  for (let i = 0; i < 10; i++) {
    const ts = Date.now();
    const child = spawnCli(["packages", "export", "src", "--output-dir", out]);
    const start = await journalAppears(child);
    const at = Math.round((span * 0.8 * i) / 10);
    // three kills land in named phases whatever the machine's timing, the rest spread over time
    const phase = ["header", "stage", "containers-stopped"][i] as string | undefined;
    if (phase) await opAppears(child, phase);
    else await new Promise((r) => setTimeout(r, Math.max(0, start + at - Date.now())));
    child.kill("SIGKILL");
    await child.done;
    seen.push(`${at}ms:${lastOp()}`);
    const tl = Date.now();
    await nextCommand(i);
    seen[i] += ` (start ${start - ts} ms, env list ${Date.now() - tl} ms)`;
    assert.deepEqual(running(`${project}-src`), before, `containers running again (kill ${i}, ${seen[i]})`);
    assert.deepEqual(
      readdirSync(out).filter((n) => n.startsWith(".dockpack-export-")),
      [],
      `no stage folder (kill ${i})`,
    );
    assert.equal(helpersOf(child.pid as number), "", `no helper container (kill ${i})`);
    assert.deepEqual(journals(), [], `no journal left (kill ${i})`);
    for (const n of readdirSync(out)) if (n !== pkg.split("/").pop()) rmSync(join(out, n), { force: true });
  }
  t.diagnostic(`export span ${span} ms; killed at ${seen.join(", ")}`);
  assert.ok(
    new Set(seen.map((s) => s.split(":")[1].split(" (")[0])).size >= 3,
    `kills spread over the run: ${seen.join(", ")}`,
  );
});

test("import killed with SIGKILL at 10 moments: the next command rolls it back completely", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg, "needs the package of the export test");
  const nothingLeft = (i: number, what: string) => {
    assert.equal(sh("git", ["branch", "--list", "dst"], app).trim(), "", `branch left (${i}, ${what})`);
    assert.ok(
      !sh("git", ["worktree", "list"], app).includes("/worktrees/dst"),
      `worktree left (${i}, ${what})`,
    );
    assert.ok(!existsSync(join(app, "worktrees", "dst")), `folder left (${i}, ${what})`);
    assert.deepEqual(volumesWithPrefix(`${project}-dst_`), [], `volumes left (${i}, ${what})`);
  };
  const cal = spawnCli(["packages", "import", pkg, "--target-branch", "dst"]);
  const t0 = await journalAppears(cal);
  assert.equal(await cal.done, 0);
  const span = Date.now() - t0;
  const rm = cli(["env", "remove", "dst", "--volumes", "--delete-branch", "--force"]);
  assert.equal(rm.code, 0, rm.stderr);
  nothingLeft(-1, "after remove");
  const seen: string[] = [];
  for (let i = 0; i < 10; i++) {
    const child = spawnCli(["packages", "import", pkg, "--target-branch", "dst"]);
    const start = await journalAppears(child);
    const at = Math.round((span * 0.9 * i) / 10);
    // three kills land in named phases whatever the machine's timing, the rest spread over time
    const phase = ["header", "worktree", "volume"][i] as string | undefined;
    if (phase) await opAppears(child, phase);
    else await new Promise((r) => setTimeout(r, Math.max(0, start + at - Date.now())));
    child.kill("SIGKILL");
    const code = await child.done;
    const op = lastOp();
    seen.push(`${at}ms:${op}`);
    const envs = await nextCommand(i);
    assert.equal(helpersOf(child.pid as number), "", `no helper container (kill ${i})`);
    assert.deepEqual(journals(), [], `no journal left (kill ${i})`);
    const dst = envs.find((e) => e.branch === "dst");
    if (committed(code, op)) {
      // finished before the kill landed: a whole environment, removed for the next round
      assert.ok(dst, `a committed import is complete (kill ${i})`);
      assert.ok(dst.volumes.every((v) => v.exists));
      assert.equal(cli(["env", "remove", "dst", "--volumes", "--delete-branch", "--force"]).code, 0);
    } else assert.equal(dst, undefined, `env list shows no half environment (kill ${i}, ${op})`);
    nothingLeft(i, op);
  }
  t.diagnostic(`import span ${span} ms; killed at ${seen.join(", ")}`);
  assert.ok(
    new Set(seen.map((s) => s.split(":")[1])).size >= 3,
    `kills spread over the run: ${seen.join(", ")}`,
  );
});

test("import --force killed while replacing: the next command puts the replaced environment back", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg, "needs the package of the export test");
  await createEnvironment({ cwd: app, branch: "old" });
  for (const v of ["db", "media"]) sh("docker", ["volume", "create", `${project}-old_${v}`]);
  const args = ["packages", "import", pkg, "--target-branch", "old", "--force"];
  const cal = spawnCli(args);
  const t0 = await journalAppears(cal);
  assert.equal(await cal.done, 0);
  const span = Date.now() - t0;
  let listing: string[] = [];
  let head = "";
  const remember = () => {
    // data that differs from the package's, so a put-back is told apart from the import
    inVolume(`${project}-old_db`, "echo 'old data' > /data/r.log");
    listing = volumeListing(`${project}-old_db`);
    head = sh("git", ["rev-parse", "old"], app).trim();
  };
  remember();
  const seen: string[] = [];
  for (let i = 0; i < 5; i++) {
    const child = spawnCli(args);
    const start = await journalAppears(child);
    const at = Math.round((span * (i + 0.5)) / 6);
    await new Promise((r) => setTimeout(r, Math.max(0, start + at - Date.now())));
    child.kill("SIGKILL");
    const code = await child.done;
    const op = lastOp();
    seen.push(`${at}ms:${op}`);
    await nextCommand(i);
    assert.deepEqual(journals(), []);
    assert.deepEqual(volumesWithPrefix(`${project}-old_db-aside`), [], `aside copy dropped (${op})`);
    assert.equal(
      sh("git", ["branch", "--list", "dockpack-aside/*"], app).trim(),
      "",
      `aside branch gone (${op})`,
    );
    assert.ok(existsSync(join(app, "worktrees", "old", ".dockpack", "env.yml")), `worktree there (${op})`);
    if (committed(code, op)) {
      remember(); // replaced for good; the next round replaces this state
      continue;
    }
    assert.equal(sh("git", ["rev-parse", "old"], app).trim(), head, `branch back (${op})`);
    assert.deepEqual(volumeListing(`${project}-old_db`), listing, `replaced data back (${op})`);
  }
  t.diagnostic(`import --force span ${span} ms; killed at: ${seen.join(", ")}`);
});

test("env remove --force removes a half-imported environment in one go", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg);
  const child = spawnCli(["packages", "import", pkg, "--target-branch", "half"]);
  await journalAppears(child);
  // wait until a volume is being restored, then kill
  const until = Date.now() + 20_000;
  while (!volumesWithPrefix(`${project}-half_`).length && Date.now() < until)
    await new Promise((r) => setTimeout(r, 10));
  child.kill("SIGKILL");
  await child.done;
  const r = cli(["--json", "env", "remove", "half", "--volumes", "--delete-branch", "--force"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).rolledBack, true);
  assert.equal(sh("git", ["branch", "--list", "half"], app).trim(), "");
  assert.deepEqual(volumesWithPrefix(`${project}-half_`), []);
  assert.ok(!existsSync(join(app, "worktrees", "half")));
});

test("Ctrl-C while export stops the containers leaves none stopped; two exports of one environment wait for each other", async (t) => {
  if (!needsEngine(t)) return;
  const before = running(`${project}-src`);
  for (let i = 0; i < 2; i++) {
    const child = spawnCli(["packages", "export", "src", "--output-dir", out]) as ChildProcess & {
      done: Promise<number | null>;
      stderrText: () => string;
    };
    const until = Date.now() + 30_000;
    while (!/stopping \d+ running container/.test(child.stderrText()) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, i * 150));
    child.kill("SIGINT");
    const code = await child.done;
    assert.notEqual(code, 0);
    // no other dockpack command in between: the interrupted run itself restarted them
    assert.deepEqual(
      running(`${project}-src`),
      before,
      `all containers running after Ctrl-C (${i}): ${child.stderrText()}`,
    );
    assert.deepEqual(journals(), []);
  }
  const a = spawnCli(["packages", "export", "src", "--output-dir", out]) as ChildProcess & {
    done: Promise<number | null>;
    stderrText: () => string;
  };
  const b = spawnCli(["packages", "export", "src", "--output-dir", out]) as ChildProcess & {
    done: Promise<number | null>;
    stderrText: () => string;
  };
  assert.deepEqual(await Promise.all([a.done, b.done]), [0, 0], a.stderrText() + b.stderrText());
  assert.match(a.stderrText() + b.stderrText(), /waiting for process \d+/);
  assert.deepEqual(running(`${project}-src`), before);
  assert.deepEqual(
    readdirSync(out).filter((n) => n.startsWith(".dockpack-export-")),
    [],
  );
});
