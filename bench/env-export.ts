/**
 * Benchmark: `dockpack packages export` of an environment with a 1 GiB named volume against the
 * baseline `docker run --rm -v VOL:/data busybox tar -c -C /data . | zstd -T0 > file`, in the
 * same run on the same volume; then dockpack's peak RSS for the 1 GiB volume and, grown to
 * 4 GiB, again (target: flat, below 200 MB). Peak RSS is the child process's VmHWM from
 * /proc/<pid>/status, polled every 50 ms.
 *
 * Run: `npx tsx bench/env-export.ts` (needs the engine and scripts/fixtures.sh busybox; uses
 * ~6 GiB of disk for a while; removes everything it created).
 * Data: 512 MiB from /dev/urandom + 512 MiB of repetitive text (compressible), then +3 GiB of
 * text for the 4 GiB run.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");
/** tsx resolved from here: Node resolves --import from the cwd, which is a temp folder. */
const TSX = import.meta.resolve("tsx");
const IMAGE = "dockpack-fixture/busybox:1";
const project = `dpbench${Math.random().toString(36).slice(2, 7)}`;
const sh = (cmd: string, args: string[], cwd?: string) =>
  execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

function fill(volume: string, script: string): void {
  sh("docker", ["run", "--rm", "--network", "none", "-v", `${volume}:/data`, IMAGE, "sh", "-c", script]);
}

/** Runs a command, polling its VmHWM; returns seconds and peak RSS in bytes. */
function measured(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<{ seconds: number; peakRss: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      cwd,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let peak = 0;
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch {
        // exited
      }
    }, 50);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`));
      else resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRss: peak, stdout: out });
    });
  });
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;

async function main(): Promise<void> {
  sh("bash", [join(ROOT, "scripts/fixtures.sh"), "busybox"]);
  const work = mkdtempSync(join(tmpdir(), "dockpack-bench-"));
  const app = join(work, "app");
  try {
    cpSync(join(ROOT, "examples/compose-app"), app, { recursive: true });
    sh("git", ["init", "-q", "-b", "main"], app);
    sh("git", ["add", "-A"], app);
    sh("git", ["-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-q", "-m", "bench"], app);
    const dp = (args: string[]) => sh(process.execPath, ["--import", TSX, MAIN, ...args], app);
    dp(["env", "init", "--project", project, "--volume", "db"]);
    dp(["env", "create", "bench"]);
    const volume = `${project}-bench_db`;
    sh("docker", ["volume", "create", volume]);
    console.error(`filling ${volume} with 1 GiB`);
    fill(
      volume,
      "dd if=/dev/urandom of=/data/random.bin bs=1M count=512 2>/dev/null && yes 'dockpack bench line: the quick brown fox jumps over the lazy dog' | head -c 536870912 > /data/text.log",
    );

    // warm the page cache for both runs alike
    sh("bash", ["-c", `docker run --rm -v ${volume}:/data ${IMAGE} tar -c -C /data . > /dev/null`]);
    // alternate baseline and dockpack twice and keep the best of each, to damp a busy machine's noise
    const baseFile = join(work, "baseline.tar.zst");
    const out1 = join(work, "out1");
    let base = { seconds: Number.POSITIVE_INFINITY, peakRss: 0, stdout: "" };
    let run1 = { seconds: Number.POSITIVE_INFINITY, peakRss: 0, stdout: "" };
    let pkg1 = { package: "", size: 0 };
    for (let round = 0; round < 2; round++) {
      rmSync(baseFile, { force: true });
      const b = await measured(
        "bash",
        ["-c", `docker run --rm -v ${volume}:/data ${IMAGE} tar -c -C /data . | zstd -T0 -q > ${baseFile}`],
        work,
      );
      if (b.seconds < base.seconds) base = b;
      rmSync(out1, { recursive: true, force: true });
      const d = await measured(
        process.execPath,
        ["--import", TSX, MAIN, "--json", "packages", "export", "bench", "--no-code", "--output-dir", out1],
        app,
      );
      if (d.seconds < run1.seconds) {
        run1 = { ...d, peakRss: Math.max(d.peakRss, run1.peakRss) };
        pkg1 = JSON.parse(d.stdout) as { package: string; size: number };
      } else run1.peakRss = Math.max(run1.peakRss, d.peakRss);
      console.error(
        `round ${round + 1}: baseline ${b.seconds.toFixed(2)} s, dockpack ${d.seconds.toFixed(2)} s`,
      );
    }
    const ratio = base.seconds / run1.seconds;
    rmSync(out1, { recursive: true, force: true });

    console.error("growing the volume to 4 GiB");
    fill(
      volume,
      "yes 'dockpack bench line: 4 GiB run, more compressible text' | head -c 3221225472 > /data/more.log",
    );
    const out4 = join(work, "out4");
    const run4 = await measured(
      process.execPath,
      ["--import", TSX, MAIN, "--json", "packages", "export", "bench", "--no-code", "--output-dir", out4],
      app,
    );

    const rows = [
      [
        "baseline docker run tar | zstd -T0 (1 GiB)",
        `${base.seconds.toFixed(2)} s`,
        `${mib((1024 * 1024 * 1024) / base.seconds)}/s`,
        `${mib(statSync(baseFile).size)}`,
      ],
      [
        "dockpack packages export (1 GiB)",
        `${run1.seconds.toFixed(2)} s`,
        `${mib((1024 * 1024 * 1024) / run1.seconds)}/s`,
        `${mib(pkg1.size)}`,
      ],
      [
        "dockpack packages export (4 GiB)",
        `${run4.seconds.toFixed(2)} s`,
        `${mib((4 * 1024 * 1024 * 1024) / run4.seconds)}/s`,
        "",
      ],
    ];
    console.log(rows.map((r) => r.join(" | ")).join("\n"));
    console.log(`throughput ratio dockpack/baseline (1 GiB): ${ratio.toFixed(2)} (target >= 0.8)`);
    console.log(
      `peak RSS dockpack: 1 GiB ${mib(run1.peakRss)}, 4 GiB ${mib(run4.peakRss)} (target flat, < 200 MiB)`,
    );
  } finally {
    // best effort, each step on its own, so one failure does not leave the rest behind
    const attempt = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        console.error(`clean-up: ${(err as Error).message.split("\n")[0]}`);
      }
    };
    attempt(() =>
      sh(
        process.execPath,
        ["--import", TSX, MAIN, "env", "remove", "bench", "--volumes", "--delete-branch", "--force"],
        app,
      ),
    );
    attempt(() => {
      const vols = sh("docker", ["volume", "ls", "-q", "--filter", `name=${project}`])
        .trim()
        .split("\n")
        .filter(Boolean);
      if (vols.length) sh("docker", ["volume", "rm", "-f", ...vols]);
    });
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
