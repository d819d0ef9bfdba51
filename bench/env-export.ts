/**
 * Benchmark: `dockpack packages export` of an environment whose named volume holds N bytes (half
 * /dev/urandom, half repetitive text) against the practical limit on the same machine — the
 * engine's archive endpoint of a never-started container piped into `zstd -T0 -3`
 * (`docker create` + `docker cp CID:/data/. - | zstd -T0 -3` + `docker rm`, the same bytes out) —
 * and, as a second row, `docker run --rm -v VOL:/data busybox tar -c -C /data . | zstd -T0`.
 * The three run in alternating rounds on the same volume; the best time of each counts; the ratio
 * is limit time / job time (1.0 = at the limit). Peak RSS: VmHWM of dockpack's process.
 *
 * Run: `npm run build && npx tsx bench/env-export.ts [--size 256M,1G] [--rounds 2] [--cli A,B]`
 * (default sizes 1 GiB and 4 GiB; needs the engine and the busybox fixture; needs ~2.5× the size
 * in free disk; removes everything it created; `--cli` times several dockpack bundles in the same
 * rounds, e.g. an old build's copy of dist/ beside its package.json, one row each).
 */
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  alternate,
  bashRun,
  IMAGE,
  MiB,
  measured,
  row,
  runBench,
  sizeLabel,
  TABLE_HEAD,
} from "./env-common.js";

runBench(async (env, size, rounds, clis) => {
  console.error(`filling ${env.volume} with ${sizeLabel(size)}`);
  env.fill(size);
  const limitFile = join(env.work, "limit.tar.zst");
  const baseFile = join(env.work, "baseline.tar.zst");
  const out = join(env.work, "out");
  // warm the page cache for all alike
  await bashRun(`docker run --rm -v ${env.volume}:/data ${IMAGE} tar -c -C /data . > /dev/null`, env.work);
  const cliRows = clis.map((cli) => ({
    name: clis.length > 1 ? `dockpack ${cli}` : "dockpack",
    run: () => {
      rmSync(out, { recursive: true, force: true });
      return measured(
        process.execPath,
        [cli, "--json", "packages", "export", "bench", "--no-code", "--output-dir", out],
        env.app,
      );
    },
  }));
  const [limit, base, ...dockpack] = await alternate(rounds, [
    {
      name: "limit",
      run: () =>
        bashRun(
          `cid=$(docker create --network none -v ${env.volume}:/data ${IMAGE} true); docker cp "$cid:/data/." - | zstd -T0 -3 -q > ${limitFile}; docker rm "$cid" >/dev/null`,
          env.work,
        ),
    },
    {
      name: "docker run tar",
      run: () =>
        bashRun(
          `docker run --rm -v ${env.volume}:/data ${IMAGE} tar -c -C /data . | zstd -T0 -3 -q > ${baseFile}`,
          env.work,
        ),
    },
    ...cliRows,
  ]);
  const pkg = JSON.parse(dockpack[0].stdout) as { size: number };
  const limitSize = statSync(limitFile).size;
  rmSync(out, { recursive: true, force: true });
  rmSync(limitFile, { force: true });
  rmSync(baseFile, { force: true });
  return [
    `\n${sizeLabel(size)} volume (package ${(pkg.size / MiB).toFixed(0)} MiB, limit output ${(limitSize / MiB).toFixed(0)} MiB)`,
    TABLE_HEAD,
    row("engine archive endpoint | zstd -T0 -3 (the limit)", limit, size, limit),
    row("docker run … tar | zstd -T0 -3", base, size, limit),
    ...dockpack.map((d, i) => row(`${cliRows[i].name} packages export --no-code`, d, size, limit)),
  ];
});
