/**
 * Test helper: builds environment packages without Docker, straight with the package writer, so
 * that format and damage tests run in milliseconds. The volume member holds a small tar of a few
 * files, compressed with gzip (zstd needs no engine either, but gzip keeps it in-process).
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import { PackageTarWriter } from "../../src/core/archive/file-writer.js";
import {
  CHECKSUMS_MEMBER,
  METADATA_MEMBER,
  METADATA_RESERVED_BYTES,
  type PackageMetadata,
  renderChecksums,
} from "../../src/env/package-format.js";

async function volumeTar(): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: "./", type: "directory", mode: 0o755 });
  pack.entry({ name: "records.log", mode: 0o640, uid: 1000, gid: 1000 }, "1\thello\n2\tworld\n");
  pack.entry({ name: "empty/", type: "directory", mode: 0o700 });
  pack.entry({ name: "link", type: "symlink", linkname: "records.log" });
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Options to build damaged variants. */
export interface SyntheticOptions {
  formatVersion?: string;
  /** Extra member appended before checksums (e.g. an escaping path), listed in checksums. */
  extraMember?: { name: string; content: string };
  /** Leave checksums.sha256 out. */
  noChecksums?: boolean;
  /** Project name in metadata.json (default `synth`); import checks it against the repository's. */
  project?: string;
}

/** Writes a synthetic package to `path`; returns its metadata. */
export async function writeSyntheticPackage(
  path: string,
  options: SyntheticOptions = {},
): Promise<PackageMetadata> {
  const w = await PackageTarWriter.open(path);
  const r = await w.reserve(METADATA_MEMBER, METADATA_RESERVED_BYTES);
  const members = [];
  members.push(await w.addBuffer("environment/.env", Buffer.from("DB_NAME=demo\n")));
  members.push(await w.addBuffer("code/README.md", Buffer.from("# app\n")));
  members.push(await w.addSymlink("code/docs", "README.md"));
  const raw = await volumeTar();
  const gz = createGzip();
  const vol = await w.addStream("volumes/db.tar.gz", Readable.from([raw]).pipe(gz));
  members.push(vol);
  if (options.extraMember)
    members.push(await w.addBuffer(options.extraMember.name, Buffer.from(options.extraMember.content)));
  const metadata: PackageMetadata = {
    format: "dockpack-env-package",
    format_version: options.formatVersion ?? "1.0",
    dockpack_version: "0.1.0",
    created_at: "2026-01-01T00:00:00.000Z",
    project: options.project ?? "synth",
    branch: "feature/x",
    compose_project: "synth-feature-x",
    commit: null,
    dirty: false,
    include_code: true,
    environment_files: [".env"],
    code_files: 2,
    volumes: [
      {
        name: "db",
        source_volume: "synth-feature-x_db",
        member: "volumes/db.tar.gz",
        codec: "gzip",
        size: raw.length,
        compressed_size: vol.size,
        sha256: vol.sha256,
        tar_sha256: sha(raw),
      },
    ],
    members: members.length + 1,
  };
  const meta = await w.fill(r, Buffer.from(JSON.stringify(metadata, null, 2)));
  if (!options.noChecksums)
    await w.addBuffer(
      CHECKSUMS_MEMBER,
      Buffer.from(renderChecksums([meta, ...members].map((m) => ({ member: m.name, sha256: m.sha256 })))),
    );
  await w.finish();
  return metadata;
}
