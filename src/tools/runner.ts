/**
 * Runs an executable tool once: fills the command's placeholders, passes the input (stdin or an
 * argument), enforces the timeout, and parses the one JSON object the program prints on stdout.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockpackError } from "../core/errors.js";
import type { Tool } from "./manifest.js";
import { runGroup } from "./spawn.js";

/** Largest stdout / stderr a tool may print, in bytes (16 MiB). */
export const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Options of {@link runExecutable}. */
export interface RunToolOptions {
  /** Overrides the manifest's `timeout_seconds` (seconds). */
  timeoutSeconds?: number;
  /** Extra environment for the program (on top of process.env and the manifest's `env.set`). */
  env?: Record<string, string>;
  /** Aborts the run (the program is killed). */
  signal?: AbortSignal;
}

/** What one run of a program produced. */
export interface RunOutcome {
  /** The parsed JSON object from stdout. */
  output: Record<string, unknown>;
  /** Its stderr (the last 64 KiB at most), for logs and `tool recover`. */
  stderr: string;
  /** Wall time, in seconds. */
  durationSeconds: number;
}

/** Environment variable the single executable sets on itself: it is not a plain node. */
export const SEA_SELF_ENV = "DOCKPACK_SEA_SELF";
/** Set on a tool started as `node SCRIPT` under a single executable: the executable runs SCRIPT. */
export const SEA_AS_NODE_ENV = "DOCKPACK_SEA_AS_NODE";

/**
 * The program used for `node` in a command: `$DOCKPACK_NODE`, else this process's node (under a
 * single executable: the executable itself, which runs the script when {@link SEA_AS_NODE_ENV}
 * is set — so a Node tool's exe needs no node installed).
 */
function nodeProgram(): { program: string; env: Record<string, string> } {
  if (process.env.DOCKPACK_NODE) return { program: process.env.DOCKPACK_NODE, env: {} };
  if (process.env[SEA_SELF_ENV] === "1")
    return { program: process.execPath, env: { [SEA_AS_NODE_ENV]: "1" } };
  return { program: process.execPath, env: {} };
}

/**
 * Parses a tool's stdout: the whole text as JSON, else its last non-empty line (tools that log
 * to stdout before the result).
 * @returns the object, or null when no JSON object is found
 */
