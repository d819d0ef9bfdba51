/**
 * Benchmark of environment packages through a registry (not a timed test). Starts a local
 * registry (docker-registry 2.8, test/helpers/registry.ts), writes a package with two volumes of
 * N MiB each (half random bytes, half log-like text, in 256 KiB runs; zstd -T0 -3 as export
 * writes it; `--codec none|gzip` to compare), pushes it, changes 1 % of one volume (a contiguous
 * run in the middle), pushes the second package to another tag of the same repository, pulls it
 * back and checks the bytes.
 *
 * Prints: bytes sent by the first and the second push and their ratio (target of issue 15: the
 * second ≤ 5 % of the first), push and pull times, and the time of `skopeo copy` of the same
 * package bytes as one blob (oci: layout → docker://) in the same run.
 *
 * Usage: node --import tsx bench/registry.ts [--mib 64] [--codec zstd] [--json]
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { digestFile } from "../src/core/digest.js";
import { pullPackage, pushPackage } from "../src/env/registry.js";
import { writeTwoVolumePackage } from "../test/core/oci/synthetic-package.js";
import { startRegistry } from "../test/helpers/registry.js";

const i = process.argv.indexOf("--mib");
const MIB = i > 0 ? Number(process.argv[i + 1]) : 64;
const json = process.argv.includes("--json");
const c = process.argv.indexOf("--codec");
const codec = (c > 0 ? process.argv[c + 1] : "zstd") as "zstd" | "gzip" | "none";

/** Half random, half log-like text, in 256 KiB runs (text compresses, random does not). */
function volumeData(mib: number): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  for (let k = 0; n < mib * 2 ** 20; k++) {
    const b =
      k % 2 === 0
        ? randomBytes(256 * 1024)
        : Buffer.from(
            Array.from(
              { length: 2600 },
              (_, j) =>
                `2026-11-30T04:${j % 60}:00Z INFO id=${k * 10000 + j} path=/api/items/${(j * 7919) % 1e5} status=200\n`,
            ).join(""),
          );
    parts.push(b);
    n += b.length;
  }
  return Buffer.concat(parts).subarray(0, mib * 2 ** 20);
}

const reg = await startRegistry();
const dir = mkdtempSync(join(tmpdir(), "dockpack-bench-registry-"));
try {
  const db = volumeData(MIB);
  const cache = volumeData(MIB);
  const a = join(dir, "bench-main-a.dockpack.tar");
  const b = join(dir, "bench-main-b.dockpack.tar");
  await writeTwoVolumePackage(a, { db, cache }, { mtime: 1_700_000_000, codec });
  const changed = Buffer.from(db);
  randomBytes(Math.floor(changed.length / 100)).copy(changed, Math.floor(changed.length / 2));
  await writeTwoVolumePackage(b, { db: changed, cache }, { mtime: 1_700_000_100, codec });

  const first = await pushPackage({ package: a, reference: `${reg.host}/bench/env:a` });
  const second = await pushPackage({ package: b, reference: `${reg.host}/bench/env:b` });
  const t0 = performance.now();
  const pulled = await pullPackage({ reference: `${reg.host}/bench/env:b`, outputDir: join(dir, "pulled") });
  const pullSeconds = (performance.now() - t0) / 1000;
  if (!readFileSync(pulled.package).equals(readFileSync(b))) throw new Error("pulled package differs");

  // skopeo copy of the same bytes as one blob
  const layout = join(dir, "layout");
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
  const blob = await digestFile(a);
  linkSync(a, join(layout, "blobs", "sha256", blob.digest.slice(7)));
  const config = Buffer.from("{}");
  writeFileSync(
    join(layout, "blobs", "sha256", "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"),
    config,
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        size: 2,
      },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: blob.digest, size: blob.size }],
    }),
  );
  const { sha256Hex } = await import("../src/core/digest.js");
  const md = sha256Hex(manifest);
  writeFileSync(join(layout, "blobs", "sha256", md), manifest);
  writeFileSync(join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: `sha256:${md}`,
          size: manifest.length,
        },
      ],
    }),
  );
  const s0 = performance.now();
  execFileSync(
    "skopeo",
    ["copy", "--quiet", "--dest-tls-verify=false", `oci:${layout}`, `docker://${reg.host}/bench/skopeo:1`],
    { stdio: "inherit" },
  );
  const skopeoSeconds = (performance.now() - s0) / 1000;

  const result = {
    volumeMiB: MIB,
    codec,
    layers: first.layers,
    packageBytes: statSync(a).size,
    firstPush: { sentBytes: first.uploadedBytes, seconds: first.seconds },
    secondPush: { sentBytes: second.uploadedBytes, seconds: second.seconds, existing: second.existing },
    secondOverFirst: second.uploadedBytes / first.uploadedBytes,
    pull: { bytes: pulled.size, seconds: pullSeconds },
    skopeoCopyOneBlobSeconds: skopeoSeconds,
    firstPushOverSkopeo: first.seconds / skopeoSeconds,
  };
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else
    process.stdout.write(
      `two volumes of ${MIB} MiB (${codec}), ${first.layers} layers, package ${(result.packageBytes / 2 ** 20).toFixed(1)} MiB\n` +
        `first push:  sent ${(first.uploadedBytes / 2 ** 20).toFixed(1)} MiB in ${first.seconds.toFixed(2)} s\n` +
        `second push (1 % of one volume changed): sent ${(second.uploadedBytes / 2 ** 20).toFixed(1)} MiB in ${second.seconds.toFixed(2)} s` +
        ` = ${(result.secondOverFirst * 100).toFixed(1)} % of the first\n` +
        `pull: ${(pulled.size / 2 ** 20).toFixed(1)} MiB in ${pullSeconds.toFixed(2)} s\n` +
        `skopeo copy of the same bytes as one blob: ${skopeoSeconds.toFixed(2)} s (first push / skopeo = ${result.firstPushOverSkopeo.toFixed(2)})\n`,
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
  await reg.stop();
}
