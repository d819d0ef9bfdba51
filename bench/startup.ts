/**
 * Start-up benchmark (issues 2 and 14): median wall time of every command group's `--help`, of
 * the list/info commands and of `--version` (`node dist/cli/main.js …`) against `node -e 0` in
 * the same run, runs interleaved so that machine load hits all alike. Prints each median and its
 * ratio to bare node; the target is a ratio ≤ 2.0 for each. Exit code 1 when one is above it
 * with `--check`. A list command may exit non-zero (no repository here): its time still counts.
 *
 * Usage: npm run build && node --import tsx bench/startup.ts [--runs 9] [--json] [--check]
 *        [--main <path of a built main.js>]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const TARGET = 2.0;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? def) : def;
}

const MAIN = arg("--main", fileURLToPath(new URL("../dist/cli/main.js", import.meta.url)));
const EXAMPLES = fileURLToPath(new URL("../examples", import.meta.url));

/** Wall time of one run of `node args…` in `cwd`, in milliseconds. */
function timeRun(args: string[], cwd: string): number {
  const t0 = process.hrtime.bigint();
  const res = spawnSync(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.signal) throw new Error(`node ${args.join(" ")} was killed by ${res.signal}: ${res.stderr}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function main(): void {
  if (!existsSync(MAIN)) {
    process.stderr.write(`error: ${MAIN} is missing.\nhint: run 'npm run build' first.\n`);
    process.exit(1);
  }
  const runs = Number(arg("--runs", "9"));
  const empty = mkdtempSync(join(tmpdir(), "dockpack-startup-"));
  const commands: string[][] = [
    ["--version"],
    ["--help"],
    ...["env", "packages", "delta", "features", "targets", "tool", "mcp"].map((g) => [g, "--help"]),
    ["env", "list"],
    ["packages", "list", "--package-dir", empty],
    ["targets", "list", "--root", empty],
    ["tool", "list", "--tools-dir", join(EXAMPLES, "tools")],
  ];
  try {
    const baseline: number[] = [];
    const times = commands.map(() => [] as number[]);
    // Warm the file cache.
    timeRun(["-e", "0"], empty);
    for (const c of commands) timeRun([MAIN, ...c], empty);
    for (let i = 0; i < runs; i++) {
      baseline.push(timeRun(["-e", "0"], empty));
      for (const [j, c] of commands.entries()) times[j].push(timeRun([MAIN, ...c], empty));
    }
    const node = median(baseline);
    const rows = commands.map((c, j) => {
      const ms = median(times[j]);
      return {
        command: `dockpack ${c.join(" ").replace(empty, "<empty>")}`,
        medianMs: Number(ms.toFixed(1)),
        ratio: Number((ms / node).toFixed(2)),
      };
    });
    const result = { runs, nodeMedianMs: Number(node.toFixed(1)), target: TARGET, commands: rows };
    if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const w = Math.max(...rows.map((r) => r.command.length));
      process.stdout.write(`${"node -e 0".padEnd(w)}  median ${result.nodeMedianMs} ms (${runs} runs)\n`);
      for (const r of rows)
        process.stdout.write(
          `${r.command.padEnd(w)}  median ${String(r.medianMs).padStart(6)} ms  ratio ${r.ratio.toFixed(2)} ${r.ratio <= TARGET ? "ok" : "ABOVE TARGET"}\n`,
        );
    }
    if (process.argv.includes("--check") && rows.some((r) => r.ratio > TARGET)) process.exitCode = 1;
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}

main();
