/**
 * Benchmark of `features package` (not a timed test): a generated collection of 50 features
 * (each: devcontainer-feature.json with options, install.sh, 8 helper scripts, a 64 KiB data
 * file, a nested folder and a symlink) packaged by dockpack and by the official devcontainer CLI
 * (`@devcontainers/cli`, the dev dependency) in the same run, on the same input.
 *
 * Prints wall seconds (median of `--runs`, default 3) for: dockpack as a library call, dockpack's
 * CLI (through tsx, as in development), and `devcontainer features package`; then the time ratios
 * against the official CLI (< 1 means dockpack is faster).
 *
 * Usage: node --import tsx bench/features.ts [--features 50] [--runs 3] [--json]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silentReporter } from "../src/core/output.js";
import { packageFeatures } from "../src/features/index.js";

const MAIN = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const DEVCONTAINER = createRequire(import.meta.url).resolve("@devcontainers/cli/devcontainer.js");

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1] ?? def) : def;
}

function generate(src: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const id = `feature-${String(i).padStart(3, "0")}`;
    const dir = join(src, id);
    mkdirSync(join(dir, "scripts", "lib"), { recursive: true });
    const meta = {
      id,
      version: `1.${i}.0`,
      name: `Feature ${i}`,
      description: `Generated feature number ${i}`,
      options: {
        version: { type: "string", proposals: ["latest", "1.0"], default: "latest" },
        flavour: { type: "string", enum: ["a", "b"], default: "a" },
        verbose: { type: "boolean", default: false },
      },
      containerEnv: { [`FEATURE_${i}`]: "1" },
    };
    writeFileSync(join(dir, "devcontainer-feature.json"), JSON.stringify(meta, null, 2));
    writeFileSync(join(dir, "install.sh"), `#!/bin/sh\nset -e\n. ./scripts/lib/common.sh\necho ${id}\n`, {
      mode: 0o755,
    });
    for (let s = 0; s < 8; s++)
      writeFileSync(join(dir, "scripts", `step-${s}.sh`), `#!/bin/sh\necho step ${s}\n`.repeat(40), {
        mode: 0o755,
      });
    writeFileSync(join(dir, "scripts", "lib", "common.sh"), 'log() { echo "$@"; }\n');
    writeFileSync(join(dir, "data.bin"), Buffer.alloc(64 * 1024, i));
    symlinkSync("scripts/step-0.sh", join(dir, "run.sh"));
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeIt(
  runs: number,
  fn: (out: string) => Promise<void> | void,
  base: string,
): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const out = join(base, `out-${r}`);
    const t0 = performance.now();
    await fn(out);
    times.push((performance.now() - t0) / 1000);
    rmSync(out, { recursive: true, force: true });
  }
  return median(times);
}

async function main(): Promise<void> {
  const count = arg("--features", 50);
  const runs = arg("--runs", 3);
  const json = process.argv.includes("--json");
  const work = mkdtempSync(join(tmpdir(), "dockpack-bench-features-"));
  try {
    const src = join(work, "src");
    generate(src, count);
    const lib = await timeIt(
      runs,
      async (out) => {
        await packageFeatures({ target: src, outputFolder: out }, silentReporter());
      },
      join(work, "lib"),
    );
    const cli = await timeIt(
      runs,
      (out) => {
        execFileSync(process.execPath, ["--import", "tsx", MAIN, "features", "package", src, "-o", out], {
          stdio: "ignore",
        });
      },
      join(work, "cli"),
    );
    const official = await timeIt(
      runs,
      (out) => {
        execFileSync(process.execPath, [DEVCONTAINER, "features", "package", src, "-o", out], {
          stdio: "ignore",
        });
      },
      join(work, "official"),
    );
    const result = {
      features: count,
      runs,
      seconds: { dockpackLibrary: lib, dockpackCli: cli, devcontainerCli: official },
      ratio: { libraryVsOfficial: lib / official, cliVsOfficial: cli / official },
    };
    if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      const f = (n: number) => n.toFixed(3);
      process.stdout.write(
        `features package, ${count} features, median of ${runs} runs\n` +
          `  dockpack (library call)         ${f(lib)} s\n` +
          `  dockpack (CLI, tsx)             ${f(cli)} s\n` +
          `  devcontainer features package   ${f(official)} s\n` +
          `  time ratio dockpack library / devcontainer CLI: ${f(result.ratio.libraryVsOfficial)}\n` +
          `  time ratio dockpack CLI / devcontainer CLI:     ${f(result.ratio.cliVsOfficial)}\n`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
