/**
 * The one adapter to the compose CLI: `docker compose` (Compose v2 plugin) when
 * `docker compose version` works, otherwise `docker-compose` (Compose v1, ≥ 1.27 for
 * `--env-file`). Runs compose sub-commands ({@link runCompose}) and asks compose for the resolved
 * project model ({@link composeConfig}): `docker compose config --format json` (v2) or
 * `docker-compose config` (v1, YAML 1.1 as PyYAML writes it). Follows the Compose
 * specification's CLI flags common to both: `-p/--project-name`, `-f/--file`, `--env-file`,
 * `--project-directory`.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import YAML from "yaml";
import { DockpackError } from "../errors.js";
import { findProgram, type RunResult } from "../exec.js";
import { cachedComposeVersion } from "./compose-version-cache.js";

/** The compose program in use, its leading arguments and its major version. */
export interface ComposeCommand {
  /** `docker` (v2 plugin) or `docker-compose` (v1, or a v2 standalone binary). */
  program: string;
  /** Leading arguments: `["compose"]` for the plugin, `[]` otherwise. */
  args: string[];
  /** Compose major version: 1 (Python docker-compose) or 2 (Go compose). */
  major: 1 | 2;
  /** The version compose reports, e.g. `1.29.2` or `2.24.5`. */
  version: string;
}

let detected: ComposeCommand | undefined;

/**
 * Parses what `compose version --short` (or `version`) prints into a major version and version
 * string: `1.29.2`, `v2.24.5`, `docker-compose version 1.29.2, build unknown`,
 * `Docker Compose version v2.24.5`. Returns null for text that names no version.
 */
export function parseComposeVersion(text: string): { major: 1 | 2; version: string } | null {
  const m = /v?(\d+)\.(\d+)\.(\d+)[^\s,]*/.exec(text);
  if (!m) return null;
  const major = Number(m[1]) >= 2 ? 2 : 1;
  return { major, version: m[0].replace(/^v/, "") };
}

function probe(program: string, args: string[]): { major: 1 | 2; version: string } | null {
  try {
    const out = execFileSync(program, [...args, "version"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 15_000,
    });
    return parseComposeVersion(out.split("\n")[0] ?? "");
  } catch {
    return null;
  }
}

/**
 * The compose program, its leading arguments and version: `docker compose` (v2) when the plugin
 * answers, else `docker-compose` (v1 or a standalone v2). Detected once per process (runs
 * `compose version`, ≤ 15 s each; `docker-compose`'s answer is cached across runs by
 * compose-version-cache.ts, as that Python program takes ~0.9 s to start). `DOCKPACK_COMPOSE=docker-compose` skips the plugin probe.
 * @throws DockpackError `PROGRAM_MISSING` when neither is installed
 */
export function composeCommand(): ComposeCommand {
  if (detected) return detected;
  if (process.env.DOCKPACK_COMPOSE !== "docker-compose" && findProgram("docker")) {
    const v = probe("docker", ["compose"]);
    if (v) {
      detected = { program: "docker", args: ["compose"], ...v };
      return detected;
    }
  }
  const v1 = findProgram("docker-compose");
  if (v1) {
    const v = cachedComposeVersion(v1, () => probe(v1, [])) ?? { major: 1 as const, version: "unknown" };
    detected = { program: "docker-compose", args: [], ...v };
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
  /** Compose project name (`-p`): lowercase letters, digits, `-`, `_`; omitted: compose's own. */
  projectName?: string;
  /** `--project-directory` (compose's default: the first file's folder). */
  projectDirectory?: string;
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
  if (options.projectName !== undefined && !/^[a-z0-9][a-z0-9_-]*$/.test(options.projectName)) {
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
    ...(options.projectName !== undefined ? ["-p", options.projectName] : []),
    ...(options.projectDirectory ? ["--project-directory", options.projectDirectory] : []),
    ...files.flatMap((f) => ["-f", f]),
    ...(options.envFile ? ["--env-file", resolve(options.cwd, options.envFile)] : []),
    ...options.args,
  ];
  const { execa } = await import("execa"); // loaded on first use: `env list` never runs compose
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
      `'${[program, ...lead, ...(options.projectName !== undefined ? ["-p", options.projectName] : []), ...options.args].join(" ")}' failed (exit ${res.exitCode ?? res.signal}) for ${where}${tail ? `:\n${tail}` : ""}`,
      {
        hint: "Read the compose output above; check the compose file and that the images exist locally.",
        details: { program, args, files, exitCode: res.exitCode, output: tail },
      },
    );
  }
  return { stdout, stderr, exitCode: 0 };
}

/** Options of {@link composeConfig}. */
export interface ComposeConfigOptions {
  /** Working directory; compose resolves relative `files` and finds its default files here. */
  cwd: string;
  /** Compose files (`-f`, in order); empty: compose's own lookup (COMPOSE_FILE, override file). */
  files: string[];
  /** Extra environment variables for interpolation (added to this process's environment). */
  env?: Record<string, string>;
}

