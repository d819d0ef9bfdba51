/**
 * Start-up benchmark (issues 2 and 14 C18): median wall time of every command group's `--help`,
 * of every list/info command and of `--version` of the installed command (`dist/bin/dockpack.js`,
 * the bundle `npm run build` writes) against `node -e 0` in the same run, runs interleaved so that
 * machine load hits all alike. Prints each median and its ratio to bare node; the target is a
 * ratio ≤ 2.0 for each. Exit code 1 when one is above it with `--check`.
 *
 * The list and info commands run on real input made before timing, without the engine: `env list`
 * and `env info main` in a git repository with `.dockpack/config.yml` and no environment (the
 * engine answers; `env list` also once with DOCKER_HOST pointing at nothing; an environment's
 * rows add the engine's answers, `docker system df` for volume sizes, which are not start-up),
 * `packages list` on a folder holding one package and on one holding none, `packages inspect`
 * of that package (a small package built by the package writer, test/env/synthetic.ts),
 * `delta list`/`delta info` of a delta package made from two synthetic images
 * (test/image/synthetic.ts), `targets list` on a fresh registry, `tool list` on examples/tools.
 * Not timed: the commands that only talk to a registry (`features info`, `packages list REPO`).
 *
 * With `--cpu`, each run is also repeated under `bash -c '…; times'` to read the child's CPU time
 * (user + sys): its ratio to bare node's moves less with machine load than wall time does (the
 * target stays the wall-time ratio).
 *
 * The runs get a fresh XDG_STATE_HOME: no journals of dockpack runs going on elsewhere (which
 * `env list`/`env info` would load the recovery for).
 *
 * The installed command keeps a V8 code cache per command (src/cli/compile-cache.ts) in
 * `$XDG_CACHE_HOME/dockpack/compile-cache`: the bench points XDG_CACHE_HOME at a fresh folder, so
 * each command's first run is cold (it compiles everything and writes its cache); that run is
 * reported (`first`, wall time of one run), not counted. The medians are of the warm runs after it,
 * as a user sees the command from its second use on.
 *
 * `--compare OTHER` times a second build (e.g. a copy of an older dist/bin/dockpack.js) in the same
 * runs, interleaved with the first, and prints its figures beside them.
 *
 * Usage: npm run build && node --import tsx bench/startup.ts [--runs 9] [--json] [--check] [--cpu]
 *        [--main <path of a built entry, e.g. dist/cli/main.js, the unbundled tsc output>]
 *        [--compare <path of another built entry>]
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { silentReporter } from "../src/core/output.js";
import { createDelta } from "../src/delta/index.js";
import { writeSyntheticPackage } from "../test/env/synthetic.js";
import { versionPair, writeSynth } from "../test/image/synthetic.js";

const TARGET = 2.0;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? def) : def;
}

const MAIN = resolve(arg("--main", fileURLToPath(new URL("../dist/bin/dockpack.js", import.meta.url))));
const COMPARE = process.argv.includes("--compare") ? resolve(arg("--compare", "")) : undefined;
const EXAMPLES = fileURLToPath(new URL("../examples", import.meta.url));
const EXAMPLES_APP = join(EXAMPLES, "compose-app");
const GROUPS = [
  "env",
  "packages",
  "delta",
  "features",
  "targets",
  "tool",
  "mcp",
  "login",
  "logout",
  "completion",
];

/** One timed command: its arguments, the folder it runs in, extra environment. */
interface Case {
  args: string[];
  cwd: string;
  env?: Record<string, string>;
  /** The command fails by design (`env info` of a repository without environments). */
  fails?: boolean;
}

/** Wall time of one run of `node args…` in `cwd`, in milliseconds. */
function timeRun(args: string[], cwd: string, env?: Record<string, string>): number {
  const t0 = process.hrtime.bigint();
  const res = spawnSync(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.signal) throw new Error(`node ${args.join(" ")} was killed by ${res.signal}: ${res.stderr}`);
  return ms;
}

