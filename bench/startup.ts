/**
 * Start-up benchmark (issue 2): median wall time of `node dist/cli/main.js --version` against
 * `node -e 0` in the same run, runs interleaved so that machine load hits both alike. Prints
 * both medians and their ratio; the target is a ratio ≤ 2.0. Exit code 1 when above it with
 * `--check`.
 *
 * Usage: npm run build && node --import tsx bench/startup.ts [--runs 15] [--json] [--check]
 *        [--main <path of a built main.js>]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const TARGET = 2.0;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? def) : def;
}

const MAIN = arg("--main", fileURLToPath(new URL("../dist/cli/main.js", import.meta.url)));

/** Wall time of one run of `node args…`, in milliseconds; throws when it fails. */
function timeRun(args: string[]): number {
  const t0 = process.hrtime.bigint();
  const res = spawnSync(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.status !== 0) throw new Error(`node ${args.join(" ")} failed (${res.status}): ${res.stderr}`);
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
  const runs = Number(arg("--runs", "15"));
  const baseline: number[] = [];
  const cli: number[] = [];
  // Warm the file cache for both.
  timeRun(["-e", "0"]);
  timeRun([MAIN, "--version"]);
  for (let i = 0; i < runs; i++) {
    baseline.push(timeRun(["-e", "0"]));
    cli.push(timeRun([MAIN, "--version"]));
  }
  const result = {
    runs,
    nodeMedianMs: Number(median(baseline).toFixed(1)),
    cliMedianMs: Number(median(cli).toFixed(1)),
    ratio: Number((median(cli) / median(baseline)).toFixed(2)),
    target: TARGET,
  };
  if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify(result)}\n`);
  else
    process.stdout.write(
      `node -e 0:                  median ${result.nodeMedianMs} ms (${runs} runs)\n` +
        `dockpack --version (dist):  median ${result.cliMedianMs} ms (${runs} runs)\n` +
        `ratio: ${result.ratio} (target ≤ ${TARGET}) ${result.ratio <= TARGET ? "ok" : "ABOVE TARGET"}\n`,
    );
  if (process.argv.includes("--check") && result.ratio > TARGET) process.exit(1);
}

main();
