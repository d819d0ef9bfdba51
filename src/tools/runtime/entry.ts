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
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { isDockpackError } from "../../core/errors.js";
import { directoryResolver, invokeTool } from "../invoke.js";
import { loadTools } from "../manifest.js";
import { promptInput } from "../prompt.js";
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

async function extractAssets(sea: SeaModule): Promise<string> {
  const indexText = sea.getAsset("index.json", "utf8") as string;
  const index = JSON.parse(indexText) as SeaIndex;
  const hash = createHash("sha256").update(indexText).digest("hex").slice(0, 16);
  const dest = join(tmpdir(), `dockpack-tool-${index.toolId}-${hash}`);
  if (existsSync(join(dest, ".complete"))) return dest;
  const stage = `${dest}.tmp-${process.pid}`;
  await rm(stage, { recursive: true, force: true });
  for (const f of index.files) {
    const target = join(stage, f.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, Buffer.from(sea.getAsset(f.key) as ArrayBuffer));
    await chmod(target, f.mode);
  }
  await writeFile(join(stage, ".complete"), "");
  try {
    await rename(stage, dest);
  } catch {
    await rm(stage, { recursive: true, force: true }); // another process won the race
  }
  return dest;
}

const HELP = `Usage: TOOL [--input JSON | --file FILE | --prompt TEXT]

With no arguments, serves the tool's HTTP API (API_PORT, API_HOST, API_TOKEN,
CORS_ORIGINS, RATE_LIMIT_PER_MINUTE, MAX_BODY_BYTES, MAX_CONCURRENT_INVOKES).

  --input JSON    run once with this input object, print the result
  --file FILE     run once with the input object read from FILE (- for stdin)
  --prompt TEXT   run once with TEXT as the tool's text input
  --info          print the tool's description and schemas
  -h, --help      this help
`;

async function main(): Promise<void> {
  const sea = seaModule();
  if (sea && !process.env.DOCKPACK_NODE) process.env.DOCKPACK_NODE = "node"; // this binary is not a node
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
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const tools = await loadTools(toolsDir);
  const tool = tools.find((t) => t.manifest.id === toolId);
  if (!tool) throw new Error(`tool '${toolId}' is not in ${toolsDir}`);
  const resolve = directoryResolver(toolsDir);
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
  await serveUntilSignal(tool, { ...serviceConfigFromEnv(), resolve, accessLog: log }, log);
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
