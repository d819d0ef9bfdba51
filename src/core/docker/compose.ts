/**
 * The compose runner: `docker compose` (Compose v2 plugin) when `docker compose version` works,
 * otherwise `docker-compose` (Compose v1, ≥ 1.27 for `--env-file`). Follows the Compose
 * specification's CLI flags common to both: `-p/--project-name`, `-f/--file`, `--env-file`.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { execa } from "execa";
import { DockpackError } from "../errors.js";
import { findProgram, type RunResult } from "../exec.js";

let detected: { program: string; args: string[] } | undefined;

/**
 * The compose program and its leading arguments: `{ program: "docker", args: ["compose"] }` for
 * Compose v2, `{ program: "docker-compose", args: [] }` for v1. Detected once per process
 * (runs `docker compose version`, ≤ 10 s). Throws `PROGRAM_MISSING` when neither is installed.
 */
export function composeCommand(): { program: string; args: string[] } {
  if (detected) return detected;
  if (findProgram("docker")) {
    try {
      execFileSync("docker", ["compose", "version"], { stdio: "ignore", timeout: 10_000 });
      detected = { program: "docker", args: ["compose"] };
      return detected;
    } catch {
      // no v2 plugin
    }
  }
  if (findProgram("docker-compose")) {
    detected = { program: "docker-compose", args: [] };
    return detected;
  }
  throw new DockpackError(
    "PROGRAM_MISSING",
    "Neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed.",
    {
      hint: "Install one: on Debian/Ubuntu 'apt-get install docker-compose', or run scripts/setup.sh.",
    },
  );
}

/** Options of {@link runCompose}. */
export interface ComposeRunOptions {
  /** Working directory; relative `files` and `envFile` are resolved against it. */
  cwd: string;
  /** Compose project name (`-p`): lowercase letters, digits, `-`, `_`. */
  projectName: string;
  /** Compose files (`-f`, in order); empty: compose's default lookup in `cwd`. */
  files: string[];
  /** `--env-file` for variable substitution. */
  envFile?: string;
  /** The compose sub-command and its arguments, e.g. `["up", "-d"]`. */
  args: string[];
  /** Extra environment variables (added to this process's environment). */
  env?: Record<string, string>;
}

/**
 * Runs `<compose> -p project -f file… [--env-file f] args…` in `cwd` to completion and returns
 * its stdout/stderr (utf-8). Throws `COMPOSE_FILE_NOT_FOUND` (naming it) before running when a
 * compose or env file is missing, `COMPOSE_PROJECT_INVALID` (usage) for a bad project name, and
 * `COMPOSE_FAILED` naming the compose file(s), the sub-command and the last lines of its output
 * when it exits non-zero.
 */
export async function runCompose(options: ComposeRunOptions): Promise<RunResult> {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(options.projectName)) {
    throw new DockpackError(
      "COMPOSE_PROJECT_INVALID",
      `'${options.projectName}' is not a valid compose project name (lowercase letters, digits, '-' and '_', starting with a letter or digit).`,
      { usage: true, hint: "Choose a name like my-app_2." },
    );
  }
  const files = options.files.map((f) => resolve(options.cwd, f));
  for (const file of [...files, ...(options.envFile ? [resolve(options.cwd, options.envFile)] : [])]) {
    if (!existsSync(file)) {
      throw new DockpackError("COMPOSE_FILE_NOT_FOUND", `Compose file ${file} does not exist.`, {
        hint: "Check the path, or create the file.",
        details: { file },
      });
    }
  }
  const { program, args: lead } = composeCommand();
  const args = [
    ...lead,
    "-p",
    options.projectName,
    ...files.flatMap((f) => ["-f", f]),
    ...(options.envFile ? ["--env-file", resolve(options.cwd, options.envFile)] : []),
    ...options.args,
  ];
  const res = await execa(program, args, {
    cwd: options.cwd,
    env: { COMPOSE_INTERACTIVE_NO_CLI: "1", ...options.env },
    reject: false,
    stripFinalNewline: true,
    all: true,
  });
  const stdout = typeof res.stdout === "string" ? res.stdout : "";
  const stderr = typeof res.stderr === "string" ? res.stderr : "";
  if (res.exitCode !== 0) {
    const all = typeof res.all === "string" ? res.all : `${stdout}\n${stderr}`;
    const tail = all.trim().split("\n").slice(-12).join("\n");
    const where = files.length ? files.join(", ") : `the compose file in ${options.cwd}`;
    throw new DockpackError(
      "COMPOSE_FAILED",
      `'${[program, ...lead, "-p", options.projectName, ...options.args].join(" ")}' failed (exit ${res.exitCode ?? res.signal}) for ${where}${tail ? `:\n${tail}` : ""}`,
      {
        hint: "Read the compose output above; check the compose file and that the images exist locally.",
        details: { program, args, files, exitCode: res.exitCode, output: tail },
      },
    );
  }
  return { stdout, stderr, exitCode: 0 };
}
