/**
 * Benchmark of `delta create` / `delta apply` (not a timed test): two versions of a realistic
 * image (Debian fixture, ~64 MiB of "installed packages" of which v2 upgrades five files, a
 * 115 MiB generated app layer of which v2 changes 11 of 400 modules; 300 MiB `docker save`),
 * built offline by `scripts/delta-fixtures.sh bench`.
 *
 * Alternating rounds in one run: each round times the limit — `docker save v2 | zstd -T0` —
 * then `delta create --base v1 v2` with every method, each create in a child process so its
 * peak RSS (node and the xdelta3/zstd/bsdiff it runs, from `/usr/bin/time`) is measured too.
 * Per method it prints, against the limit of the same round:
 * - `throughput`: the bytes create reads (v1 + v2 saved, 600 MiB; `layer` saves v2 only,
 *   300 MiB, so there it equals `time`) per second over the bytes `docker save | zstd -T0`
 *   reads per second (the issue's "≥ 1.0 of docker save | zstd -T0");
 * - `time`: the limit's wall time over create's (1.0 = as fast as saving and compressing v2 alone);
 * - for `auto`: its time over the fastest single method's in the same round (target ≤ 2);
 * - the package size against `docker save`, `| gzip` and `| zstd -T0`, and peak RSS.
 * bsdiff on this pair shows its bound: both changed layers are above 32 MiB, so it falls back
 * to xdelta3 (said in methodReason) instead of taking 1 GB and minutes. Apply is run once per
 * method (image ID checked). The load average (`uptime`) is printed with every round: the
 * machine is shared.
 *
 * Rows are `method[:level][+gz]`: `layer:9` packs whole layers at zstd level 9 (the default of
 * `-m layer` is 3, the level of `zstd -T0` in the limit; 9 costs about 4× the CPU per byte);
 * `+gz` also measures `docker save | gzip` for `info`, as the CLI does with `--gzip-measure`.
 * `auto` is compared with the fastest of xdelta3, zstd, layer and bsdiff at the default level.
 *
 * Usage: node --import tsx bench/delta.ts [--rounds 3]
 *        [--methods xdelta3,zstd,layer,layer:9,auto,bsdiff,xdelta3+gz] [--compressions zstd]
 *        [--no-apply] [--json]
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Codec } from "../src/core/codec.js";
import { silentReporter } from "../src/core/output.js";
import { applyDelta, createDelta } from "../src/delta/index.js";

const SCRIPT = fileURLToPath(new URL("../scripts/delta-fixtures.sh", import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const V1 = "dockpack-bench/delta-app:1";
const V2 = "dockpack-bench/delta-app:2";
const TIME = "/usr/bin/time";
type Method = "xdelta3" | "zstd" | "bsdiff" | "layer" | "auto";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? def) : def;
}

/**
 * CPU seconds of a process from /proc (utime + stime, and with `children` those of its waited
 * children: the programs it ran), or NaN when /proc is not readable. Clock ticks of 1/100 s.
 */
function cpuSeconds(pid: number | "self", children: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const t = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
    return t / 100;
  } catch {
    return Number.NaN;
  }
}

