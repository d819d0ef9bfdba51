/**
 * The run journal and its undo actions without the engine: the file format (fsynced lines, a torn
 * last line ignored, marks, commit), the owner check (a dead pid, a reused pid), recovery of a
 * dead run's stage folder, and the worktree undo when the worktree's `.git` file was replaced by
 * a folder (issue 10 A9: branch and worktree entry must go too).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { silentReporter } from "../../src/core/output.js";
import { Journal, ownerAlive, processStart, readJournalFile } from "../../src/env/journal.js";
import { recoverDeadRuns } from "../../src/env/recover.js";
import { removeWorktreeAndBranch } from "../../src/env/recover-undo.js";
import { commitAll, sh } from "./engine-helpers.js";

const state = mkdtempSync(join(tmpdir(), "dockpack-journal-state-"));
process.env.DOCKPACK_STATE_DIR = state;
after(() => rmSync(state, { recursive: true, force: true }));

test("journal lines: entries, marks, commit; a torn last line is ignored", async () => {
  const j = await Journal.open(
    { kind: "export", repo: "/r", branch: "b", composeProject: "p-b" },
    silentReporter(),
  );
  const seq = await j.will({ op: "containers-stopped", project: "p-b", ids: ["a", "b"] });
  await j.mark(seq, "done");
  appendFileSync(j.path, '{"seq":2,"op":"sta');
  const file = await readJournalFile(j.path);
  assert.ok(file);
  assert.equal(file.header.pid, process.pid);
  assert.equal(file.header.start, processStart(process.pid));
  assert.deepEqual(
    file.entries.map((e) => [e.op, e.marks]),
    [["containers-stopped", ["done"]]],
  );
  assert.equal(file.committed, false);
  assert.equal(ownerAlive(file.header), true);
  await j.commit();
  assert.equal(existsSync(j.path), false, "a committed journal is removed");
});

test("owner check: a dead pid, and a live pid with another start time (reused), are dead owners", async () => {
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  const header = {
    v: 1 as const,
    id: "x",
    kind: "export" as const,
    pid: Number(dead.stdout),
    start: 1,
    host: (await import("node:os")).hostname(),
    started_at: "",
    repo: null,
    branch: "b",
    compose_project: "p",
  };
  assert.equal(ownerAlive(header), false);
  assert.equal(
    ownerAlive({ ...header, pid: process.ppid, start: -5 }),
    false,
    "pid reused by another process",
  );
  assert.equal(ownerAlive({ ...header, host: "elsewhere" }), true, "another host's runs are left alone");
});

test("recovery of a dead export removes its stage folder and the journal", async () => {
  const out = mkdtempSync(join(tmpdir(), "dockpack-journal-out-"));
  const stage = join(out, ".dockpack-export-test");
  mkdirSync(stage);
  writeFileSync(join(stage, "package.tar"), "partial");
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  mkdirSync(join(state, "runs"), { recursive: true });
  const path = join(state, "runs", "export-dead.jsonl");
  const host = (await import("node:os")).hostname();
  writeFileSync(
    path,
    `${JSON.stringify({ v: 1, id: "export-dead", kind: "export", pid: Number(child.stdout), start: null, host, started_at: "", repo: out, branch: "b", compose_project: "p-b" })}\n` +
      `${JSON.stringify({ seq: 1, op: "stage", path: stage })}\n`,
  );
  const done = await recoverDeadRuns(silentReporter());
  assert.deepEqual(
    done.map((d) => [d.id, d.outcome]),
    [["export-dead", "rolled-back"]],
  );
  assert.equal(existsSync(stage), false);
  assert.equal(existsSync(path), false);
  rmSync(out, { recursive: true, force: true });
});

test("worktree undo: a worktree whose .git file became a folder is removed with its branch and entry (A9)", () => {
  const repo = mkdtempSync(join(tmpdir(), "dockpack-journal-repo-"));
  sh("git", ["init", "-q", "-b", "main"], repo);
  writeFileSync(join(repo, "a.txt"), "a\n");
  commitAll(repo, "a");
  const wt = join(repo, "worktrees", "imp");
  sh("git", ["worktree", "add", "-q", "-b", "imp", wt], repo);
  // what a package's code/.git member did: the worktree's .git file replaced by a folder
  rmSync(join(wt, ".git"));
  mkdirSync(join(wt, ".git", "hooks"), { recursive: true });
  writeFileSync(join(wt, ".git", "HEAD"), "ref: refs/heads/main\n");
  return removeWorktreeAndBranch(repo, wt, "imp").then(() => {
    assert.equal(sh("git", ["branch", "--list", "imp"], repo).trim(), "");
    assert.ok(!sh("git", ["worktree", "list", "--porcelain"], repo).includes(wt));
    assert.equal(existsSync(wt), false);
    rmSync(repo, { recursive: true, force: true });
  });
});
