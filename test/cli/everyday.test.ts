/**
 * Everyday CLI habits (issue 14, B6–B11) on a real repository and engine: `-q` prints only the
 * primary result (`P=$(dockpack -q packages export x)` works), `-C DIR` runs as if started in DIR
 * (and hints name it), `packages export` keeps ./packages out of git, `env remove` says which
 * volumes it kept and `env prune` removes them, Ctrl-C is one plain line and exit 130.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { initEnvironments } from "../../src/env/index.js";
import {
  cleanupPrefix,
  commitAll,
  inVolume,
  makeAppRepo,
  sh,
  volumesWithPrefix,
} from "../env/engine-helpers.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const project = `dpc${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";

before(async () => {
  if (!engineAnswers()) return;
  await ensureFixture("busybox");
  ({ work, app } = makeAppRepo("dockpack-cli-everyday"));
  await initEnvironments({ cwd: app, project });
  // a repository whose .gitignore does not mention packages/ (the example's does)
  const { readFile, writeFile } = await import("node:fs/promises");
  const ignore = join(app, ".gitignore");
  await writeFile(ignore, (await readFile(ignore, "utf8").catch(() => "")).replace(/^\/?packages\/?\n/m, ""));
  commitAll(app, "dockpack config");
});

after(() => {
  if (work) cleanupPrefix(project, work);
});

test("-q prints only the primary result; -C DIR runs there; ./packages stays out of git", async (t) => {
  if (!needsEngine(t)) return;
  // -C from outside the repository
  const created = runCli(["-C", app, "-q", "env", "create", "qa"], { cwd: work });
  assert.equal(created.code, 0, created.stderr);
  assert.equal(created.stdout, "qa\n", "-q: the environment's branch only");
  const up = runCli(["env", "-C", app, "up", "qa"], { cwd: work });
  assert.equal(up.code, 0, `-C after the group word: ${up.stderr}`);

  const exported = runCli(["-q", "packages", "export", "qa", "--no-code"], { cwd: app });
  assert.equal(exported.code, 0, exported.stderr);
  const lines = exported.stdout.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, exported.stdout);
  assert.ok(lines[0].startsWith(join(app, "packages")) && lines[0].endsWith(".dockpack.tar"), lines[0]);
  assert.equal(exported.stderr, "", "-q logs nothing but errors");
  assert.ok(existsSync(lines[0]));
  // the package folder is excluded through info/exclude, like the worktrees folder
  assert.equal(sh("git", ["status", "--porcelain"], app), "", "git status stays clean");
  assert.match(sh("git", ["check-ignore", "-v", lines[0]], app), /info\/exclude:.*\/packages\//);

  // -q on a list: one primary value per row
  const list = runCli(["-q", "-C", app, "env", "list"], { cwd: work });
  assert.equal(list.stdout, "qa\n");

  // a standalone import names -C in its hint when run from elsewhere
  const standalone = join(work, "copy");
  const imp = runCli(["packages", "import", lines[0], "--standalone", standalone, "--target-branch", "sa"], {
    cwd: work,
    env: { DOCKPACK_ENV_PROJECT_SUFFIX: "" },
  });
  if (imp.code === 0)
    assert.match(imp.stdout, new RegExp(`start it with: dockpack -C ${standalone} env up sa`));
  else assert.match(imp.stderr, /error:/);
});

test("env remove says which volumes it kept; env prune removes them", async (t) => {
  if (!needsEngine(t)) return;
  assert.equal(runCli(["env", "create", "gone"], { cwd: app }).code, 0);
  assert.equal(runCli(["env", "up", "gone"], { cwd: app }).code, 0);
  const removed = runCli(["env", "remove", "gone"], { cwd: app });
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, new RegExp(`kept volumes ${project}-gone_db, ${project}-gone_media`));
  assert.match(removed.stdout, /dockpack env prune/);
  assert.deepEqual(volumesWithPrefix(`${project}-gone_`), [`${project}-gone_db`, `${project}-gone_media`]);

  const dry = runCli(["--json", "env", "prune", "--dry-run"], { cwd: app });
  assert.equal(dry.code, 0, dry.stderr);
  const doc = JSON.parse(dry.stdout);
  assert.deepEqual(
    doc.volumes.map((v: { volume: string }) => v.volume),
    [`${project}-gone_db`, `${project}-gone_media`],
    "only the volumes of the removed environment (not those of qa)",
  );
  assert.equal(volumesWithPrefix(`${project}-gone_`).length, 2, "dry run removes nothing");
  const pruned = runCli(["env", "prune"], { cwd: app });
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.deepEqual(volumesWithPrefix(`${project}-gone_`), []);
  assert.ok(volumesWithPrefix(`${project}-qa_`).length > 0, "a live environment's volumes stay");
});

test("Ctrl-C during an export: one plain line, exit 130, containers running, no package", async (t) => {
  if (!needsEngine(t)) return;
  inVolume(`${project}-qa_media`, "dd if=/dev/urandom of=/data/blob bs=1M count=200 2>/dev/null");
  const runningNow = () =>
    sh("docker", ["ps", "-q", "--filter", `label=com.docker.compose.project=${project}-qa`])
      .trim()
      .split("\n")
      .filter(Boolean).length;
  const before = runningNow();
  assert.ok(before > 0, "qa runs");
  const out = join(work, "interrupted");
  const child = spawn(
    process.execPath,
    ["--import", TSX, MAIN, "packages", "export", "qa", "--output-dir", out, "--no-compress"],
    {
      cwd: app,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  let stderr = "";
  let sent = false;
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (!sent && /exporting volume/.test(stderr)) {
      sent = true;
      setTimeout(() => child.kill("SIGINT"), 200);
    }
  });
  const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /^interrupted by SIGINT; the operation was rolled back\.$/m);
  assert.doesNotMatch(stderr, /\n\s+at |Premature close|ERR_STREAM/, "no stack trace, no stream error");
  assert.equal(runningNow(), before, "containers started again");
  assert.deepEqual(existsSync(out) ? sh("ls", ["-A", out]).trim() : "", "", "no package, no temp folder");
});
