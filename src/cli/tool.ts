/**
 * `dockpack tool …`: tool services — list, invoke, serve, compile, recover. Thin wiring over
 * src/tools (see docs/commands/tool.md).
 */

import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { currentSignal } from "../core/abort.js";
import { DockpackError } from "../core/errors.js";
import { formatBytes, formatTable } from "../core/output.js";
import type { CompileResult, CompileTarget } from "../tools/compile.js";
import type { InvokeResult } from "../tools/invoke.js";
import type { ToolSummary } from "../tools/manifest.js";
import type { RecoverResult } from "../tools/recover.js";
import { action, withExamples } from "./common.js";

/** `dockpack tool compile`'s targets (tools/compile.ts's COMPILE_TARGETS; kept here so that help does not load the compiler). */
const COMPILE_TARGETS: readonly CompileTarget[] = ["docker", "exe", "both"];

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DockpackError("INPUT_NOT_JSON", `${what} is not valid JSON: ${(e as Error).message}`, {
      hint: `Pass a JSON object, e.g. --input '{"text":"hello"}'.`,
      usage: true,
    });
  }
}

async function readInput(o: { input?: string; file?: string }): Promise<unknown> {
  if (o.input !== undefined && o.file !== undefined)
    throw new DockpackError("USAGE_ERROR", "Give either --input or --file, not both.", { usage: true });
  if (o.input !== undefined) return parseJson(o.input, "--input");
  if (o.file !== undefined) {
    let text: string;
    try {
      text = o.file === "-" ? await readStdin() : await readFile(o.file, "utf8");
    } catch (e) {
      throw new DockpackError("FS_ENOENT", `Cannot read the input file ${o.file}.`, {
        cause: e,
        usage: true,
      });
    }
    return parseJson(text, o.file);
  }
  // No option: JSON piped on stdin (`echo '{…}' | dockpack tool invoke ID`).
  if (!process.stdin.isTTY) return parseJson(await readStdin(), "stdin");
  throw new DockpackError("USAGE_ERROR", "Give the input with --input JSON, --file FILE or on stdin.", {
    usage: true,
  });
}

async function readStdin(): Promise<string> {
  let data = "";
  for await (const chunk of process.stdin) data += chunk;
  return data;
}

function intOption(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new DockpackError("USAGE_ERROR", `${name} must be an integer from 0 to 65535, got '${value}'.`, {
      usage: true,
    });
  return n;
}

const toolsDirOption = () =>
  new Option("--tools-dir <dir>", "folder of tool folders (default: $DOCKPACK_TOOLS_DIR or ./tools)");

