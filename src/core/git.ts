/**
 * git through the git program (git ≥ 2.20): repositories, refs, branches, worktrees, status,
 * the list of working files and `git archive`. Every failure is a `GIT_FAILED` DockpackError
 * naming the git command and carrying the tail of git's stderr.
 *
 * Follows git's documented porcelain formats: `git worktree list --porcelain`,
 * `git status --porcelain=v1 -z`, `git ls-files -z`.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { currentSignal, interrupted } from "./abort.js";
import { DockpackError, isDockpackError } from "./errors.js";
import { commandFailed, requireProgram } from "./exec.js";

function gitFailed(args: string[], cwd: string, err: unknown): DockpackError {
  const stderr =
    (isDockpackError(err) && typeof err.details?.stderr === "string" ? err.details.stderr : "") ||
    (err instanceof Error ? err.message : String(err));
  const tail = stderr.trim().split("\n").slice(-6).join("\n");
  return new DockpackError(
    "GIT_FAILED",
    `'git ${args.join(" ")}' failed in ${cwd}${tail ? `:\n${tail}` : ""}`,
    {
      hint: "Check that the directory is a git repository and the ref, branch or path exists.",
      cause: err,
      details: { args, cwd, stderr: tail },
    },
  );
}

const hooksOff = new AsyncLocalStorage<boolean>();

/**
 * Runs `fn` with git hooks disabled for every git command it runs (through {@link git} and
 * {@link archive}, also in nested async calls): each gets `-c core.hooksPath=/dev/null`, so no
 * hook of any repository runs, whoever planted it. Used by `packages import`, whose input is
 * untrusted.
 */
export function withoutGitHooks<T>(fn: () => Promise<T>): Promise<T> {
  return hooksOff.run(true, fn);
}

/** `-c core.hooksPath=/dev/null` inside {@link withoutGitHooks}, else nothing. */
function hookArgs(): string[] {
  return hooksOff.getStore() ? ["-c", "core.hooksPath=/dev/null"] : [];
}

/**
 * Runs `git args…` in `cwd` and returns its stdout (final newline stripped). Prompts are
 * disabled (GIT_TERMINAL_PROMPT=0); hooks too inside {@link withoutGitHooks}. Throws
 * `GIT_FAILED` (or `PROGRAM_MISSING` without git).
 */
export async function git(args: string[], cwd: string): Promise<string> {
  requireProgram("git", "git repositories");
  try {
    return await runGit([...hookArgs(), ...args], cwd);
  } catch (err) {
    if (isDockpackError(err) && err.code === "PROGRAM_MISSING") throw err;
    throw gitFailed(args, cwd, err);
  }
}

/** Output as text, one final newline stripped. */
const text = (chunks: Buffer[]) =>
  Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");

/** Most bytes of git output kept (as execa's default maxBuffer); more fails the command. */
const MAX_OUTPUT = 100_000_000;

/**
 * Runs git (stdin closed, output utf-8, one final newline stripped) with node:child_process
 * rather than execa: git runs on the start-up path of `env list`/`env info`, which must not load
 * execa (issue 14 C18). The ambient abort signal (core/abort.ts) kills git and makes this throw
 * `INTERRUPTED`; a non-zero exit throws `COMMAND_FAILED` as core/exec's `run` does.
 */
