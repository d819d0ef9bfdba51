/**
 * Benchmark of `delta create` / `delta apply` (not a timed test): two versions of a realistic
 * image (Debian fixture, ~70 MB of "installed packages" with one package upgraded in v2, a
 * ~40 MB generated app layer that changes), built offline by `scripts/delta-fixtures.sh bench`.
 *
 * Prints, per method and compression: the package size as a fraction of `docker save`,
 * `docker save | gzip` and `docker save | zstd -T0`; create and apply wall times against the
 * time of `docker save | zstd -T0` of the same image in the same run; create throughput over
 * the bytes it reads (both images) against zstd -T0's throughput over the saved image.
 *
 * Usage: node --import tsx bench/delta.ts [--methods xdelta3,zstd,bsdiff,layer] [--compressions zstd,gzip] [--json]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Codec } from "../src/core/codec.js";
import { silentReporter } from "../src/core/output.js";
import { applyDelta, createDelta } from "../src/delta/index.js";

const SCRIPT = fileURLToPath(new URL("../scripts/delta-fixtures.sh", import.meta.url));
const V1 = "dockpack-bench/delta-app:1";
const V2 = "dockpack-bench/delta-app:2";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? def) : def;
}

/** Runs `sh -c cmd` and returns wall seconds. */
function timeShell(cmd: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn("sh", ["-c", cmd], { stdio: ["ignore", "ignore", "inherit"] });
    p.on("exit", (code) =>
      code === 0 ? resolve((performance.now() - t0) / 1000) : reject(new Error(`${cmd}: exit ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  execFileSync("bash", [SCRIPT, "bench"], { stdio: ["ignore", "ignore", "inherit"] });
  const methods = arg("--methods", "xdelta3,zstd,bsdiff,layer").split(",") as (
    | "xdelta3"
    | "zstd"
    | "bsdiff"
    | "layer"
    | "auto"
  )[];
  const codecs = arg("--compressions", "zstd,gzip").split(",") as Codec[];
  const dir = mkdtempSync(join(tmpdir(), "dockpack-bench-delta-"));
  const r = silentReporter();
  try {
    const save = join(dir, "v2.tar");
    const tSave = await timeShell(`docker save ${V2} > ${save}`);
    const saveSize = statSync(save).size;
    const v1Size = Number(
      execFileSync("sh", ["-c", `docker save ${V1} | wc -c`])
        .toString()
        .trim(),
    );
    const tGzip = await timeShell(`docker save ${V2} | gzip > ${save}.gz`);
    const gzipSize = statSync(`${save}.gz`).size;
    const tZstd = await timeShell(`docker save ${V2} | zstd -q -T0 > ${save}.zst`);
    const zstdSize = statSync(`${save}.zst`).size;
    rmSync(`${save}.gz`);
    const baseline = {
      dockerSave: { bytes: saveSize, seconds: tSave },
      dockerSaveGzip: { bytes: gzipSize, seconds: tGzip },
      dockerSaveZstd: { bytes: zstdSize, seconds: tZstd, throughput: saveSize / tZstd },
    };
    console.error(
      `image ${V2}: docker save ${(saveSize / 2 ** 20).toFixed(1)} MiB in ${tSave.toFixed(1)} s; | gzip ${(gzipSize / 2 ** 20).toFixed(1)} MiB in ${tGzip.toFixed(1)} s; | zstd -T0 ${(zstdSize / 2 ** 20).toFixed(1)} MiB in ${tZstd.toFixed(1)} s`,
    );
    const rows: Record<string, unknown>[] = [];
    for (const method of methods) {
      for (const compression of codecs) {
        const pkg = join(dir, `${method}-${compression}.dpd`);
        const t0 = performance.now();
        const res = await createDelta(
          { image: V2, bases: [V1], output: pkg, method, compression, measureGzip: false },
          r,
        );
        const tCreate = (performance.now() - t0) / 1000;
        const out = join(dir, `${method}-${compression}.tar`);
        const t1 = performance.now();
        const ap = await applyDelta({ package: pkg, output: out }, r);
        const tApply = (performance.now() - t1) / 1000;
        if (ap.imageId !== res.metadata.source.id)
          throw new Error(`${method}/${compression}: image ID differs`);
        rmSync(out);
        const size = res.packageSize;
        const row = {
          method,
          compression,
          packageBytes: size,
          ofDockerSave: size / saveSize,
          ofGzip: size / gzipSize,
          ofZstd: size / zstdSize,
          createSeconds: tCreate,
          applySeconds: tApply,
          createVsZstd: tCreate / tZstd,
          applyVsZstd: tApply / tZstd,
          createThroughputVsZstd: (saveSize + v1Size) / tCreate / baseline.dockerSaveZstd.throughput,
          layers: res.metadata.layers.map((l) => l.ship + (l.method ? `:${l.method}` : "")).join(" "),
        };
        rows.push(row);
        console.error(
          `${method.padEnd(8)} ${compression.padEnd(5)} ${(size / 2 ** 20).toFixed(2).padStart(7)} MiB  save ${(row.ofDockerSave * 100).toFixed(2)}%  gzip ${(row.ofGzip * 100).toFixed(2)}%  zstd ${(row.ofZstd * 100).toFixed(2)}%  create ${tCreate.toFixed(1)} s (${row.createVsZstd.toFixed(2)}× zstd time, throughput ${row.createThroughputVsZstd.toFixed(2)}× zstd)  apply ${tApply.toFixed(1)} s (${row.applyVsZstd.toFixed(2)}×)  [${row.layers}]`,
        );
      }
    }
    if (process.argv.includes("--json"))
      console.log(JSON.stringify({ image: V2, base: V1, baseline, rows }, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
