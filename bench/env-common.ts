/**
 * Shared parts of bench/env-export.ts and bench/env-import.ts: a throw-away repository with an
 * initialised environment whose one named volume holds half random, half repetitive text data,
 * the engine's archive endpoint as the practical limit (a never-started helper container,
 * `docker cp` = `GET`/`PUT /containers/{id}/archive`), a child-process runner that polls peak RSS
 * (VmHWM of the process and its node children), and `--size` parsing.
 *
 * dockpack runs as installed, the bundle dist/bin/dockpack.js (`npm run build` first): tsx's start-up would be measured otherwise.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CLI = join(ROOT, "dist/bin/dockpack.js");
export const IMAGE = "dockpack-fixture/busybox:1";
export const GiB = 1024 * 1024 * 1024;
export const MiB = 1024 * 1024;

export const sh = (cmd: string, args: string[], cwd?: string): string =>
  execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

/**
 * `--size 256M,1G` → bytes; default 1 GiB and 4 GiB; `--rounds N` (default 2); `--cli A,B`: the
 * dockpack bundles to time side by side (default dist/bin/dockpack.js of this checkout; e.g. a
 * copy of an older build's dist/ to compare with).
 */
export function benchArgs(argv: string[]): { sizes: number[]; rounds: number; clis: string[] } {
  const unit: Record<string, number> = { K: 1024, M: MiB, G: GiB, "": 1 };
  let sizes = [GiB, 4 * GiB];
  let rounds = 2;
  let clis = [CLI];
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split("=", 2);
    const value = inline ?? argv[i + 1];
    if (flag === "--size" || flag === "--rounds" || flag === "--cli") {
      if (inline === undefined) i++;
      if (flag === "--rounds") rounds = Math.max(1, Number(value));
      else if (flag === "--cli") clis = value.split(",").map((c) => c.trim());
      else
        sizes = value.split(",").map((s) => {
          const m = /^(\d+)([KMG]?)i?B?$/i.exec(s.trim());
          if (!m) throw new Error(`--size: '${s}' is not a size such as 256M or 1G`);
          return Number(m[1]) * unit[m[2].toUpperCase()];
        });
    } else throw new Error(`unknown argument ${argv[i]} (use --size 256M,1G --rounds 2 --cli PATH,PATH)`);
  }
  return { sizes, rounds, clis };
}

/** The machine line printed under each table. */
export function machine(): string {
  const [l1, l5] = loadavg();
  return `machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), load average ${l1.toFixed(1)} / ${l5.toFixed(1)} (1/5 min)`;
}

/** Result of {@link measured}. */
export interface Run {
  seconds: number;
  /** Peak RSS of the dockpack node process (bytes; 0 for shell pipelines). */
  peakRss: number;
  /** Bytes the node process read (rchar of /proc/PID/io: files, pipes and sockets). */
  read: number;
  stdout: string;
}

function nodePids(root: number): number[] {
  // the CLI process itself, plus any node child (none today)
  const out = [root];
  try {
    for (const t of readdirSync(`/proc/${root}/task`)) {
      const kids = readFileSync(`/proc/${root}/task/${t}/children`, "utf8").trim();
      for (const k of kids.split(/\s+/).filter(Boolean)) {
        if (readFileSync(`/proc/${k}/comm`, "utf8").trim() === "node") out.push(Number(k));
      }
    }
  } catch {
    // exited
  }
  return out;
}

/** Runs a command, polling its VmHWM every 50 ms; rejects on a non-zero exit. */
export function measured(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      cwd,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let peak = 0;
    let read = 0;
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const poll = setInterval(() => {
      for (const pid of nodePids(child.pid as number)) {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
          if (m) peak = Math.max(peak, Number(m[1]) * 1024);
          const r = /rchar:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
          if (r && pid === child.pid) read = Math.max(read, Number(r[1]));
        } catch {
          // exited
        }
      }
    }, 50);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`));
      else resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRss: peak, read, stdout: out });
    });
  });
}

/** Runs `fn` once; a failure is printed, never thrown (clean-ups). */
export function attempt(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    console.error(`clean-up: ${(err as Error).message.split("\n")[0]}`);
  }
}

/** A throw-away repository with environment `bench` and its volume `db`. */
export interface BenchEnv {
  work: string;
  app: string;
  project: string;
  /** The Docker volume of `bench`'s `db`. */
  volume: string;
  /** dockpack from dist/ in the repository (stdout returned). */
  dp: (args: string[]) => string;
  /** Fills the volume afresh with `bytes`: half /dev/urandom, half repetitive text. */
  fill: (bytes: number) => void;
  cleanup: () => void;
}

/** Creates the repository, `env init`, `env create bench` and the empty volume. */
export function benchEnv(): BenchEnv {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first`);
  sh("bash", [join(ROOT, "scripts/fixtures.sh"), "busybox"]);
  const project = `dpbench${Math.random().toString(36).slice(2, 7)}`;
  const work = mkdtempSync(join(tmpdir(), "dockpack-bench-"));
  const app = join(work, "app");
  cpSync(join(ROOT, "examples/compose-app"), app, { recursive: true });
  sh("git", ["init", "-q", "-b", "main"], app);
  sh("git", ["add", "-A"], app);
  sh("git", ["-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-q", "-m", "bench"], app);
  const dp = (args: string[]) => sh(process.execPath, [CLI, ...args], app);
  dp(["env", "init", "--project", project, "--volume", "db"]);
  dp(["env", "create", "bench"]);
  const volume = `${project}-bench_db`;
  sh("docker", ["volume", "create", volume]);
  const fill = (bytes: number) => {
    const half = Math.floor(bytes / 2 / MiB);
    sh("docker", [
      "run",
      "--rm",
      "--network",
      "none",
      "-v",
      `${volume}:/data`,
      IMAGE,
      "sh",
      "-c",
      `rm -rf /data/* && dd if=/dev/urandom of=/data/random.bin bs=1M count=${half} 2>/dev/null && yes 'dockpack bench line: the quick brown fox jumps over the lazy dog' | head -c ${half * MiB} > /data/text.log`,
    ]);
  };
  const cleanup = () => {
    attempt(() => dp(["env", "remove", "bench", "--volumes", "--delete-branch", "--force"]));
    attempt(() => {
      const vols = sh("docker", ["volume", "ls", "-q", "--filter", `name=${project}`])
        .trim()
        .split("\n")
        .filter(Boolean);
      if (vols.length) sh("docker", ["volume", "rm", "-f", ...vols]);
    });
    rmSync(work, { recursive: true, force: true });
  };
  return { work, app, project, volume, dp, fill, cleanup };
}