/** CPU time (user + sys, ms) of one run of `node args…`, read with bash's `times` builtin. */
function cpuRun(args: string[], cwd: string, env?: Record<string, string>): number {
  const res = spawnSync("bash", ["-c", '"$@" >/dev/null 2>&1; times', "bash", process.execPath, ...args], {
    cwd,
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
  const children = res.stdout.trim().split("\n")[1] ?? "";
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (secs.length !== 2) throw new Error(`bash times printed '${res.stdout}'`);
  return (secs[0] + secs[1]) * 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs a setup step (not timed); throws with its stderr when it fails. */
function setup(cmd: string, args: string[], cwd: string): void {
  const res = spawnSync(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${res.stderr}`);
}

/** A git repository holding the example compose project and its `.dockpack/config.yml`. */
function makeRepository(dir: string): void {
  cpSync(EXAMPLES_APP, dir, { recursive: true });
  setup("git", ["init", "-q", "-b", "main"], dir);
  setup("git", ["add", "-A"], dir);
  setup(
    "git",
    ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "init"],
    dir,
  );
  setup(process.execPath, [MAIN, "env", "init"], dir);
}

/** A package in `<dir>/packages` and a delta package `<dir>/app.dpd`, made without the engine. */
async function makePackages(dir: string): Promise<{ packages: string; pkg: string; delta: string }> {
  const packages = join(dir, "packages");
  mkdirSync(packages);
  const pkg = join(packages, "synth-main-20260101T000000Z.dockpack.tar");
  await writeSyntheticPackage(pkg);
  const pair = await versionPair("dockpack-bench-startup");
  const [v1, v2, delta] = ["v1.tar", "v2.tar", "app.dpd"].map((f) => join(dir, f));
  await writeSynth(pair.v1, v1);
  await writeSynth(pair.v2, v2);
  await createDelta({ image: v2, output: delta, bases: [v1] }, silentReporter());
  return { packages, pkg, delta };
}

async function main(): Promise<void> {
  if (!existsSync(MAIN)) {
    process.stderr.write(`error: ${MAIN} is missing.\nhint: run 'npm run build' first.\n`);
    process.exit(1);
  }
  const runs = Number(arg("--runs", "9"));
  const empty = mkdtempSync(join(tmpdir(), "dockpack-startup-"));
  const repo = join(empty, "repo");
  const registry = join(empty, "targets");
  const none = join(empty, "no-packages");
  // A fresh code cache (inherited by every run): first runs are cold, as after an install.
  process.env.XDG_CACHE_HOME = join(empty, "cache");
  // A fresh state folder: the run journals of dockpack runs going on elsewhere on the machine (an
  // export, an import) would make `env list`/`env info` load the recovery to check them.
  process.env.XDG_STATE_HOME = join(empty, "state");
  try {
    makeRepository(repo);
    const { packages, pkg, delta } = await makePackages(empty);
    mkdirSync(none);
    mkdirSync(registry);
    setup(process.execPath, [MAIN, "targets", "init", "--root", registry], empty);
    const at = (args: string[], cwd = empty, env?: Record<string, string>): Case => ({ args, cwd, env });
    const commands: Case[] = [
      at(["--version"]),
      at(["--help"]),
      ...GROUPS.map((g) => at([g, "--help"])),
      at(["env", "list"], repo),
      at(["env", "list"], repo, { DOCKER_HOST: `unix://${join(empty, "no-engine.sock")}` }),
      { ...at(["env", "info", "main"], repo), fails: true },
      at(["packages", "list", "--package-dir", packages]),
      at(["packages", "list", "--package-dir", none]),
      at(["packages", "inspect", pkg]),
      at(["delta", "list", delta]),
      at(["delta", "info", delta]),
      at(["targets", "list", "--root", registry]),
      at(["tool", "list", "--tools-dir", join(EXAMPLES, "tools")]),
    ];
    const cpu = process.argv.includes("--cpu");
    const builds = COMPARE ? [MAIN, COMPARE] : [MAIN];
    const baseline: number[] = [];
    const baselineCpu: number[] = [];
    const times = builds.map(() => commands.map(() => [] as number[]));
    const cpuTimes = builds.map(() => commands.map(() => [] as number[]));
    // Warm the file cache.
    timeRun(["-e", "0"], empty);
    // First runs: cold for the code cache (each writes its command's cache), not counted.
    const first = builds.map((main) =>
      commands.map((c) => {
        const t0 = process.hrtime.bigint();
        const res = spawnSync(process.execPath, [main, ...c.args], {
          cwd: c.cwd,
          env: { ...process.env, ...c.env },
          encoding: "utf8",
        });
        if ((res.status === 0) === Boolean(c.fails))
          throw new Error(`dockpack ${c.args.join(" ")} exited ${res.status}: ${res.stderr}`);
        return Number(process.hrtime.bigint() - t0) / 1e6;
      }),
    );
    for (let i = 0; i < runs; i++) {
      baseline.push(timeRun(["-e", "0"], empty));
      if (cpu) baselineCpu.push(cpuRun(["-e", "0"], empty));
      for (const [j, c] of commands.entries())
        for (const [b, main] of builds.entries()) {
          times[b][j].push(timeRun([main, ...c.args], c.cwd, c.env));
          if (cpu) cpuTimes[b][j].push(cpuRun([main, ...c.args], c.cwd, c.env));
        }
    }
    const node = median(baseline);
    const nodeCpu = cpu ? median(baselineCpu) : 0;
    const figures = (b: number, j: number) => ({
      medianMs: Number(median(times[b][j]).toFixed(1)),
      ratio: Number((median(times[b][j]) / node).toFixed(2)),
      ...(cpu ? { cpuRatio: Number((median(cpuTimes[b][j]) / nodeCpu).toFixed(2)) } : {}),
      firstRunMs: Number(first[b][j].toFixed(1)),
    });
    const rows = commands.map((c, j) => {
      const where = c.env?.DOCKER_HOST ? " (no engine)" : c.cwd === repo ? " (in a repository)" : "";
      return {
        command: `dockpack ${c.args.join(" ").replaceAll(EXAMPLES, "examples").replaceAll(empty, "<tmp>")}${where}`,
        ...figures(0, j),
        ...(COMPARE ? { compare: figures(1, j) } : {}),
      };
    });
    const result = {
      main: MAIN,
      ...(COMPARE ? { compare: COMPARE } : {}),
      runs,
      nodeMedianMs: Number(node.toFixed(1)),
      ...(cpu ? { nodeCpuMedianMs: Number(nodeCpu.toFixed(1)) } : {}),
      target: TARGET,
      commands: rows,
    };
    if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const w = Math.max(...rows.map((r) => r.command.length));
      const cpuNote = cpu ? `, CPU ${result.nodeCpuMedianMs} ms` : "";
      const show = (r: ReturnType<typeof figures>) =>
        `median ${String(r.medianMs).padStart(6)} ms  ratio ${r.ratio.toFixed(2)}${r.cpuRatio === undefined ? "" : `  CPU ratio ${r.cpuRatio.toFixed(2)}`}  first ${String(Math.round(r.firstRunMs)).padStart(4)} ms`;
      process.stdout.write(
        `warm runs (after a first run that writes the code cache); ${runs} runs\n` +
          `${"node -e 0".padEnd(w)}  median ${result.nodeMedianMs} ms${cpuNote}\n` +
          (COMPARE ? `main: ${MAIN}\ncompare: ${COMPARE}\n` : ""),
      );
      for (const r of rows)
        process.stdout.write(
          `${r.command.padEnd(w)}  ${show(r)} ${r.ratio <= TARGET ? "ok" : "ABOVE TARGET"}${r.compare ? `  | compare ${show(r.compare)}` : ""}\n`,
        );
    }
    if (process.argv.includes("--check") && rows.some((r) => r.ratio > TARGET)) process.exitCode = 1;
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}

await main();
