/**
 * Child processes: find well-known programs, say how to install them when they are missing, and
 * run them with errors that name the program and carry the tail of its stderr.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import type { Options as ExecaOptions } from "execa";
import { currentSignal, interrupted } from "./abort.js";
import { DockpackError } from "./errors.js";

/** Debian package that provides each program dockpack may call. */
export const PROGRAM_PACKAGES: Record<string, string> = {
  git: "git",
  zstd: "zstd",
  xz: "xz-utils",
  bzip2: "bzip2",
  pbzip2: "pbzip2",
  xdelta3: "xdelta3",
  bsdiff: "bsdiff",
  bspatch: "bsdiff",
  skopeo: "skopeo",
  debootstrap: "debootstrap",
  busybox: "busybox-static",
  docker: "docker.io",
  dockerd: "docker.io",
  "docker-compose": "docker-compose",
  tar: "tar",
};

const found = new Map<string, string | null>();

/** Returns the absolute path of `program` on PATH, or null. Cached per process. */
export function findProgram(program: string): string | null {
  const cached = found.get(program);
  if (cached !== undefined) return cached;
  let hit: string | null = null;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      hit = candidate;
      break;
    } catch {
      // not here
    }
  }
  found.set(program, hit);
  return hit;
}

/**
 * Returns the path of `program`, or throws `PROGRAM_MISSING` naming the Debian package that
 * provides it (`apt-get install <pkg>`).
 * @param purpose what it is needed for, e.g. `zstd compression`
 */
export function requireProgram(program: string, purpose?: string): string {
  const path = findProgram(program);
  if (path) return path;
  const pkg = PROGRAM_PACKAGES[program] ?? program;
  throw new DockpackError(
    "PROGRAM_MISSING",
    `The program '${program}' is not installed${purpose ? ` (needed for ${purpose})` : ""}.`,
    { hint: `Install it: on Debian/Ubuntu 'apt-get install ${pkg}', or run scripts/setup.sh.` },
  );
}

/** Result of {@link run}. */
export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Runs `program args…` to completion and returns its output (utf-8). Throws `COMMAND_FAILED`
 * (message: the command line, exit code and the last lines of stderr) when it exits non-zero,
 * or `PROGRAM_MISSING` when it is not installed. The ambient abort signal (core/abort.ts) kills
 * the program (unless `options.cancelSignal` is given) and makes this throw `INTERRUPTED`.
 */
export async function run(program: string, args: string[], options: ExecaOptions = {}): Promise<RunResult> {
  requireProgram(program);
  const signal = options.cancelSignal ?? currentSignal();
  // loaded on first use: execa is ~120 modules, and most commands' start-up never runs a program
  const { execa } = await import("execa");
  const res = await execa(program, args, {
    reject: false,
    stripFinalNewline: true,
    ...(signal ? { cancelSignal: signal } : {}),
    ...options,
  });
  if (res.isCanceled || signal?.aborted) throw interrupted(signal);
  const stdout = typeof res.stdout === "string" ? res.stdout : "";
  const stderr = typeof res.stderr === "string" ? res.stderr : "";
  if (res.exitCode !== 0) throw commandFailed(program, args, res.exitCode ?? res.signal, stderr);
  return { stdout, stderr, exitCode: 0 };
}

/**
 * The `COMMAND_FAILED` error of a program that exited non-zero (or was killed by `status`, a
 * signal name): the command line, the status and the last 8 lines of its stderr, also in
 * `details` (`program`, `args`, `exitCode`, `stderr`).
 */
export function commandFailed(
  program: string,
  args: string[],
  status: number | string | null | undefined,
  stderr: string,
): DockpackError {
  const tail = stderr.split("\n").slice(-8).join("\n");
  return new DockpackError(
    "COMMAND_FAILED",
    `'${program} ${args.join(" ")}' failed with exit code ${status}${tail ? `:\n${tail}` : ""}`,
    { details: { program, args, exitCode: typeof status === "number" ? status : undefined, stderr: tail } },
  );
}

/**
 * True when a process with this pid exists (signal 0 succeeds, or is refused with EPERM because
 * it belongs to another user). Used to spot lock and temp files left by processes that died.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
