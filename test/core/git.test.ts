import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { after, before, test } from "node:test";
import tar from "tar-stream";
import {
  archive,
  branchExists,
  commitExists,
  deleteBranch,
  git,
  isRepo,
  listWorkingFiles,
  repoRoot,
  revParse,
  status,
  worktreeAdd,
  worktreeList,
  worktreeRemove,
} from "../../src/core/git.js";

const base = realpathSync(mkdtempSync(join(tmpdir(), "dpt-git-")));
const repo = join(base, "repo");

before(async () => {
  Object.assign(process.env, {
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example.com",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.com",
    GIT_CONFIG_NOSYSTEM: "1",
  });
  mkdirSync(join(repo, "src"), { recursive: true });
  await git(["init", "-q", "-b", "main"], repo);
  writeFileSync(join(repo, "README.md"), "hi\n");
  writeFileSync(join(repo, "src", "a.ts"), "export const a = 1;\n");
  writeFileSync(join(repo, "gone.txt"), "bye\n");
  writeFileSync(join(repo, ".gitignore"), "*.log\nbuild/\n");
  await git(["add", "."], repo);
  await git(["commit", "-q", "-m", "first"], repo);
});

after(() => rmSync(base, { recursive: true, force: true }));

test("repository and ref queries", async () => {
  assert.equal(await isRepo(repo), true);
  assert.equal(await isRepo(base), false);
  assert.equal(await isRepo(join(base, "does-not-exist")), false);
  assert.equal(await repoRoot(join(repo, "src")), repo);
  const head = await revParse("HEAD", repo);
  assert.match(head, /^[a-f0-9]{40}$/);
  assert.equal(await revParse("main", repo), head);
  assert.equal(await commitExists(head, repo), true);
  assert.equal(await commitExists("0".repeat(40), repo), false);
  await assert.rejects(revParse("no-such-ref", repo), (err: Error & { code?: string }) => {
    assert.equal(err.code, "GIT_FAILED");
    assert.match(err.message, /git rev-parse .*no-such-ref/);
    return true;
  });
});

test("git errors name the command and carry git's stderr", async () => {
  await assert.rejects(git(["log", "-1"], base), (err: Error & { code?: string; hint?: string }) => {
    assert.equal(err.code, "GIT_FAILED");
    assert.match(err.message, /'git log -1' failed in /);
    assert.match(err.message, /not a git repository/);
    assert.ok(err.hint);
    return true;
  });
});

test("status and listWorkingFiles see uncommitted, untracked and deleted files", async () => {
  assert.deepEqual(await status(repo), { dirty: false, entries: [] });
  writeFileSync(join(repo, "src", "a.ts"), "export const a = 2;\n");
  writeFileSync(join(repo, "new.txt"), "new\n");
  writeFileSync(join(repo, "debug.log"), "ignored\n");
  mkdirSync(join(repo, "build"), { recursive: true });
  writeFileSync(join(repo, "build", "out.js"), "ignored\n");
  unlinkSync(join(repo, "gone.txt"));
  const st = await status(repo);
  assert.equal(st.dirty, true);
  assert.deepEqual(st.entries.sort(), [" D gone.txt", " M src/a.ts", "?? new.txt"]);
  assert.deepEqual(await listWorkingFiles(repo), [".gitignore", "README.md", "new.txt", "src/a.ts"]);
  assert.deepEqual(await listWorkingFiles(join(repo, "src")), ["a.ts"]);
  await git(["add", "-A"], repo);
  await git(["commit", "-q", "-m", "second"], repo);
  await git(["mv", "new.txt", "renamed.txt"], repo);
  assert.deepEqual((await status(repo)).entries, ["R  new.txt -> renamed.txt"]);
  await git(["commit", "-q", "-m", "rename"], repo);
});

test("worktree add, list and remove", async () => {
  const wt = join(base, "wt-feature");
  await worktreeAdd(repo, wt, { branch: "feature/x", createBranch: true });
  assert.equal(await branchExists("feature/x", repo), true);
  let list = await worktreeList(repo);
  assert.equal(list.length, 2);
  assert.deepEqual(list[0], { path: repo, head: await revParse("HEAD", repo), branch: "main" });
  assert.deepEqual(list[1], { path: wt, head: await revParse("HEAD", repo), branch: "feature/x" });

  // An existing branch and a start point.
  await git(["branch", "old", "HEAD~1"], repo);
  const wt2 = join(base, "wt-old");
  await worktreeAdd(repo, wt2, { branch: "old", createBranch: false });
  assert.equal((await worktreeList(repo))[2]?.head, await revParse("HEAD~1", repo));
  await assert.rejects(worktreeAdd(repo, join(base, "wt-dup"), { branch: "feature/x", createBranch: true }), {
    code: "GIT_FAILED",
  });
  const wt3 = join(base, "wt-from");
  await worktreeAdd(repo, wt3, { branch: "from-first", from: "HEAD~2", createBranch: true });
  assert.equal(await revParse("HEAD", wt3), await revParse("HEAD~2", repo));

  // A dirty worktree is kept unless forced.
  writeFileSync(join(wt, "wip.txt"), "wip\n");
  await assert.rejects(worktreeRemove(repo, wt), (err: Error & { code?: string }) => {
    assert.equal(err.code, "GIT_FAILED");
    assert.match(err.message, /worktree remove/);
    return true;
  });
  await worktreeRemove(repo, wt, { force: true });
  await worktreeRemove(repo, wt2);
  writeFileSync(join(wt3, "only-here.txt"), "x\n");
  await git(["add", "only-here.txt"], wt3);
  await git(["commit", "-q", "-m", "unmerged"], wt3);
  await worktreeRemove(repo, wt3);
  list = await worktreeList(repo);
  assert.deepEqual(
    list.map((w) => w.path),
    [repo],
  );
  await deleteBranch("feature/x", repo); // merged: same commit as main
  assert.equal(await branchExists("feature/x", repo), false);
  await assert.rejects(deleteBranch("from-first", repo), { code: "GIT_FAILED", message: /not fully merged/ });
  await deleteBranch("from-first", repo, true);
  assert.equal(await branchExists("from-first", repo), false);
});

test("archive streams the committed tree; a bad ref fails the stream", async () => {
  const names: string[] = [];
  const extract = tar.extract();
  extract.on("entry", (h, body, next) => {
    names.push(h.name);
    body.on("end", next);
    body.resume();
  });
  await pipeline(archive(repo, "HEAD"), extract);
  assert.deepEqual(names.filter((n) => !n.endsWith("/")).sort(), [
    ".gitignore",
    "README.md",
    "renamed.txt",
    "src/a.ts",
  ]);

  const bad = archive(repo, "no-such-ref");
  await assert.rejects(
    pipeline(
      bad,
      tar.extract().on("entry", (_h, b, n) => b.resume().on("end", n)),
    ),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, "GIT_FAILED");
      assert.match(err.message, /git archive .*no-such-ref/);
      return true;
    },
  );
});
