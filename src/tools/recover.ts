/**
 * `tool recover`: reads a tool's error output, finds what is missing — Python modules
 * (`ModuleNotFoundError`, `ImportError`), Node modules (`Cannot find module`,
 * `ERR_MODULE_NOT_FOUND`) and programs (`command not found`, `spawn X ENOENT`) — maps each to
 * the package that provides it, and prints (or, with `install`, runs) the install commands.
 */

import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { DockpackError, isDockpackError } from "../core/errors.js";
import { PROGRAM_PACKAGES } from "../core/exec.js";
import type { Reporter } from "../core/output.js";
import { silentReporter } from "../core/output.js";
import { directoryResolver, type InvokeResult, invokeTool } from "./invoke.js";

/** Python import names whose PyPI package has another name. */
export const PYTHON_PACKAGES: Record<string, string> = {
  yaml: "pyyaml",
  PIL: "pillow",
  cv2: "opencv-python",
  sklearn: "scikit-learn",
  flask_cors: "flask-cors",
  bs4: "beautifulsoup4",
  dotenv: "python-dotenv",
  dateutil: "python-dateutil",
  skimage: "scikit-image",
  Crypto: "pycryptodome",
  serial: "pyserial",
  magic: "python-magic",
  jwt: "pyjwt",
  docx: "python-docx",
  attr: "attrs",
  google: "protobuf",
};

/** Import names that are also their PyPI package's name (known, so not a guess). */
export const PYTHON_SAME_NAME = new Set([
  "requests",
  "numpy",
  "pandas",
  "scipy",
  "matplotlib",
  "flask",
  "fastapi",
  "uvicorn",
  "httpx",
  "pydantic",
  "jinja2",
  "click",
  "rich",
  "tqdm",
  "boto3",
  "openai",
  "anthropic",
  "ollama",
  "redis",
  "psycopg2",
  "pymongo",
  "lxml",
  "markdown",
  "jsonschema",
  "pytest",
  "aiohttp",
  "sqlalchemy",
  "tiktoken",
]);

/** Valid names: a Python module path, an npm package, a program (none may start with `-`). */
const VALID = {
  python: /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/,
  node: /^(@[a-z0-9~][a-z0-9._~-]*\/)?[a-z0-9~][a-z0-9._~-]*$/,
  program: /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/,
};

/** Programs (beyond those dockpack itself uses) and the Debian package that provides them. */
export const EXTRA_PROGRAM_PACKAGES: Record<string, string> = {
  curl: "curl",
  wget: "wget",
  jq: "jq",
  python3: "python3",
  python: "python-is-python3",
  pip: "python3-pip",
  pip3: "python3-pip",
  node: "nodejs",
  npm: "npm",
  ffmpeg: "ffmpeg",
  ffprobe: "ffmpeg",
  convert: "imagemagick",
  identify: "imagemagick",
  pdftotext: "poppler-utils",
  tesseract: "tesseract-ocr",
  unzip: "unzip",
  zip: "zip",
  make: "make",
  gcc: "gcc",
  rsync: "rsync",
  ssh: "openssh-client",
  sqlite3: "sqlite3",
  pandoc: "pandoc",
  gs: "ghostscript",
};

/** One missing thing found in the log. */
export interface MissingItem {
  kind: "python" | "node" | "program";
  /** The name as the log says it (import name, module specifier, program). */
  name: string;
  /** The package that provides it (PyPI, npm, Debian). */
  package: string;
  /**
   * True when the package is known (a mapping, or a known same-name package); false when it is a
   * guess (the same name), which `install` never runs.
   */
  mapped: boolean;
  /** The log line it was found on. */
  evidence: string;
}

/** An install command. */
export interface InstallCommand {
  manager: "pip" | "npm" | "apt";
  program: string;
  args: string[];
  /** The command as one shell line. */
  line: string;
}

/** Result of {@link recoverTool}. */
export interface RecoverResult {
  /** `log:<file>` or `tool:<id>`. */
  source: string;
  missing: MissingItem[];
  /** Commands for the known packages (what `install` runs). */
  commands: InstallCommand[];
  /** Commands for guessed package names: check the names first, never run by `install`. */
  guessed_commands: InstallCommand[];
  /** True when the commands ran (`install`), false when only printed. */
  installed: boolean;
  /** The commands that would run, with `dryRun`. */
  dry_run: boolean;
  /** The result of running the tool again (`retry`). */
  retry?:
    | { success: true; result: InvokeResult }
    | { success: false; error: { code: string; message: string } };
}

/** The top-level package of a Python module path: `PIL.Image` → `PIL`. */
function pythonPackage(module: string): string {
  const top = module.split(".")[0];
  return PYTHON_PACKAGES[top] ?? top.replaceAll("_", "-").toLowerCase();
}

