/** Test helper: runs the built-from-source CLI (through tsx) and captures its output. */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
/** tsx's loader, resolved from here, so that `cwd` may be any folder (Node resolves --import from cwd). */
const TSX = import.meta.resolve("tsx");

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
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    input: options.input,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
}
