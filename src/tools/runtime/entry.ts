/**
 * The entry point of a compiled tool service, bundled by esbuild into one CommonJS file
 * (`server.cjs` in the container, the main script of the single executable).
 *
 * - Container / plain node: serves the tool `$TOOL_ID` (default: the compiled tool) from
 *   `$TOOLS_DIR` (default: `tools/` next to this file), configured by the environment
 *   (API_PORT, API_HOST, API_TOKEN, CORS_ORIGINS, RATE_LIMIT_PER_MINUTE, MAX_BODY_BYTES, MAX_CONCURRENT_INVOKES).
 * - Single executable (Node SEA): the tool's files are SEA assets, extracted once to a
 *   content-addressed folder under the temp dir. With `--input JSON`, `--file F` or
 *   `--prompt TEXT` it runs the tool once and prints the result; with no arguments it serves.
 */
import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir, userInfo } from "node:os";
import { dirname, join, resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { isDockpackError } from "../../core/errors.js";
import { directoryResolver, invokeTool } from "../invoke.js";
import { findTool } from "../manifest.js";
import { promptInput } from "../prompt.js";
import { WATCHDOG_ENV, watchdogMain } from "../reaper.js";
import { SEA_AS_NODE_ENV, SEA_SELF_ENV } from "../runner.js";
import { closureWith, missingPrograms } from "../runtimes.js";
import { serveUntilSignal, serviceConfigFromEnv } from "../server.js";

declare const __DOCKPACK_TOOL_ID__: string;

/** The index asset of a single executable: which files make up the tools folder. */
export interface SeaIndex {
  toolId: string;
  files: { key: string; path: string; mode: number; sha256: string }[];
}

interface SeaModule {
  isSea(): boolean;
  getAsset(key: string, encoding?: string): ArrayBuffer | string;
}

function seaModule(): SeaModule | undefined {
  try {
    const sea = require("node:sea") as SeaModule;
    return sea.isSea() ? sea : undefined;
  } catch {
    return undefined;
  }
}

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** True when `dir` holds exactly the files of `index` (content hashes checked) and only we can write it. */
async function verified(dir: string, index: SeaIndex): Promise<boolean> {
  try {
    const st = await lstat(dir);
    if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) return false;
    for (const f of index.files) {
      const p = join(dir, f.path);
      const fst = await lstat(p);
      if (!fst.isFile() || fst.uid !== st.uid || (fst.mode & 0o022) !== 0) return false;
      if (sha256(await readFile(p)) !== f.sha256) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Extracts the SEA assets into a private folder (mode 0700, named by the content hash and the
 * user) and checks every file's sha256 against `index.json` on each start: a folder edited,
 * replaced or owned by someone else is extracted again.
 */
async function extractAssets(sea: SeaModule): Promise<string> {
  const indexText = sea.getAsset("index.json", "utf8") as string;
  const index = JSON.parse(indexText) as SeaIndex;
  const hash = sha256(indexText).slice(0, 16);
  let user = "u";
  try {
    user = String(userInfo().uid);
  } catch {
    // keep "u"
  }
  const dest = join(tmpdir(), `dockpack-tool-${index.toolId}-${hash}-${user}`);
  if (await verified(dest, index)) return dest;
  const stage = `${dest}.tmp-${process.pid}-${Date.now()}`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { mode: 0o700 });
  for (const f of index.files) {
    const data = Buffer.from(sea.getAsset(f.key) as ArrayBuffer);
    if (sha256(data) !== f.sha256)
      throw new Error(`asset ${f.path} does not match its sha256 in assets.json`);
    const target = join(stage, f.path);
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    await writeFile(target, data, { mode: f.mode & 0o755 });
    await chmod(target, f.mode & 0o755);
  }
  await rm(dest, { recursive: true, force: true }); // a stale, edited or foreign copy
  try {
    await rename(stage, dest);
  } catch {
    await rm(stage, { recursive: true, force: true }); // another process won the race
  }
  if (!(await verified(dest, index))) throw new Error(`extracted tool files in ${dest} do not verify`);
  return dest;
}

/**
 * Under a single executable, `node SCRIPT ARGS` in a tool's command runs this executable with
 * {@link SEA_AS_NODE_ENV}: it runs SCRIPT (CommonJS or ES module) as node would.
 */
async function runAsNode(): Promise<void> {
  delete process.env[SEA_AS_NODE_ENV];
  const script = process.argv[2];
  if (!script) throw new Error("no script given");
  const file = resolvePath(script);
  process.argv = [process.execPath, file, ...process.argv.slice(3)];
  // The SEA main script has no dynamic-import callback; a module loaded from disk has one.
  const loader = join(dirname(file), `.dockpack-import-${process.pid}.cjs`);
  await writeFile(loader, "module.exports = (u) => import(u);\n", { mode: 0o600 });
  try {
    const load = createRequire(loader)(loader) as (u: string) => Promise<unknown>;
    await rm(loader, { force: true });
    await load(pathToFileURL(file).href);
  } finally {
    await rm(loader, { force: true });
  }
}

const HELP = `Usage: TOOL [--input JSON | --file FILE | --prompt TEXT]

With no arguments, serves the tool's HTTP API (API_PORT, API_HOST, API_TOKEN,
CORS_ORIGINS, RATE_LIMIT_PER_MINUTE, MAX_BODY_BYTES, MAX_CONCURRENT_INVOKES).

  --input JSON    run once with this input object, print the result
  --file FILE     run once with the input object read from FILE (- for stdin)
  --prompt TEXT   run once with TEXT as the tool's text input
  --info          print the tool's description and schemas
  --port N        serve on port N (default $API_PORT or 8080)
  --host ADDR     serve on ADDR (default $API_HOST or 127.0.0.1)
  -h, --help      this help
`;

async function main(): Promise<void> {
  if (process.env[WATCHDOG_ENV] === "1") return watchdogMain();
  const sea = seaModule();
  if (sea && process.env[SEA_AS_NODE_ENV] === "1") return runAsNode();
  if (sea) process.env[SEA_SELF_ENV] = "1"; // `node` in a tool's command is this executable
  const toolsDir =
    process.env.TOOLS_DIR ||
    (sea ? join(await extractAssets(sea), "tools") : join(dirname(process.argv[1]), "tools"));
  const toolId = process.env.TOOL_ID || __DOCKPACK_TOOL_ID__;
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      input: { type: "string" },
      file: { type: "string" },
      prompt: { type: "string" },
      info: { type: "boolean" },
      port: { type: "string" },
      host: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const tool = await findTool(toolId, toolsDir);
  const resolve = directoryResolver(toolsDir);
  const missing = missingPrograms(await closureWith(tool, resolve));
  if (missing.length)
    process.stderr.write(
      `warning: ${missing.join(", ")} not found on PATH: tool '${toolId}' needs ${missing.length > 1 ? "them" : "it"} installed on this machine${sea ? " (the executable carries node, not other interpreters)" : ""}\n`,
    );
  if (values.info) {
    const { id, name, description, version, input_schema, output_schema } = tool.manifest;
    process.stdout.write(
      `${JSON.stringify({ id, name, description, version, input_schema, output_schema }, null, 2)}\n`,
    );
    return;
  }
  const given = [values.input, values.file, values.prompt].filter((v) => v !== undefined).length;
  if (given > 1)
    throw Object.assign(new Error("give only one of --input, --file, --prompt"), { usage: true });
  if (given === 1) {
    let input: unknown;
    if (values.prompt !== undefined) input = promptInput(tool, values.prompt);
    else {
      const text =
        values.input ??
        (values.file === "-" ? await readStdin() : await readFile(values.file as string, "utf8"));
      try {
        input = JSON.parse(text);
      } catch {
        throw Object.assign(
          new Error(`${values.input !== undefined ? "--input" : values.file} is not valid JSON`),
          {
            usage: true,
          },
        );
      }
    }
    const out = await invokeTool({ tool, input, resolve });
    process.stdout.write(`${JSON.stringify(out.result, null, 2)}\n`);
    return;
  }
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const cfg = serviceConfigFromEnv();
  if (values.port !== undefined) {
    const n = Number(values.port);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw Object.assign(new Error("--port must be an integer from 0 to 65535"), { usage: true });
    cfg.port = n;
  }
  if (values.host !== undefined) cfg.host = values.host;
  const portHint = "Choose another port with --port N (or API_PORT).";
  await serveUntilSignal(tool, { ...cfg, resolve, accessLog: log, log, portHint }, log);
}

async function readStdin(): Promise<string> {
  let data = "";
  for await (const chunk of process.stdin) data += chunk;
  return data;
}

main().catch((e: unknown) => {
  const err = e as Error & { usage?: boolean; code?: string };
  process.stderr.write(`error: ${err.message}\n`);
  if (isDockpackError(e) && e.hint) process.stderr.write(`hint: ${e.hint}\n`);
  process.exitCode = err.usage || String(err.code).startsWith("ERR_PARSE_ARGS") ? 2 : 1;
});
