/**
 * A helper container create request in flight when dockpack is killed with SIGKILL (helper-ledger.ts,
 * helper-recover.ts). The CLI is held by the test hook DOCKPACK_TEST_HOLD_HELPER right after it
 * recorded a helper and before it sent the create request, killed there, the next command recovers,
 * and then the test sends the dead process's create request itself — as the engine would receive
 * it late: it must fail on the tombstone's name, without re-creating the volume the recovery removed.
 * Also `env create --copy-data-from` killed mid-copy (held the same way): the next command undoes
 * it; and an `env remove` killed after its journal entry: the next command completes it.
 * Event-driven: no sleeps, no timing thresholds.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { silentReporter } from "../../src/core/output.js";
import { recoverHelperLedgers, TOMBSTONE_LABEL } from "../../src/env/helper-recover.js";
import { createEnvironment, environmentUp, listEnvironments } from "../../src/env/index.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { initAppRepo, sh, tearDownAppRepo, volumesWithPrefix } from "./engine-helpers.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const HELPER_IMAGE = "dockpack/helper:1";
const project = `dpl${Math.random().toString(36).slice(2, 8)}`;
let repo = { work: "", app: "", state: "" };
let pkg = "";
const runs = () => join(repo.state, "runs");

/** Runs the CLI until it holds a helper of a volume containing `hold`; kills it there (SIGKILL). */
async function killWhileHolding(args: string[], hold: string): Promise<{ name: string; volume: string }> {
  const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], {
    cwd: repo.app,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NO_COLOR: "1", DOCKPACK_STATE_DIR: repo.state, DOCKPACK_TEST_HOLD_HELPER: hold },
  });
  let stderr = "";
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const held = await new Promise<{ name: string; volume: string }>((resolve, reject) => {
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      const m = /dockpack-test: holding helper (\S+) of (\S+)/.exec(stderr);
      if (m) resolve({ name: m[1] as string, volume: m[2] as string });
    });
    void exited.then(() => reject(new Error(`ended before holding a helper: ${stderr}`)));
  });
  child.kill("SIGKILL");
  await exited;
  return held;
}

/** The create request of the dead process, sent now: true when the engine created the container. */
function lateCreate(name: string, volume: string): { created: boolean; stderr: string } {
  const r = spawnSync(
    "docker",
    [
      "create",
      "--name",
      name,
      "--network",
      "none",
      "--mount",
      `type=volume,src=${volume},dst=/data`,
      HELPER_IMAGE,
    ],
    { encoding: "utf8" },
  );
  if (r.status === 0) sh("docker", ["rm", "-f", name]);
  return { created: r.status === 0, stderr: r.stderr };
}

const labelOf = (name: string) =>
  sh("docker", ["inspect", "-f", `{{index .Config.Labels "${TOMBSTONE_LABEL}"}}`, name]).trim();
const containerExists = (name: string) =>
  spawnSync("docker", ["inspect", name], { stdio: "ignore" }).status === 0;

/** Runs the recovery as if the tombstones' time were up, and checks nothing is left. */
async function expireTombstones(name: string): Promise<void> {
  await recoverHelperLedgers(silentReporter(), Date.now() + 301_000);
  assert.equal(containerExists(name), false, "tombstone removed once its time is up");
  assert.deepEqual(existsSync(runs()) ? readdirSync(runs()) : [], [], "runs folder empty");
}

before(async () => {
  if (!engineAnswers()) return;
  repo = await initAppRepo("dockpack-ledger", project, { state: true, ownPorts: true });
  await createEnvironment({ cwd: repo.app, branch: "src" });
  await environmentUp({ cwd: repo.app, branch: "src" });
  const out = join(repo.work, "out");
  const r = runCli(["packages", "export", "src", "--output-dir", out], {
    cwd: repo.app,
    env: { DOCKPACK_STATE_DIR: repo.state },
  });
  assert.equal(r.code, 0, r.stderr);
  pkg = join(out, readdirSync(out).find((n) => n.endsWith(".dockpack.tar")) as string);
});

after(() => tearDownAppRepo(repo, project));

test("import killed between recording a helper and creating it: the late create can neither land nor re-create the removed volume", async (t) => {
  if (!needsEngine(t)) return;
  const held = await killWhileHolding(["packages", "import", pkg, "--target-branch", "dst"], "-dst_");
  assert.ok(held.volume.startsWith(`${project}-dst_`), held.volume);
  await listEnvironments({ cwd: repo.app }); // the next command: recovery
  assert.deepEqual(volumesWithPrefix(`${project}-dst_`), [], "the import's volumes are removed");
  assert.equal(labelOf(held.name), hostname(), "a tombstone holds the helper's name");
  const late = lateCreate(held.name, held.volume);
  assert.equal(late.created, false, "the late create is refused");
  assert.match(late.stderr, /already in use/);
  assert.deepEqual(volumesWithPrefix(`${project}-dst_`), [], "the late create re-created no volume");
  assert.equal(sh("git", ["branch", "--list", "dst"], repo.app).trim(), "");
  await expireTombstones(held.name);
});

