/** Test helper: runs the built-from-source CLI (through tsx) and captures its output. */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
/** tsx's loader, resolved from here, so that `cwd` may be any folder (Node resolves --import from cwd). */
const TSX = import.meta.resolve("tsx");

const DIST = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
/**
 * Node arguments that run the CLI: the built one when present (scripts/setup.sh builds it; its
 * start-up is a fraction of tsx's), else the sources through tsx.
 */
export const CLI_ARGS: readonly string[] = existsSync(DIST) ? [DIST] : ["--import", TSX, MAIN];

/** Result of {@link runCli}. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `dockpack args…` in `cwd` (default: process cwd) and returns exit code, stdout and stderr. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): CliResult {
  const res = spawnSync(process.execPath, ["--import", TSX, MAIN, ...args], {
    cwd: options.cwd,
    env: cliEnv(options.env),
    input: options.input,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
}

function cliEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, NO_COLOR: "1", ...extra };
}

/**
 * {@link runCli} without blocking the test's event loop: independent CLI runs (each a Node start
 * through tsx, about a second of CPU) can overlap.
 */
export function runCliAsync(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], {
      cwd: options.cwd,
      env: cliEnv(options.env),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
