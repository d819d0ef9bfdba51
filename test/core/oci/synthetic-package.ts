/**
 * Test helper: environment packages with two volumes of given content, written straight with the
 * package writer (no Docker), so registry tests run in seconds. Each volume member is the gzip
 * (or zstd as export writes it, or plain) of a tar holding one file `data.bin`; the same content gives the same member bytes.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { PackageTarWriter } from "../../../src/core/archive/file-writer.js";
import {
  CHECKSUMS_MEMBER,
  METADATA_MEMBER,
  METADATA_RESERVED_BYTES,
  type PackageMetadata,
  renderChecksums,
} from "../../../src/env/package-format.js";

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function volumeTar(data: Buffer): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: "./", type: "directory", mode: 0o755, mtime: new Date(0) });
  pack.entry({ name: "data.bin", mode: 0o644, mtime: new Date(0) }, data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Writes a package at `path` with volumes `db` and `cache` holding `volumes.db` / `volumes.cache`. */
export async function writeTwoVolumePackage(
  path: string,
  volumes: { db: Buffer; cache: Buffer },
  options: { mtime?: number; env?: string; branch?: string; codec?: "gzip" | "zstd" | "none" } = {},
): Promise<PackageMetadata> {
  const w = await PackageTarWriter.open(path, options.mtime ?? 1_700_000_000);
  const r = await w.reserve(METADATA_MEMBER, METADATA_RESERVED_BYTES);
  const members = [];
  members.push(await w.addBuffer("environment/.env", Buffer.from(options.env ?? "DB_NAME=demo\n")));
  members.push(await w.addBuffer("code/README.md", Buffer.from("# app\n")));
  const vols = [];
  for (const name of ["db", "cache"] as const) {
    const raw = await volumeTar(volumes[name]);
    const codec = options.codec ?? "gzip";
    // zstd as export writes it (core/codec compressStream: zstd -c -q -T0 -3)
    const gz =
      codec === "gzip"
        ? gzipSync(raw)
        : codec === "zstd"
          ? execFileSync("zstd", ["-c", "-q", "-T0", "-3"], { input: raw, maxBuffer: 2 ** 31 })
          : raw;
    const member = `volumes/${name}.tar${{ gzip: ".gz", zstd: ".zst", none: "" }[codec]}`;
    const m = await w.addBuffer(member, gz);
    members.push(m);
    vols.push({
      name,
      source_volume: `synth-main_${name}`,
      member,
      codec,
      size: raw.length,
      compressed_size: gz.length,
      sha256: m.sha256,
      tar_sha256: sha(raw),
    });
  }
  const metadata: PackageMetadata = {
    format: "dockpack-env-package",
    format_version: "1.0",
    dockpack_version: "0.1.0",
    created_at: new Date((options.mtime ?? 1_700_000_000) * 1000).toISOString(),
    project: "synth",
    branch: options.branch ?? "main",
    compose_project: "synth-main",
    commit: null,
    dirty: false,
    include_code: true,
    environment_files: [".env"],
    code_files: 1,
    volumes: vols,
    members: members.length + 1,
  };
  const meta = await w.fill(r, Buffer.from(JSON.stringify(metadata, null, 2)));
  await w.addBuffer(
    CHECKSUMS_MEMBER,
    Buffer.from(renderChecksums([meta, ...members].map((m) => ({ member: m.name, sha256: m.sha256 })))),
  );
  await w.finish();
  return metadata;
}
