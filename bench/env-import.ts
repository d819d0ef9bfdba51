/**
 * Benchmark: `dockpack packages import` (a new branch each round) of a package holding one named
 * volume of N bytes (half /dev/urandom, half repetitive text) against the practical limit on the
 * same machine — `zstd -d` of the package's volume member piped into the engine's archive
 * endpoint of a never-started container on an empty volume (`docker volume create` +
 * `docker create` + `zstd -d | docker cp - CID:/data` + `docker rm`) — and, as a second row,
 * `zstd -d | docker run -i --rm -v VOL:/data busybox tar -x -C /data`. Alternating rounds; the best
 * time of each counts; ratio = limit time / job time. Peak RSS: VmHWM of dockpack's process.
 *
 * Run: `npm run build && npx tsx bench/env-import.ts [--size 256M,1G] [--rounds 2] [--cli A,B]`
 * (default 1 GiB and 4 GiB; needs ~3.5× the size in free disk; removes everything it created;
 * `--cli` times several dockpack bundles in the same rounds, e.g. an old build's copy of dist/,
 * one row each).
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import * as b from "./env-common.js";

const scratchOf = (project: string) => `${project}-scratch`;

b.runBench(
  async (env, size, rounds, clis) => {
    const scratch = scratchOf(env.project);
    const dropScratch = () => b.attempt(() => b.sh("docker", ["volume", "rm", "-f", scratch]));
    console.error(`filling ${env.volume} with ${b.sizeLabel(size)} and exporting it`);
    env.fill(size);
    const out = join(env.work, "out");
    rmSync(out, { recursive: true, force: true });
    const pkg = JSON.parse(
      env.dp(["--json", "packages", "export", "bench", "--no-code", "--output-dir", out]),
    ) as {
      package: string;
      size: number;
    };
    const member = join(env.work, "member.tar.zst");
    b.sh("bash", ["-c", `tar -xOf '${pkg.package}' volumes/db.tar.zst > ${member}`]);
    // warm the page cache for all alike
    b.sh("bash", ["-c", `cat '${pkg.package}' ${member} > /dev/null`]);
    let branch = 0;
    const cliRows = clis.map((cli) => ({
      name: clis.length > 1 ? `dockpack ${cli}` : "dockpack",
      run: () => {
        branch++;
        return b.measured(
          process.execPath,
          [cli, "--json", "packages", "import", pkg.package, "--target-branch", `imp${branch}`],
          env.app,
        );
      },
      after: () =>
        b.attempt(() => env.dp(["env", "remove", `imp${branch}`, "--volumes", "--delete-branch", "--force"])),
    }));
    const [limit, base, ...dockpack] = await b.alternate(rounds, [
      {
        name: "limit",
        run: () =>
          b.bashRun(
            `docker volume create ${scratch} >/dev/null; cid=$(docker create --network none -v ${scratch}:/data ${b.IMAGE} true); zstd -d -c -q ${member} | docker cp - "$cid:/data"; docker rm "$cid" >/dev/null`,
            env.work,
          ),
        after: dropScratch,
      },
      {
        name: "docker run tar -x",
        run: () =>
          b.bashRun(
            `docker volume create ${scratch} >/dev/null; zstd -d -c -q ${member} | docker run -i --rm --network none -v ${scratch}:/data ${b.IMAGE} tar -x -C /data`,
            env.work,
          ),
        after: dropScratch,
      },
      ...cliRows,
    ]);
    rmSync(out, { recursive: true, force: true });
    rmSync(member, { force: true });
    return [
      `\n${b.sizeLabel(size)} volume (package ${(pkg.size / b.MiB).toFixed(0)} MiB)`,
      b.TABLE_HEAD,
      b.row("zstd -d | engine archive endpoint (the limit)", limit, size, limit),
      b.row("zstd -d | docker run … tar -x", base, size, limit),
      ...dockpack.map((r, i) => b.row(`${cliRows[i].name} packages import`, r, size, limit)),
    ];
  },
  (env) => b.attempt(() => b.sh("docker", ["volume", "rm", "-f", scratchOf(env.project)])),
);