/** `docker create` (never started) of the helper-like container with `volume` at /data; its id. */
export function parkedContainer(volume: string): string {
  return sh("docker", ["create", "--network", "none", "-v", `${volume}:/data`, IMAGE, "true"]).trim();
}

/** Best of each row over alternating rounds: `rows[i]` runs `rounds` times, interleaved. */
export async function alternate(
  rounds: number,
  rows: Array<{ name: string; run: (round: number) => Promise<Run>; after?: () => void }>,
): Promise<Run[]> {
  const best: Run[] = rows.map(() => ({
    seconds: Number.POSITIVE_INFINITY,
    peakRss: 0,
    read: 0,
    stdout: "",
  }));
  for (let r = 0; r < rounds; r++) {
    const line: string[] = [];
    for (const [i, row] of rows.entries()) {
      const res = await row.run(r);
      row.after?.();
      line.push(`${row.name} ${res.seconds.toFixed(2)} s`);
      best[i] = {
        seconds: Math.min(best[i].seconds, res.seconds),
        peakRss: Math.max(best[i].peakRss, res.peakRss),
        read: Math.max(best[i].read, res.read),
        stdout: res.seconds <= best[i].seconds ? res.stdout : best[i].stdout,
      };
    }
    console.error(`round ${r + 1}: ${line.join(", ")} (load average ${loadavg()[0].toFixed(1)})`);
  }
  return best;
}

/** `256 MiB` / `1 GiB` / `4 GiB`. */
export function sizeLabel(bytes: number): string {
  return bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : `${Math.round(bytes / MiB)} MiB`;
}

/** Formats one table row. */
export function row(name: string, r: Run, bytes: number, limit: Run): string {
  const ratio = limit.seconds / r.seconds;
  // shell pipelines have no node process: RSS and bytes read are dockpack's only
  const node = r.peakRss > 16 * MiB;
  const rss = node ? `${(r.peakRss / MiB).toFixed(0)} MiB` : "";
  const read = node ? `${(r.read / MiB).toFixed(0)} MiB` : "";
  return `| ${name} | ${r.seconds.toFixed(2)} s | ${(bytes / MiB / r.seconds).toFixed(0)} MiB/s | ${ratio.toFixed(2)} | ${rss} | ${read} |`;
}

export const TABLE_HEAD =
  "| job | best time | throughput | ratio to the limit | peak RSS | read by dockpack |\n|---|---|---|---|---|---|";

/**
 * Runs a bench: parses the arguments, makes the environment, calls `perSize` for each size (its
 * lines are printed at the end, with the machine line), always cleans up (`extra` first).
 */
export function runBench(
  perSize: (env: BenchEnv, size: number, rounds: number, clis: string[]) => Promise<string[]>,
  extra: (env: BenchEnv) => void = () => undefined,
): void {
  const main = async () => {
    const { sizes, rounds, clis } = benchArgs(process.argv.slice(2));
    const env = benchEnv();
    const lines: string[] = [];
    try {
      for (const size of sizes) lines.push(...(await perSize(env, size, rounds, clis)));
      console.log(lines.join("\n"));
      console.log(machine());
    } finally {
      extra(env);
      env.cleanup();
    }
  };
  main().catch((e) => {
    console.error(`bench failed: ${(e as Error).message}`);
    process.exitCode = 1;
  });
}

/** {@link measured} of a bash script (with `set -e -o pipefail`). */
export const bashRun = (script: string, cwd: string): Promise<Run> =>
  measured("bash", ["-c", `set -e -o pipefail; ${script}`], cwd);