/** The engine's pid, for its CPU use (shared with everything else using the engine). */
function dockerdPid(): number | undefined {
  try {
    return Number(execFileSync("pgrep", ["-xo", "dockerd"]).toString().trim()) || undefined;
  } catch {
    return undefined;
  }
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

interface ChildResult {
  seconds: number;
  packageSize: number;
  imageId: string;
  layers: string;
  methodReasons: string[];
  selfMaxRssKiB: number;
  /** CPU seconds of create: node and the programs it ran (xdelta3, zstd, docker CLI…). */
  cpuSeconds: number;
}

/** A bench row: `method[:level][+gz]` (level: -l for the package codec; +gz: measure docker save | gzip, the CLI's --gzip-measure). */
interface Spec {
  method: Method;
  level?: number;
  measureGzip: boolean;
}

function parseSpec(s: string): Spec {
  const m = /^(xdelta3|zstd|bsdiff|layer|auto)(?::(-?\d+))?(\+gz)?$/.exec(s);
  if (!m) throw new Error(`bad method spec '${s}' (method[:level][+gz])`);
  return { method: m[1] as Method, ...(m[2] ? { level: Number(m[2]) } : {}), measureGzip: Boolean(m[3]) };
}

/** In the child: one create, its wall time (after imports) and result on stdout. */
async function child(spec: { spec: string; compression: Codec; output: string }): Promise<void> {
  const { method, level, measureGzip } = parseSpec(spec.spec);
  const cpu0 = cpuSeconds("self", true);
  const t0 = performance.now();
  const res = await createDelta(
    {
      image: V2,
      bases: [V1],
      output: spec.output,
      method,
      compression: spec.compression,
      ...(level !== undefined ? { level } : {}),
      measureGzip,
    },
    silentReporter(),
  );
  const out: ChildResult = {
    seconds: (performance.now() - t0) / 1000,
    packageSize: res.packageSize,
    imageId: res.metadata.source.id,
    layers: res.metadata.layers.map((l) => l.ship + (l.method ? `:${l.method}` : "")).join(" "),
    methodReasons: res.metadata.layers.flatMap((l) =>
      l.methodReason ? [`${l.index}: ${l.methodReason}`] : [],
    ),
    selfMaxRssKiB: process.resourceUsage().maxRSS,
    cpuSeconds: cpuSeconds("self", true) - cpu0,
  };
  console.log(JSON.stringify(out));
}

/** Runs one create in a child process; peak RSS of the child and its programs from /usr/bin/time. */
async function createInChild(
  method: string,
  compression: Codec,
  output: string,
  dir: string,
): Promise<ChildResult & { peakRssMiB: number; rssOf: string }> {
  const rssFile = join(dir, "rss");
  const spec = JSON.stringify({ spec: method, compression, output });
  const node = [process.execPath, "--import", "tsx", SELF, "--child", spec];
  const useTime = existsSync(TIME);
  const cmd = useTime ? TIME : node[0];
  const args = useTime ? ["-f", "%M", "-o", rssFile, ...node] : node.slice(1);
  const stdout = execFileSync(cmd, args, { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
  const r = JSON.parse(stdout.toString().trim().split("\n").pop() as string) as ChildResult;
  const kib = useTime ? Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) : r.selfMaxRssKiB;
  return { ...r, peakRssMiB: kib / 1024, rssOf: useTime ? "node + its programs" : "node only" };
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (xs: number[], d = 2) =>
  `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)} (median ${median(xs).toFixed(d)})`;

async function main(): Promise<void> {
  const childAt = process.argv.indexOf("--child");
  if (childAt > 0) return child(JSON.parse(process.argv[childAt + 1]));
  execFileSync("bash", [SCRIPT, "bench"], { stdio: ["ignore", "ignore", "inherit"] });
  const rounds = Number(arg("--rounds", "3"));
  const methods = arg("--methods", "xdelta3,zstd,layer,layer:9,auto,bsdiff,xdelta3+gz").split(",");
  methods.forEach(parseSpec);
  const codecs = arg("--compressions", "zstd").split(",") as Codec[];
  const dir = mkdtempSync(join(tmpdir(), "dockpack-bench-delta-"));
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
    rmSync(`${save}.gz`);
    rmSync(save);
    console.error(
      `image ${V2}: docker save ${(saveSize / 2 ** 20).toFixed(1)} MiB in ${tSave.toFixed(1)} s, | gzip ${(gzipSize / 2 ** 20).toFixed(1)} MiB in ${tGzip.toFixed(1)} s; v1 ${(v1Size / 2 ** 20).toFixed(1)} MiB; create reads ${((saveSize + v1Size) / 2 ** 20).toFixed(0)} MiB`,
    );
    /** Bytes create reads: v2, and v1 too when it diffs (layer inspects v1, never saves it). */
    const reads = (spec: string) => (parseSpec(spec).method === "layer" ? saveSize : saveSize + v1Size);
    const samples: Record<string, unknown>[] = [];
    let zstdSize = 0;
    const checked = new Set<string>();
    for (let round = 1; round <= rounds; round++) {
      const loadBefore = load();
      const dpid = dockerdPid();
      const cpu0 = cpuSeconds("self", true);
      const d0 = dpid ? cpuSeconds(dpid, false) : Number.NaN;
      const tZstd = await timeShell(`docker save ${V2} | zstd -q -T0 > ${save}.zst`);
      const limitCpu = cpuSeconds("self", true) - cpu0;
      const limitEngineCpu = dpid ? cpuSeconds(dpid, false) - d0 : Number.NaN;
      zstdSize = statSync(`${save}.zst`).size;
      rmSync(`${save}.zst`);
      console.error(
        `round ${round} (load ${loadBefore}): docker save | zstd -T0 ${(zstdSize / 2 ** 20).toFixed(1)} MiB in ${tZstd.toFixed(2)} s, CPU ${limitCpu.toFixed(2)} s (docker CLI + zstd) + dockerd ${limitEngineCpu.toFixed(2)} s`,
      );
      // Alternate the order between rounds so no method always runs right after the limit.
      const order = round % 2 ? methods : [...methods].reverse();
      const times = new Map<string, number>();
      for (const method of order) {
        for (const compression of codecs) {
          const key = `${method}/${compression}`;
          const pkg = join(dir, `${method}-${compression}.dpd`);
          const e0 = dpid ? cpuSeconds(dpid, false) : Number.NaN;
          const c = await createInChild(method, compression, pkg, dir);
          const engineCpu = dpid ? cpuSeconds(dpid, false) - e0 : Number.NaN;
          times.set(key, c.seconds);
          if (!checked.has(key) && !process.argv.includes("--no-apply")) {
            const out = join(dir, `${method}-${compression}.tar`);
            const ap = await applyDelta({ package: pkg, output: out }, silentReporter());
            if (ap.imageId !== c.imageId) throw new Error(`${key}: image ID differs after apply`);
            rmSync(out);
            checked.add(key);
          }
          rmSync(pkg, { force: true });
          const row = {
            round,
            method,
            compression,
            load: load(),
            createSeconds: c.seconds,
            limitSeconds: tZstd,
            // layer saves only v2 (the bases' diff_ids come from inspecting them)
            readBytes: reads(method),
            throughputVsLimit: reads(method) / c.seconds / (saveSize / tZstd),
            timeVsLimit: tZstd / c.seconds,
            packageBytes: c.packageSize,
            ofDockerSave: c.packageSize / saveSize,
            ofGzip: c.packageSize / gzipSize,
            ofZstd: c.packageSize / zstdSize,
            peakRssMiB: c.peakRssMiB,
            cpuSeconds: c.cpuSeconds,
            engineCpuSeconds: engineCpu,
            limitCpuSeconds: limitCpu,
            limitEngineCpuSeconds: limitEngineCpu,
            // bytes read per CPU second (create: node + its programs + dockerd) against the limit's
            cpuThroughputVsLimit:
              reads(method) / (c.cpuSeconds + engineCpu) / (saveSize / (limitCpu + limitEngineCpu)),
            rssOf: c.rssOf,
            layers: c.layers,
            methodReasons: c.methodReasons,
          };
          samples.push(row);
          console.error(
            `  ${key.padEnd(13)} ${(c.packageSize / 2 ** 20).toFixed(2).padStart(6)} MiB (${(row.ofZstd * 100).toFixed(2)}% of save|zstd)  create ${c.seconds.toFixed(2)} s  throughput ${row.throughputVsLimit.toFixed(2)}× limit  time ${row.timeVsLimit.toFixed(2)}×  CPU ${c.cpuSeconds.toFixed(2)} s + dockerd ${engineCpu.toFixed(2)} s (per CPU s ${row.cpuThroughputVsLimit.toFixed(2)}× limit)  peak RSS ${c.peakRssMiB.toFixed(0)} MiB  load ${row.load}  [${c.layers}]`,
          );
          for (const why of c.methodReasons) console.error(`      ${why}`);
        }
      }
      for (const compression of codecs) {
        const singles = ["xdelta3", "zstd", "layer", "bsdiff"]
          .filter((m) => methods.includes(m))
          .map((m) => times.get(`${m}/${compression}`) ?? Infinity);
        const auto = times.get(`auto/${compression}`);
        if (auto !== undefined && singles.length > 0) {
          const fastest = Math.min(...singles);
          samples.push({ round, compression, autoVsFastest: auto / fastest });
          console.error(
            `  auto/${compression}: ${(auto / fastest).toFixed(2)}× the fastest single method (${fastest.toFixed(2)} s)`,
          );
        }
      }
    }
    console.error(`summary over ${rounds} rounds (load at the end ${load()}):`);
    const rows = samples.filter((s) => "method" in s) as {
      method: string;
      compression: string;
      throughputVsLimit: number;
      timeVsLimit: number;
      peakRssMiB: number;
      createSeconds: number;
      cpuThroughputVsLimit: number;
    }[];
    for (const method of methods)
      for (const compression of codecs) {
        const rs = rows.filter((r) => r.method === method && r.compression === compression);
        console.error(
          `  ${`${method}/${compression}`.padEnd(13)} throughput ${range(rs.map((r) => r.throughputVsLimit))}×  time ${range(rs.map((r) => r.timeVsLimit))}×  create ${range(
            rs.map((r) => r.createSeconds),
            1,
          )} s  per CPU s ${range(rs.map((r) => r.cpuThroughputVsLimit))}×  peak RSS ${range(
            rs.map((r) => r.peakRssMiB),
            0,
          )} MiB`,
        );
      }
    const av = samples.flatMap((s) => ("autoVsFastest" in s ? [s.autoVsFastest as number] : []));
    if (av.length) console.error(`  auto vs fastest single method: ${range(av)}×`);
    if (process.argv.includes("--json"))
      console.log(
        JSON.stringify({ image: V2, base: V1, saveSize, v1Size, gzipSize, zstdSize, samples }, null, 2),
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