/** The npm package of a specifier: `lodash/fp` → `lodash`, `@a/b/c` → `@a/b`; null for paths and builtins. */
export function nodePackage(specifier: string): string | null {
  if (/^(\.|\/|[A-Za-z]:\\|file:|node:)/.test(specifier)) return null;
  const parts = specifier.split("/");
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  if (builtinModules.includes(name)) return null;
  return name;
}

/** The Debian package that provides `program`. */
export function programPackage(program: string): string {
  return PROGRAM_PACKAGES[program] ?? EXTRA_PROGRAM_PACKAGES[program] ?? program;
}

const PATTERNS: { kind: MissingItem["kind"]; re: RegExp; group?: number }[] = [
  { kind: "python", re: /ModuleNotFoundError: No module named '([^']+)'/ },
  { kind: "python", re: /ImportError: No module named '?([A-Za-z0-9_.]+)'?/ },
  // `from flask_cors import CORS` against a missing or wrong package (the seed's example).
  { kind: "python", re: /ImportError: cannot import name '[^']+' from '([^']+)'/ },
  { kind: "node", re: /Cannot find (?:module|package) '([^']+)'/ },
  { kind: "node", re: /ERR_MODULE_NOT_FOUND.*?['"]([^'"]+)['"]/ },
  // Shell messages only: `bash: X: command not found`, `sh: 1: X: not found`, `/bin/sh: X: not found`
  // (not any "X: not found", which is how tools report missing files).
  { kind: "program", re: /(?:^|\s|:)([A-Za-z0-9_.+-]+): command not found\s*$/ },
  {
    kind: "program",
    re: /^(?:\/(?:usr\/)?bin\/)?(?:ba|da|z|k)?sh: (?:line )?(?:\d+: )?([A-Za-z0-9_.+-]+): not found\s*$/,
  },
  { kind: "program", re: /spawn ([^\s]+) ENOENT/ },
  { kind: "program", re: /(?:execvp|exec)\(?\)?:? ?'?([^\s':]+)'?: No such file or directory/ },
];

/**
 * Finds missing Python modules, Node modules and programs in error output (any order,
 * duplicates removed). Relative module paths and Node builtins are ignored.
 */
export function detectMissing(log: string): MissingItem[] {
  const out: MissingItem[] = [];
  const seen = new Set<string>();
  for (const raw of log.split("\n")) {
    const line = raw.trimEnd();
    for (const { kind, re } of PATTERNS) {
      const m = re.exec(line);
      if (!m) continue;
      let name = m[1];
      if (kind === "program") name = name.split("/").pop() ?? name;
      // Never let a log line put an option or a path into an install command.
      if (!VALID[kind].test(kind === "python" ? name : kind === "node" ? (nodePackage(name) ?? "") : name))
        break;
      let pkg: string | null;
      if (kind === "python") pkg = pythonPackage(name);
      else if (kind === "node") pkg = nodePackage(name);
      else pkg = programPackage(name);
      if (!pkg) continue;
      const key = `${kind}:${pkg}`;
      if (seen.has(key)) break;
      seen.add(key);
      const mapped =
        kind === "python"
          ? name.split(".")[0] in PYTHON_PACKAGES || PYTHON_SAME_NAME.has(name.split(".")[0])
          : kind === "program"
            ? name in PROGRAM_PACKAGES || name in EXTRA_PROGRAM_PACKAGES
            : true;
      out.push({ kind, name, package: pkg, mapped, evidence: line.trim().slice(0, 300) });
      break;
    }
  }
  return out;
}

/**
 * The install commands for `missing`: one `python3 -m pip install …`, one `npm install …`
 * (in `nodeDir` when given), one `apt-get install -y …` (prefixed with sudo when not root).
 */
export function installCommands(
  missing: MissingItem[],
  options: { nodeDir?: string } = {},
): InstallCommand[] {
  const by = (k: MissingItem["kind"]) => [
    ...new Set(missing.filter((m) => m.kind === k).map((m) => m.package)),
  ];
  const cmds: InstallCommand[] = [];
  const add = (manager: InstallCommand["manager"], program: string, args: string[]) =>
    cmds.push({
      manager,
      program,
      args,
      line: [program, ...args].map((a) => (/^[\w@./:=+~-]+$/.test(a) ? a : `'${a}'`)).join(" "),
    });
  const pip = by("python");
  if (pip.length) add("pip", "python3", ["-m", "pip", "install", ...pip]);
  const npm = by("node");
  if (npm.length)
    add("npm", "npm", ["install", ...(options.nodeDir ? ["--prefix", options.nodeDir] : []), ...npm]);
  const apt = by("program");
  if (apt.length) {
    const root = typeof process.getuid === "function" && process.getuid() === 0;
    if (root) add("apt", "apt-get", ["install", "-y", ...apt]);
    else add("apt", "sudo", ["apt-get", "install", "-y", ...apt]);
  }
  return cmds;
}