test("export killed between recording a helper and creating it: containers run again, no helper can land", async (t) => {
  if (!needsEngine(t)) return;
  const out = join(repo.work, "out2");
  const held = await killWhileHolding(["packages", "export", "src", "--output-dir", out], "-src_");
  await listEnvironments({ cwd: repo.app });
  const running = sh("docker", ["ps", "-q", "--filter", `label=com.docker.compose.project=${project}-src`]);
  assert.equal(running.trim().split("\n").filter(Boolean).length, 2, "containers started again");
  assert.equal(lateCreate(held.name, held.volume).created, false, "the late create is refused");
  const stages = existsSync(out) ? readdirSync(out).filter((n) => n.startsWith(".dockpack-export-")) : [];
  assert.deepEqual(stages, [], "no stage folder");
  await expireTombstones(held.name);
});

test("env create --copy-data-from killed mid-copy: the next command removes worktree, branch and copies, and starts the source again", async (t) => {
  if (!needsEngine(t)) return;
  const running = () =>
    sh("docker", ["ps", "-q", "--filter", `label=com.docker.compose.project=${project}-src`])
      .trim()
      .split("\n")
      .filter(Boolean).length;
  assert.equal(running(), 2);
  const held = await killWhileHolding(["env", "create", "copy", "--copy-data-from", "src"], "-src_");
  assert.equal(running(), 0, "killed with the source stopped");
  assert.ok(volumesWithPrefix(`${project}-copy_`).length > 0, "killed with a copy volume made");
  const { environments } = await listEnvironments({ cwd: repo.app });
  assert.equal(
    environments.find((e) => e.branch === "copy"),
    undefined,
    "no half environment",
  );
  assert.equal(running(), 2, "source containers started again");
  assert.deepEqual(volumesWithPrefix(`${project}-copy_`), [], "copies removed");
  assert.equal(sh("git", ["branch", "--list", "copy"], repo.app).trim(), "", "branch deleted");
  assert.ok(!existsSync(join(repo.app, "worktrees", "copy")), "worktree removed");
  assert.deepEqual(readdirSync(join(repo.state, "locks")), [], "no lock left");
  assert.ok(!existsSync(join(repo.app, "worktrees", ".dockpack-ports.lock")));
  await expireTombstones(held.name);
  const again = runCli(["env", "create", "copy", "--copy-data-from", "src"], {
    cwd: repo.app,
    env: { DOCKPACK_STATE_DIR: repo.state },
  });
  assert.equal(again.code, 0, again.stderr);
});

test("env remove killed after recording the removal: the next command completes it (worktree, branch, volumes)", async (t) => {
  if (!needsEngine(t)) return;
  await createEnvironment({ cwd: repo.app, branch: "gone" });
  const volumes = [`${project}-gone_db`, `${project}-gone_media`];
  for (const v of volumes) sh("docker", ["volume", "create", v]);
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  const pid = Number(dead.stdout);
  const path = join(repo.app, "worktrees", "gone");
  const header = { v: 1, id: "remove-test", kind: "remove", pid, start: null, host: hostname() };
  const entry = { seq: 1, op: "removal", root: repo.app, path, branch: "gone", volumes };
  mkdirSync(runs(), { recursive: true });
  writeFileSync(join(runs(), "remove-test.jsonl"), `${JSON.stringify(header)}\n${JSON.stringify(entry)}\n`);
  const { environments } = await listEnvironments({ cwd: repo.app });
  assert.equal(
    environments.find((e) => e.branch === "gone"),
    undefined,
    "the environment is gone",
  );
  assert.ok(!existsSync(path), "worktree removed");
  assert.equal(sh("git", ["branch", "--list", "gone"], repo.app).trim(), "", "branch deleted");
  assert.deepEqual(volumesWithPrefix(`${project}-gone_`), [], "volumes removed");
  assert.deepEqual(readdirSync(runs()), [], "journal removed");
});

test("a helper of a dead process's ledger that landed before the recovery is removed, without a tombstone", async (t) => {
  if (!needsEngine(t)) return;
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  const pid = Number(dead.stdout);
  const hex = () => Math.random().toString(16).slice(2, 14).padEnd(12, "0");
  const name = `dockpack-helper-${hex()}`;
  // created (the engine answered) and removed before the ledger could strike it: no tombstone
  const gone = `dockpack-helper-${hex()}`;
  const volume = `${project}-landed`;
  mkdirSync(runs(), { recursive: true });
  writeFileSync(
    join(runs(), `helpers-${hostname()}-${pid}-0.txt`),
    `${JSON.stringify({ v: 1, pid, start: null, host: hostname() })}\n+${name} ${volume}\n+${gone} ${volume}\n=${gone}\n`,
  );
  sh("docker", ["create", "--name", name, "--mount", `type=volume,src=${volume},dst=/data`, HELPER_IMAGE]);
  await recoverHelperLedgers(silentReporter());
  assert.equal(containerExists(name), false, "the landed helper is removed");
  assert.equal(containerExists(gone), false, "no tombstone for a helper whose create was answered");
  assert.deepEqual(readdirSync(runs()), [], "no ledger and no tombstone record left");
  sh("docker", ["volume", "rm", volume]);
});