export function parseToolStdout(stdout: string): Record<string, unknown> | null {
  const tryParse = (s: string) => {
    try {
      const v = JSON.parse(s) as unknown;
      return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  };
  const whole = tryParse(stdout.trim());
  if (whole) return whole;
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  return lines.length ? tryParse(lines[lines.length - 1]) : null;
}

function tail(text: string, lines = 12): string {
  return text.split("\n").slice(-lines).join("\n").trim();
}

/**
 * Runs executable tool `tool` with `input` (already validated).
 * Placeholders: `{tool_dir}` (absolute tool folder), `{input_json}` (the input as JSON text),
 * `{input_file}` (a temp file holding it). The program runs in the tool folder.
 * @throws DockpackError `TOOL_ENV_MISSING` (a required env var is unset), `TOOL_TIMEOUT`,
 *   `TOOL_FAILED` (non-zero exit; message carries the stderr tail, `details.stderr` more),
 *   `TOOL_OUTPUT_NOT_JSON`, `TOOL_OUTPUT_TOO_LARGE`, `PROGRAM_MISSING`
 */
export async function runExecutable(
  tool: Tool,
  input: Record<string, unknown>,
  options: RunToolOptions = {},
): Promise<RunOutcome> {
  const m = tool.manifest;
  if (!m.command) throw new DockpackError("TOOL_NOT_EXECUTABLE", `Tool '${m.id}' has no command.`);
  const env: Record<string, string> = { ...m.env.set, ...options.env };
  const missing = m.env.required.filter((k) => !(env[k] ?? process.env[k]));
  if (missing.length)
    throw new DockpackError(
      "TOOL_ENV_MISSING",
      `Tool '${m.id}' needs the environment variable(s) ${missing.join(", ")}, which are not set.`,
      { hint: `Set ${missing.join(", ")} in the environment (or in .env for a compiled service).` },
    );
  const json = JSON.stringify(input);
  let tmp: string | undefined;
  const argv: string[] = [];
  for (const arg of m.command) {
    let a = arg.replaceAll("{tool_dir}", tool.dir).replaceAll("{input_json}", json);
    if (a.includes("{input_file}")) {
      if (!tmp) {
        tmp = await mkdtemp(join(tmpdir(), "dockpack-tool-"));
        await writeFile(join(tmp, "input.json"), json);
      }
      a = a.replaceAll("{input_file}", join(tmp, "input.json"));
    }
    argv.push(a);
  }
  const node = argv[0] === "node" ? nodeProgram() : undefined;
  const program = node ? node.program : argv[0];
  if (node) Object.assign(env, node.env);
  const timeoutSeconds = options.timeoutSeconds ?? m.timeout_seconds;
  const started = performance.now();
  try {
    // The tool runs in its own process group, and the timeout stops the whole group: a shell
    // command's children would otherwise keep stdout open and outlive the timeout.
    const res = await runGroup(program, argv.slice(1), {
      cwd: tool.dir,
      env,
      input: m.input_mode === "stdin" ? json : "",
      timeoutMs: Math.round(timeoutSeconds * 1000),
      maxBytes: MAX_OUTPUT_BYTES,
      signal: options.signal,
    });
    const durationSeconds = (performance.now() - started) / 1000;
    const { stdout, stderr } = res;
    if (res.timedOut)
      throw new DockpackError(
        "TOOL_TIMEOUT",
        `Tool '${m.id}' did not finish within ${timeoutSeconds} s and was stopped.`,
        {
          hint: "Raise timeout_seconds in tool.yaml if the tool needs longer.",
          details: { timeoutSeconds, stderr: tail(stderr) },
        },
      );
    if (res.tooLarge)
      throw new DockpackError(
        "TOOL_OUTPUT_TOO_LARGE",
        `Tool '${m.id}' printed more than ${MAX_OUTPUT_BYTES} bytes.`,
        {
          hint: "A tool prints one JSON object on stdout; write large data to files instead.",
        },
      );
    if (res.canceled) throw new DockpackError("TOOL_CANCELED", `Tool '${m.id}' was canceled.`);
    const spawnCode = res.spawnError?.code;
    if (spawnCode === "ENOENT")
      throw new DockpackError(
        "PROGRAM_MISSING",
        `Tool '${m.id}': spawn ${argv[0]} ENOENT (program not found).`,
        {
          hint: `Install '${argv[0]}' or fix the command in ${tool.manifestPath}; 'dockpack tool recover ${m.id}' suggests packages.`,
          details: { program: argv[0], stderr: `spawn ${argv[0]} ENOENT` },
        },
      );
    if (res.spawnError)
      throw new DockpackError(
        "TOOL_FAILED",
        `Tool '${m.id}': cannot start ${argv[0]}: ${spawnCode ?? res.spawnError.message}.`,
        {
          hint: `Check that '${argv[0]}' is an executable program (command in ${tool.manifestPath}).`,
          details: { program: argv[0], stderr: `spawn ${argv[0]} ${spawnCode ?? ""}`.trim() },
        },
      );
    if (res.exitCode !== 0) {
      const t = tail(stderr);
      throw new DockpackError(
        "TOOL_FAILED",
        `Tool '${m.id}' failed with exit code ${res.exitCode ?? res.exitSignal}${t ? `:\n${t}` : ""}`,
        {
          hint: `Run 'dockpack tool recover ${m.id} --input …' to look for missing modules or programs.`,
          details: { exitCode: res.exitCode, signal: res.exitSignal, stderr },
        },
      );
    }
    const output = parseToolStdout(stdout);
    if (!output)
      throw new DockpackError(
        "TOOL_OUTPUT_NOT_JSON",
        `Tool '${m.id}' did not print a JSON object on stdout.`,
        {
          hint: "The program must print exactly one JSON object (logs go to stderr).",
          details: { stdout: stdout.slice(0, 2000) },
        },
      );
    return { output, stderr, durationSeconds };
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}