/** Adds `dockpack tool` and its subcommands to the root program. */
export function register(program: Command): void {
  const tool = program
    .command("tool")
    .description(
      "tool services: run a JSON-in/JSON-out tool, serve it as an HTTP API, or compile it to a container or a single executable",
    );
  withExamples(tool, [
    "dockpack tool list --tools-dir examples/tools",
    `dockpack tool invoke upper --tools-dir examples/tools --input '{"text":"hi"}'`,
    "dockpack tool serve upper --tools-dir examples/tools --port 8080",
    "dockpack tool compile upper ./docker-package docker --tools-dir examples/tools",
    "dockpack tool recover --from-log error.log",
  ]);

  withExamples(
    tool
      .command("list")
      .description("list the tools of a tools folder (each sub-folder holding tool.yaml)")
      .addOption(toolsDirOption())
      .action(
        action(
          async (_r, _cmd, o: { toolsDir?: string }) =>
            (await import("../tools/manifest.js")).listTools({ toolsDir: o.toolsDir }),
          (res: { toolsDir: string; tools: ToolSummary[]; broken: { message: string }[] }) =>
            [
              res.tools.length === 0
                ? `no tools in ${res.toolsDir}`
                : formatTable(
                    ["ID", "TYPE", "VERSION", "DESCRIPTION"],
                    res.tools.map((t) => [t.id, t.type, t.version, t.description]),
                  ),
              ...res.broken.map((b) => `not loaded: ${b.message}`),
            ].join("\n"),
        ),
      ),
    ["dockpack tool list --tools-dir examples/tools", "dockpack --json tool list --tools-dir examples/tools"],
  );

  withExamples(
    tool
      .command("invoke")
      .description("run a tool once: validate the input, run with its timeout, validate and print the output")
      .argument("<id>", "tool id")
      .option("--input <json>", "the input object as JSON")
      .option("--file <file>", "read the input object from a JSON file (- for stdin)")
      .option("--prompt <text>", "use TEXT as the tool's text input")
      .option("--timeout <seconds>", "override the tool's timeout_seconds", Number)
      .addOption(toolsDirOption())
      .action(
        action(
          async (
            _r,
            _cmd,
            id: string,
            o: { input?: string; file?: string; prompt?: string; timeout?: number; toolsDir?: string },
          ) => {
            if (o.timeout !== undefined && !(o.timeout > 0))
              throw new DockpackError("USAGE_ERROR", "--timeout must be a positive number of seconds.", {
                usage: true,
              });
            let input: unknown;
            if (o.prompt !== undefined) {
              if (o.input !== undefined || o.file !== undefined)
                throw new DockpackError("USAGE_ERROR", "Give only one of --input, --file, --prompt.", {
                  usage: true,
                });
              const { directoryResolver } = await import("../tools/invoke.js");
              const { promptInput } = await import("../tools/prompt.js");
              input = promptInput(await directoryResolver(o.toolsDir)(id), o.prompt);
            } else input = await readInput(o);
            const { invokeTool } = await import("../tools/invoke.js");
            return invokeTool({ id, toolsDir: o.toolsDir, input, timeoutSeconds: o.timeout });
          },
          (res: InvokeResult) => JSON.stringify(res.result, null, 2),
        ),
      ),
    [
      `dockpack tool invoke upper --tools-dir examples/tools --input '{"text":"hi"}'`,
      "dockpack tool invoke shout-count --tools-dir examples/tools --prompt 'hello world'",
      'echo \'{"text":"x"}\' | dockpack --json tool invoke upper --tools-dir examples/tools',
    ],
  );

  withExamples(
    tool
      .command("serve")
      .description(
        "serve a tool as an HTTP API (GET / /api/health /api/info /openapi.json /metrics, POST /api/invoke) until SIGTERM/SIGINT",
      )
      .argument("<id>", "tool id")
      .option("--port <n>", "listen port (default: $API_PORT or 8080; 0 picks a free one)")
      .option(
        "--host <addr>",
        "listen address (default: $API_HOST or 127.0.0.1; warns beyond loopback without API_TOKEN)",
      )
      .addOption(toolsDirOption())
      .action(
        action(
          async (reporter, _cmd, id: string, o: { port?: string; host?: string; toolsDir?: string }) => {
            const { directoryResolver } = await import("../tools/invoke.js");
            const { resolveToolsDir } = await import("../tools/manifest.js");
            const { serveUntilSignal, serviceConfigFromEnv } = await import("../tools/server.js");
            const resolve = directoryResolver(o.toolsDir);
            const t = await resolve(id);
            const cfg = serviceConfigFromEnv();
            if (o.port !== undefined) cfg.port = intOption(o.port, "--port");
            if (o.host !== undefined) cfg.host = o.host;
            const res = await serveUntilSignal(
              t,
              {
                ...cfg,
                resolve,
                toolsDir: resolveToolsDir(o.toolsDir),
                accessLog: (line) => reporter.info(line),
                log: (line) => {
                  // The server's lines carry their level; the reporter adds its own prefix.
                  const m = /^(warn|error):\s*/.exec(line);
                  if (!m) reporter.info(line);
                  else if (m[1] === "error") reporter.error(line.slice(m[0].length));
                  else reporter.warn(line.slice(m[0].length));
                },
              },
              (line) => reporter.info(line),
              currentSignal(),
            );
            return { tool_id: id, url: res.url, stopped: true };
          },
          () => "",
        ),
      ),
    [
      "dockpack tool serve upper --tools-dir examples/tools --port 8080",
      "API_TOKEN=secret RATE_LIMIT_PER_MINUTE=60 dockpack tool serve upper --tools-dir examples/tools",
      `curl -s -X POST localhost:8080/api/invoke -H 'Content-Type: application/json' -d '{"text":"hi"}'`,
    ],
  );

  withExamples(
    tool
      .command("compile")
      .description(
        "package a tool as a Docker build context (Dockerfile, compose, scripts, README, .env) and/or a single executable",
      )
      .argument("<id>", "tool id")
      .argument("[output]", "output folder", "./docker-package")
      .argument("[target]", `what to build: ${COMPILE_TARGETS.join(", ")}`, "docker")
      .option(
        "--base-image <image>",
        "base image of the Dockerfile (default: pinned python slim for python tools, else node:20 bookworm-slim; node is copied into non-node bases)",
      )
      .option(
        "--node-image <image>",
        "image the node runtime is copied from (default: the pinned node:20 bookworm-slim)",
      )
      .option("--port <n>", "API port", "8080")
      .addOption(
        new Option("--ci <provider>", "also write a CI workflow that builds and pushes the image").choices([
          "github",
        ]),
      )
      .option("--force", "replace an existing non-empty output folder")
      .option(
        "--push <ref>",
        "then build the image through the engine, tag it REF and push it (credentials as for 'targets build --push')",
      )
      .addOption(toolsDirOption())
      .action(
        action(
          async (
            reporter,
            _cmd,
            id: string,
            output: string,
            target: string,
            o: {
              baseImage?: string;
              nodeImage?: string;
              port: string;
              ci?: "github";
              force?: boolean;
              push?: string;
              toolsDir?: string;
            },
          ) => {
            if (!COMPILE_TARGETS.includes(target as CompileTarget))
              throw new DockpackError("USAGE_ERROR", `Unknown target '${target}'.`, {
                hint: `Use one of ${COMPILE_TARGETS.join(", ")}.`,
                usage: true,
              });
            if (COMPILE_TARGETS.includes(output as CompileTarget) && _cmd.args.length === 2)
              reporter.warn(
                `'${output}' is taken as the OUTPUT_PATH; to choose the target give both: dockpack tool compile ${id} ./docker-package ${output}`,
              );
            const { compileTool } = await import("../tools/compile.js");
            return compileTool(
              {
                id,
                output,
                target: target as CompileTarget,
                toolsDir: o.toolsDir,
                baseImage: o.baseImage,
                nodeImage: o.nodeImage,
                port: intOption(o.port, "--port"),
                ci: o.ci,
                force: o.force,
                push: o.push,
              },
              reporter,
            );
          },
          (r: CompileResult) =>
            [
              `compiled '${r.tool_id}' (${r.target}) into ${r.output}: ${r.files.length} files`,
              ...(r.image
                ? [
                    `  image: ${r.image} (base ${r.base_image}); next: cd ${r.output} && ./build.sh && ./run.sh && ./test.sh`,
                  ]
                : []),
              ...(r.exe ? [`  executable: ${r.exe.path} (${formatBytes(r.exe.bytes)})`] : []),
              ...(r.pushed
                ? [`  pushed: ${r.pushed.reference}${r.pushed.digest ? `@${r.pushed.digest}` : ""}`]
                : []),
            ].join("\n"),
        ),
      ),
    [
      "dockpack tool compile upper --tools-dir examples/tools",
      "dockpack tool compile upper out/upper both --tools-dir examples/tools --base-image node:20-bookworm-slim --ci github",
      "dockpack tool compile shout-count out/shout exe --tools-dir examples/tools --force",
      "dockpack tool compile upper out/upper --tools-dir examples/tools --push localhost:5000/tools/upper:1.0.0",
    ],
  );

  withExamples(
    tool
      .command("recover")
      .description(
        "find missing Python/Node modules and programs in a tool's error output and print (or run) the install commands; exits 1 while something is missing",
      )
      .argument("[id]", "tool to run (with --input) and analyse")
      .option("--from-log <file>", "analyse this log file instead of running a tool")
      .option("--input <json>", "input for the tool run")
      .option("--file <file>", "read the input from a JSON file")
      .option("--install", "run the install commands (pip, npm, apt); off inside generated images")
      .option("--dry-run", "with --install: show the commands without running them")
      .option("--retry", "run the tool once more afterwards (default after --install)")
      .addOption(toolsDirOption())
      .action(
        action(
          async (
            reporter,
            _cmd,
            id: string | undefined,
            o: {
              fromLog?: string;
              input?: string;
              file?: string;
              install?: boolean;
              dryRun?: boolean;
              retry?: boolean;
              toolsDir?: string;
            },
          ) => {
            if (id && o.fromLog)
              throw new DockpackError("USAGE_ERROR", "Give either a tool id or --from-log, not both.", {
                usage: true,
              });
            const input =
              id && (o.input !== undefined || o.file !== undefined) ? await readInput(o) : undefined;
            const { recoverTool } = await import("../tools/recover.js");
            const res = await recoverTool(
              {
                fromLog: o.fromLog,
                id,
                input,
                toolsDir: o.toolsDir,
                install: o.install,
                dryRun: o.dryRun,
                retry: o.retry,
              },
              reporter,
            );
            // Something is still missing: the result is printed, and the exit code says so.
            if (res.missing.length > 0 && !res.retry?.success) process.exitCode = 1;
            return res;
          },
          (r: RecoverResult) => {
            if (r.missing.length === 0) return `nothing missing found in ${r.source}`;
            const lines = [
              `missing (${r.source}):`,
              ...r.missing.map((m) => `  ${m.kind} ${m.name} → ${m.package}${m.mapped ? "" : " (guess)"}`),
              ...(r.commands.length
                ? [
                    r.installed ? "installed with:" : r.dry_run ? "would run:" : "install with:",
                    ...r.commands.map((c) => `  ${c.line}`),
                  ]
                : []),
              ...(r.guessed_commands.length
                ? [
                    "guessed package names (check them first; --install does not run these):",
                    ...r.guessed_commands.map((c) => `  ${c.line}`),
                  ]
                : []),
            ];
            if (r.retry)
              lines.push(
                r.retry.success
                  ? "retry: the tool succeeded"
                  : `retry: still failing: ${r.retry.error.message}`,
              );
            return lines.join("\n");
          },
        ),
      ),
    [
      "dockpack tool recover --from-log error.log",
      `dockpack tool recover my-tool --input '{"text":"x"}' --tools-dir tools`,
      `dockpack tool recover my-tool --input '{"text":"x"}' --install --retry`,
    ],
  );
}