/** Options of {@link recoverTool}. */
export interface RecoverOptions {
  /** A log file holding the error output (or give `id` + `input`). */
  fromLog?: string;
  /** A tool to run (its failure output is analysed). */
  id?: string;
  /** The tool input (with `id`). */
  input?: unknown;
  toolsDir?: string;
  /** Run the install commands. Refused when `$DOCKPACK_NO_AUTO_INSTALL=1` (generated images). */
  install?: boolean;
  /** With `install`: report the commands without running them. */
  dryRun?: boolean;
  /** Run the tool once more afterwards (needs `id`); default: after an install that ran. */
  retry?: boolean;
}

/**
 * Recovers from missing dependencies: detect, map, print or run install commands, retry.
 * @throws DockpackError `RECOVER_SOURCE_MISSING` (usage: neither `fromLog` nor `id`),
 *   `RECOVER_INSTALL_DISABLED` (install inside a generated image), `FS_ENOENT` (log file),
 *   `COMMAND_FAILED` (an install command failed)
 */
export async function recoverTool(
  options: RecoverOptions,
  reporter: Reporter = silentReporter(),
): Promise<RecoverResult> {
  if (!options.fromLog && !options.id)
    throw new DockpackError(
      "RECOVER_SOURCE_MISSING",
      "Give --from-log FILE, or a tool id and --input JSON.",
      {
        usage: true,
      },
    );
  if (options.retry && !options.id)
    throw new DockpackError("RECOVER_SOURCE_MISSING", "--retry needs a tool id to run again.", {
      usage: true,
    });
  const noAuto = process.env.DOCKPACK_NO_AUTO_INSTALL === "1";
  if (options.install && noAuto && !options.dryRun)
    throw new DockpackError(
      "RECOVER_INSTALL_DISABLED",
      "Automatic installing is off here (DOCKPACK_NO_AUTO_INSTALL=1).",
      {
        hint: "Inside a generated image, add the packages to tool.yaml dependencies and rebuild the image.",
      },
    );
  let log = "";
  let source: string;
  let nodeDir: string | undefined;
  if (options.fromLog) {
    source = `log:${options.fromLog}`;
    try {
      log = await readFile(options.fromLog, "utf8");
    } catch (e) {
      throw new DockpackError("FS_ENOENT", `Cannot read the log file ${options.fromLog}.`, {
        cause: e,
        usage: true,
      });
    }
  } else {
    source = `tool:${options.id}`;
    const tool = await directoryResolver(options.toolsDir)(options.id as string);
    nodeDir = tool.dir;
    try {
      await invokeTool({ tool, toolsDir: options.toolsDir, input: options.input ?? {} });
      reporter.info(`tool '${options.id}' ran without error; nothing to recover`);
    } catch (e) {
      if (!isDockpackError(e)) throw e;
      log = [e.message, String(e.details?.stderr ?? "")].join("\n");
    }
  }
  const missing = detectMissing(log);
  const commands = installCommands(
    missing.filter((m) => m.mapped),
    { nodeDir },
  );
  const guessed = installCommands(
    missing.filter((m) => !m.mapped),
    { nodeDir },
  );
  let installed = false;
  if (options.install && !options.dryRun) {
    for (const g of guessed)
      reporter.warn(`not running '${g.line}': the package name is a guess; check it, then run it by hand`);
    for (const c of commands) {
      reporter.info(`running: ${c.line}`);
      // The installers' output goes to stderr: stdout carries only the result (--json).
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(c.program, c.args, { stdio: ["ignore", 2, 2] });
        child.on("error", () => resolve(127));
        child.on("exit", (exit) => resolve(exit));
      });
      if (code !== 0)
        throw new DockpackError("COMMAND_FAILED", `'${c.line}' failed with exit code ${code}.`, {
          hint: "Run it by hand to see why.",
        });
    }
    installed = commands.length > 0;
  }
  const result: RecoverResult = {
    source,
    missing,
    commands,
    guessed_commands: guessed,
    installed,
    dry_run: Boolean(options.install && options.dryRun),
  };
  // Recovery re-runs the tool after installing (as the seed's recovery does), unless told not to.
  if (options.id && (options.retry ?? installed)) {
    try {
      result.retry = {
        success: true,
        result: await invokeTool({ id: options.id, toolsDir: options.toolsDir, input: options.input ?? {} }),
      };
    } catch (e) {
      const err = isDockpackError(e) ? e : new DockpackError("INTERNAL_ERROR", String(e));
      result.retry = { success: false, error: { code: err.code, message: err.message } };
    }
  }
  return result;
}