function runGit(args: string[], cwd: string): Promise<string> {
  const signal = currentSignal();
  return new Promise((done, fail) => {
    const child = spawn("git", args, {
      cwd,
      env: { ...process.env, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" },
      stdio: ["ignore", "pipe", "pipe"],
      ...(signal ? { signal } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let error: Error | undefined;
    child.stdout.on("data", (b: Buffer) => {
      size += b.length;
      if (size <= MAX_OUTPUT) out.push(b);
      else if (!error) {
        error = new Error(`git printed more than ${MAX_OUTPUT} bytes`);
        child.kill();
      }
    });
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      error ??= e;
    });
    child.on("close", (code, killedBy) => {
      if (signal?.aborted) return fail(interrupted(signal));
      if (error) return fail(error);
      if (code !== 0) return fail(commandFailed("git", args, code ?? killedBy, text(err)));
      done(text(out));
    });
  });
}

/**
 * Commits what is staged in `cwd` as user `dockpack <dockpack@localhost>`, with hooks off
 * (`core.hooksPath=/dev/null`, `--no-verify`): for commits dockpack makes in repositories it
 * created or configures, where no hook of the user's or of a package may run.
 * @param options.allowEmpty commit even when nothing is staged
 * @throws DockpackError `GIT_FAILED`
 */
export async function commitAsDockpack(
  cwd: string,
  message: string,
  options: { allowEmpty?: boolean } = {},
): Promise<void> {
  await git(
    [
      "-c",
      "core.hooksPath=/dev/null",
      "-c",
      "user.name=dockpack",
      "-c",
      "user.email=dockpack@localhost",
      "commit",
      "-q",
      "--no-verify",
      ...(options.allowEmpty ? ["--allow-empty"] : []),
      "-m",
      message,
    ],
    cwd,
  );
}

/** True when `dir` is inside a git work tree. Never throws for a missing or plain directory. */
export async function isRepo(dir: string): Promise<boolean> {
  try {
    return (await git(["rev-parse", "--is-inside-work-tree"], dir)) === "true";
  } catch (err) {
    if (isDockpackError(err) && err.code === "PROGRAM_MISSING") throw err;
    return false;
  }
}

/**
 * The top of the work tree containing `dir` (`git rev-parse --show-toplevel`, one git run), or
 * null when `dir` is in no work tree (a plain or missing directory, or inside `.git`).
 * @throws DockpackError `PROGRAM_MISSING` when git is not installed
 */
export async function workTreeTop(dir: string): Promise<string | null> {
  try {
    return await git(["rev-parse", "--show-toplevel"], dir);
  } catch (err) {
    if (isDockpackError(err) && err.code === "PROGRAM_MISSING") throw err;
    return null;
  }
}

/** The absolute path of the top of the work tree containing `dir` (`git rev-parse --show-toplevel`). */
export async function repoRoot(dir: string): Promise<string> {
  return git(["rev-parse", "--show-toplevel"], dir);
}

/** The full commit sha (40 hex) of `ref` (`git rev-parse --verify ref^{commit}`). Throws `GIT_FAILED`. */
export async function revParse(ref: string, cwd: string): Promise<string> {
  return git(["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`], cwd);
}

/** True when `sha` names a commit present in the repository at `cwd`. */
export async function commitExists(sha: string, cwd: string): Promise<boolean> {
  try {
    await git(["cat-file", "-e", `${sha}^{commit}`], cwd);
    return true;
  } catch {
    return false;
  }
}

/** True when the local branch `name` exists (`refs/heads/name`). */
export async function branchExists(name: string, cwd: string): Promise<boolean> {
  try {
    await git(["show-ref", "--verify", "--quiet", `refs/heads/${name}`], cwd);
    return true;
  } catch {
    return false;
  }
}

/** Deletes the local branch `name` (`git branch -d`, or `-D` with `force`). Throws `GIT_FAILED`. */
export async function deleteBranch(name: string, cwd: string, force = false): Promise<void> {
  await git(["branch", force ? "-D" : "-d", "--", name], cwd);
}

/** Options of {@link worktreeAdd}. */
export interface WorktreeAddOptions {
  /** Branch checked out in the new worktree. */
  branch: string;
  /** Start point (commit, branch or tag) when creating the branch; default HEAD. */
  from?: string;
  /** True: create `branch` (fails when it exists); false: check out the existing branch. */
  createBranch: boolean;
}

/**
 * Adds a worktree at `path` (resolved against `cwd`) for the repository at `cwd`
 * (`git worktree add [-b branch] path [from|branch]`). Throws `GIT_FAILED` (e.g. the path exists
 * and is not empty, or the branch is checked out elsewhere).
 */
export async function worktreeAdd(cwd: string, path: string, options: WorktreeAddOptions): Promise<void> {
  const target = resolve(cwd, path);
  const args = options.createBranch
    ? ["worktree", "add", "-b", options.branch, "--", target, ...(options.from ? [options.from] : [])]
    : ["worktree", "add", "--", target, options.branch];
  await git(args, cwd);
}

/** One worktree of a repository. */
export interface Worktree {
  /** Absolute path of the worktree. */
  path: string;
  /** Commit sha checked out (40 hex), or "" for a worktree with no commit yet. */
  head: string;
  /** Branch short name (`feature/x`), or null when detached. */
  branch: string | null;
}

/** The repository's worktrees, main worktree first (`git worktree list --porcelain`). */
export async function worktreeList(cwd: string): Promise<Worktree[]> {
  const out = await git(["worktree", "list", "--porcelain"], cwd);
  const list: Worktree[] = [];
  for (const block of out.split(/\n\n+/)) {
    let current: Worktree | undefined;
    for (const line of block.split("\n")) {
      if (line.startsWith("worktree ")) {
        current = { path: line.slice(9), head: "", branch: null };
        list.push(current);
      } else if (current && line.startsWith("HEAD ")) current.head = line.slice(5);
      else if (current && line.startsWith("branch "))
        current.branch = line.slice(7).replace(/^refs\/heads\//, "");
    }
  }
  return list;
}

/**
 * Removes the worktree at `path` (`git worktree remove [--force] path`, then `git worktree
 * prune`). Without `force`, git refuses a worktree with uncommitted changes: `GIT_FAILED`.
 */
export async function worktreeRemove(
  cwd: string,
  path: string,
  options: { force?: boolean } = {},
): Promise<void> {
  await git(["worktree", "remove", ...(options.force ? ["--force"] : []), "--", resolve(cwd, path)], cwd);
  await git(["worktree", "prune"], cwd);
}

/** Result of {@link status}. */
export interface GitStatus {
  /** True when there are staged, unstaged or untracked (not ignored) changes. */
  dirty: boolean;
  /** `git status --porcelain=v1` lines, e.g. ` M src/a.ts`, `?? new.txt`, `R  old -> new`. */
  entries: string[];
}

/** The work tree's status (`git status --porcelain=v1 -z`, untracked files included). */
export async function status(cwd: string): Promise<GitStatus> {
  const out = await git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd);
  const parts = out.split("\0").filter((p) => p.length > 0);
  const entries: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const entry = parts[i];
    // With -z, a rename or copy is `XY new\0old`; it is shown as porcelain v1 shows it: `XY old -> new`.
    if (entry[0] === "R" || entry[0] === "C") {
      entries.push(`${entry.slice(0, 3)}${parts[i + 1] ?? ""} -> ${entry.slice(3)}`);
      i++;
    } else entries.push(entry);
  }
  return { dirty: entries.length > 0, entries };
}

/**
 * The files of the work tree as a user sees them: tracked files (with their uncommitted
 * changes) plus untracked files that are not ignored, minus tracked files deleted from disk
 * (`git ls-files -co --exclude-standard -z` minus `git ls-files -d -z`). Paths are relative to
 * `cwd`, `/`-separated, sorted by byte order, without duplicates. Submodules appear as their
 * directory path.
 */
export async function listWorkingFiles(cwd: string): Promise<string[]> {
  const split = (s: string) => s.split("\0").filter((p) => p.length > 0);
  const [all, deleted] = await Promise.all([
    git(["ls-files", "-co", "--exclude-standard", "-z"], cwd),
    git(["ls-files", "-d", "-z"], cwd),
  ]);
  const gone = new Set(split(deleted));
  const files = [...new Set(split(all))].filter((f) => !gone.has(f));
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Streams `git archive --format=tar ref` (the committed tree of `ref`, uncommitted changes not
 * included). The returned stream fails with `GIT_FAILED` (stderr tail) when git exits non-zero,
 * e.g. for an unknown ref.
 */
export function archive(cwd: string, ref: string): Readable {
  requireProgram("git", "git archive");
  const args = ["archive", "--format=tar", "--end-of-options", ref];
  const child = spawn("git", [...hookArgs(), ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  const stderr: Buffer[] = [];
  child.stderr.on("data", (b: Buffer) => stderr.push(b));
  // The output ends only once git has exited 0, so a failure is never mistaken for an empty tar.
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  out.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  });
  let spawnError: Error | undefined;
  child.on("error", (e) => {
    spawnError ??= e;
  });
  child.on("close", (code) => {
    if (code === 0 && !spawnError) out.end();
    else
      out.destroy(
        gitFailed(args, cwd, spawnError ?? new Error(Buffer.concat(stderr).toString("utf8").trimEnd())),
      );
  });
  return out;
}
