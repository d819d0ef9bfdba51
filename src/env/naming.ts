/**
 * Per-environment names: the compose project `<project>-<branch>` (sanitised the way
 * docker-compose v1 normalises project names: lower case, only `[a-z0-9_-]`), the Docker volume
 * `<project>-<branch>_<volume>` of each logical volume, the worktree folder, and free host ports.
 */
import { createServer } from "node:net";
import { DockpackError } from "../core/errors.js";

/**
 * Sanitises a branch name for use in Docker object names: lower case, every run of characters
 * outside `[a-z0-9_-]` (e.g. `/`, `.`) becomes one `-`, leading/trailing `-` removed.
 * `feature/Login.v2` → `feature-login-v2`.
 */
export function sanitizeName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+|[-_]+$/g, "");
}

/**
 * Checks a git branch name for use as an environment (git check-ref-format rules, simplified).
 * @throws DockpackError `ENV_BRANCH_INVALID` (usage) naming the branch and the problem
 */
export function checkBranchName(branch: string): void {
  const bad =
    !branch ||
    branch.startsWith("-") ||
    branch.startsWith("/") ||
    branch.endsWith("/") ||
    branch.endsWith(".lock") ||
    branch.includes("..") ||
    branch.includes("//") ||
    branch === "@" ||
    /[\s~^:?*[\\\x00-\x1f\x7f]/.test(branch);
  if (bad || sanitizeName(branch) === "")
    throw new DockpackError("ENV_BRANCH_INVALID", `'${branch}' is not a usable branch name.`, {
      hint: "Use letters, digits, '-', '_', '.' and '/' (e.g. feature/login).",
      usage: true,
    });
}

/** The compose project name of `branch`: `<project>-<sanitised branch>`. */
export function composeProjectName(project: string, branch: string): string {
  return `${project}-${sanitizeName(branch)}`;
}

/** The Docker volume name of logical volume `volume` in compose project `composeProject`. */
export function volumeName(composeProject: string, volume: string): string {
  return `${composeProject}_${volume}`;
}

/** The worktree folder name of `branch` (sanitised, `/` kept out). */
export function worktreeFolder(branch: string): string {
  return sanitizeName(branch);
}

/** True when `port` can be bound on all interfaces right now (TCP). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "0.0.0.0", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * Picks `count` host ports from `[lo, hi]` that no other environment has recorded (`taken`) and
 * that can be bound now.
 * @throws DockpackError `ENV_NO_FREE_PORT` when the range is exhausted
 */
export async function allocatePorts(
  count: number,
  range: [number, number],
  taken: Set<number>,
): Promise<number[]> {
  const out: number[] = [];
  for (let p = range[0]; p <= range[1] && out.length < count; p++) {
    if (taken.has(p)) continue;
    if (await portIsFree(p)) out.push(p);
  }
  if (out.length < count)
    throw new DockpackError(
      "ENV_NO_FREE_PORT",
      `No ${count} free host port(s) left in ${range[0]}–${range[1]} for the environment.`,
      { hint: "Remove unused environments or widen port_range in .dockpack/config.yml." },
    );
  return out;
}