/** Words in compose v1's messages that mean "this file needs Compose v2". */
const V2_ONLY =
  /Invalid top-level property "(name|include)"|constructor for the tag '!(reset|override)'|Unsupported config option for services(\.\S+)?: '(develop|post_start|pre_stop)'|not supported in the compose file format/;

/**
 * Asks compose for the resolved project model: interpolation, `.env`, `env_file`, override
 * files, `extends`, `include` (v2), anchors and merge keys, profiles and relative paths are all
 * resolved by compose itself. v2: `docker compose config --format json`; v1: `docker-compose
 * config` (YAML written by PyYAML, read here as YAML 1.1 so quoted words like `'no'` stay strings).
 * @returns the resolved document (services, volumes, networks, secrets, configs …)
 * @throws DockpackError `COMPOSE_CONFIG_FAILED` with compose's own message (and, for v1, the
 *   hint that Compose v2 reads files using `include`, `!reset`, top-level `name` …)
 */
export async function composeConfig(options: ComposeConfigOptions): Promise<Record<string, unknown>> {
  const cmd = composeCommand();
  const args = [
    ...cmd.args,
    ...options.files.flatMap((f) => ["-f", resolve(options.cwd, f)]),
    "config",
    ...(cmd.major === 2 ? ["--format", "json"] : []),
  ];
  const { execa } = await import("execa");
  const res = await execa(cmd.program, args, {
    cwd: options.cwd,
    env: { COMPOSE_INTERACTIVE_NO_CLI: "1", ...options.env },
    reject: false,
    stripFinalNewline: true,
    maxBuffer: 256 * 1024 * 1024,
  });
  const where = options.files.length ? options.files.join(", ") : `the compose files of ${options.cwd}`;
  if (res.exitCode !== 0) {
    const msg = String(res.stderr || res.stdout || "")
      .trim()
      .split("\n")
      .slice(-15)
      .join("\n");
    const needsV2 = cmd.major === 1 && V2_ONLY.test(msg);
    throw new DockpackError(
      "COMPOSE_CONFIG_FAILED",
      `Compose ${cmd.version} (${[cmd.program, ...cmd.args].join(" ")}) cannot read ${where}: ${msg}`,
      {
        hint: needsV2
          ? `This file uses a feature of Compose v2 (docker compose ≥ 2.20 reads 'include', '!reset', '!override' and top-level 'name'); this machine has docker-compose ${cmd.version}. Install the compose plugin (apt-get install docker-compose-plugin) or change the file.`
          : "Fix what compose names above; 'docker compose config' (v2) or 'docker-compose config' (v1) shows the same message.",
        details: { program: cmd.program, version: cmd.version, files: options.files, output: msg },
      },
    );
  }
  return parseComposeConfigOutput(String(res.stdout), cmd.major, where);
}

/**
 * The YAML 1.1 tags as PyYAML resolves them (compose v1 writes with PyYAML): booleans are only
 * yes/no/true/false/on/off (not `y`/`n`), and timestamps stay strings.
 */
function pyyamlTags(tags: YAML.Tags): YAML.Tags {
  return tags
    .filter((t) => !(typeof t === "object" && t.tag === "tag:yaml.org,2002:timestamp"))
    .map((t) => {
      if (typeof t !== "object" || t.tag !== "tag:yaml.org,2002:bool" || !("test" in t) || !t.test) return t;
      const truthy = t.test.test("true");
      return {
        ...t,
        test: truthy ? /^(?:[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$/ : /^(?:[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$/,
      } as YAML.ScalarTag;
    });
}

/**
 * Parses the output of `compose config`: JSON for v2 (`--format json`), YAML 1.1 for v1.
 * @throws DockpackError `COMPOSE_CONFIG_FAILED` when the output is not a mapping with services
 */
export function parseComposeConfigOutput(
  text: string,
  major: 1 | 2,
  where = "the compose files",
): Record<string, unknown> {
  let doc: unknown;
  try {
    doc =
      major === 2 && text.trimStart().startsWith("{")
        ? JSON.parse(text)
        : YAML.parse(text, {
            version: "1.1",
            maxAliasCount: -1,
            merge: true,
            uniqueKeys: false,
            customTags: pyyamlTags,
          });
  } catch (err) {
    throw new DockpackError(
      "COMPOSE_CONFIG_FAILED",
      `compose config printed unreadable output for ${where}: ${(err as Error).message}`,
      {
        hint: "Run the compose config command yourself to see what it prints.",
        cause: err,
      },
    );
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new DockpackError("COMPOSE_CONFIG_FAILED", `compose config printed no project for ${where}.`, {
      hint: "Check that the compose files declare services.",
    });
  return doc as Record<string, unknown>;
}
