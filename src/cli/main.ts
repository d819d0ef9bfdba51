#!/usr/bin/env node
/**
 * The `dockpack` command: the root program, global options, lazy loading of command groups and
 * exit codes (0 success, 1 failure, 2 usage error).
 */
import "./v8-tuning.js";
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { withSignal } from "../core/abort.js";
import { helpStyle } from "./common.js";
import { GROUPS } from "./groups.js";
import { handleInterrupts } from "./interrupt.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

/** Finds the first positional word of argv (the group name), skipping global options. */
function firstCommand(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--log-level" || a === "-C") {
      i++;
      continue;
    }
    if (!a.startsWith("-")) return a;
  }
  return undefined;
}

/** Applies `-C DIR` options given before the command (several combine, as with git); true when one was. */
function applyDirectory(argv: string[]): boolean {
  let applied = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--log-level") i++;
    else if (a.startsWith("-C")) {
      const dir = a === "-C" ? argv[++i] : a.slice(2);
      if (!dir) continue;
      changeDirectory(dir);
      applied = true;
    } else if (!a.startsWith("-")) break;
  }
  return applied;
}

function changeDirectory(dir: string): void {
  try {
    process.chdir(dir);
  } catch (e) {
    process.stderr.write(`error: -C ${dir}: ${(e as Error).message}\n`);
    process.exit(2);
  }
}

async function main(argv: string[]): Promise<void> {
  const directoryApplied = applyDirectory(argv);
  // Temp folders of dockpack runs that were killed (kill -9, a crash) go first (core/fs/temp);
  // not for help and version, which must start fast.
  if (firstCommand(argv) && !argv.some((a) => ["-h", "--help", "-V", "--version"].includes(a)))
    await (await import("../core/fs/temp.js")).sweepStaleTempDirs().catch(() => []);
  const wantsJson = argv.includes("--json");
  const program = helpStyle(new Command("dockpack"))
    .description(
      "Package container environments and move them elsewhere: per-branch environments and their " +
        "packages, image deltas, Dev Container Features, packaging targets and tool services.",
    )
    .version(pkg.version, "-V, --version", "print the dockpack version")
    .option("--json", "print the result as one JSON document on stdout (logs stay on stderr)")
    .addOption(
      new Option("--log-level <level>", "how much to log on stderr")
        .choices(["error", "warn", "info", "debug", "trace"])
        .default("info"),
    )
    .option("--no-color", "no colours in the output (also when NO_COLOR is set)")
    .option("-q, --quiet", "print only the primary result (path, image ID, …) one per line; log only errors")
    .option("-C <dir>", "run as if dockpack was started in DIR (as git -C does)")
    .showSuggestionAfterError(true)
    .enablePositionalOptions(false)
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => {
        write(str);
        if (wantsJson) {
          const message = str.replace(/^error: /, "").trim();
          process.stdout.write(`${JSON.stringify({ error: { code: "USAGE_ERROR", message } }, null, 2)}\n`);
        }
      },
    });
  // -C given after the command word (commander still parses it as the global option)
  program.hook("preAction", (_root, sub) => {
    const dir = (sub.optsWithGlobals() as { C?: string }).C;
    if (dir && !directoryApplied) changeDirectory(dir);
  });
  program.addHelpText(
    "after",
    "\nExamples:\n  $ dockpack --help\n  $ dockpack --version\n" +
      GROUPS.map((g) => `  $ dockpack ${g.name} --help`).join("\n") +
      "\n",
  );

  const selected = firstCommand(argv);
  for (const group of GROUPS) {
    if (group.name === selected) (await group.load()).register(program);
    else program.command(group.name).description(group.summary);
  }

  // Signals become an abort of the command's AbortSignal (see interrupt.ts and core/abort.ts).
  const interrupts = handleInterrupts();
  try {
    await withSignal(interrupts.signal, () => program.parseAsync(argv, { from: "user" }));
  } catch (e) {
    if (e instanceof CommanderError) {
      const ok = ["commander.helpDisplayed", "commander.version", "commander.help"].includes(e.code);
      process.exitCode = ok ? 0 : e.code === "commander.executeSubCommandAsync" ? e.exitCode : 2;
    } else throw e;
  } finally {
    await interrupts.finish();
  }
}

// A closed pipe on stdout (e.g. `dockpack --help | head -1`) ends the program quietly, as Unix tools do.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
