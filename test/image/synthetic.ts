/**
 * Test helper: synthetic images built in-process (no engine): layer tars from file lists, a
 * config with labels/env/entrypoint, written by src/image/write.ts in any layout.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import tar from "tar-stream";
import { type ArchiveLayout, writeImageTar } from "../../src/image/write.js";

/** A file in a synthetic layer: literal content, or `size` pseudo-random bytes from `seed`. */
export interface SynthFile {
  path: string;
  content?: string | Buffer;
  size?: number;
  seed?: number;
}

/** Deterministic pseudo-random bytes (xorshift), compressible only a little. */
export function pseudoRandom(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** Builds an uncompressed layer tar in memory (small test layers only). */
export async function makeLayer(files: SynthFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on("end", () => r()));
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!dirs.has(d)) {
        dirs.add(d);
        pack.entry({ name: `${d}/`, type: "directory", mode: 0o755, mtime: new Date(0) });
      }
    }
    const body = f.content !== undefined ? Buffer.from(f.content) : pseudoRandom(f.size ?? 0, f.seed ?? 1);
    pack.entry({ name: f.path, mode: 0o644, mtime: new Date(0) }, body);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** `sha256:<hex>` of a buffer. */
export function sha(b: Buffer | string): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

/** A synthetic image: config bytes and layer tars. */
export interface SynthImage {
  config: Buffer;
  id: string;
  layers: Buffer[];
  tags: string[];
}

/** Builds an image from layer tars; the config carries labels, env, entrypoint and history. */
export function makeImage(layers: Buffer[], tags: string[], label = "v1"): SynthImage {
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      created: "2024-01-01T00:00:00Z",
      config: {
        Env: ["PATH=/usr/bin:/bin", `APP_VERSION=${label}`],
        Entrypoint: ["/bin/app", "--serve"],
        Labels: { "org.example.version": label, "org.example.name": "synthetic" },
        WorkingDir: "/srv",
      },
      rootfs: { type: "layers", diff_ids: layers.map((l) => sha(l)) },
      history: layers.map((_, i) => ({ created: "2024-01-01T00:00:00Z", created_by: `step ${i}` })),
    }),
  );
  return { config, id: sha(config), layers, tags };
}

/** Writes a synthetic image to `file` in `layout`. */
export async function writeSynth(
  image: SynthImage,
  file: string,
  layout: ArchiveLayout = "docker-archive",
): Promise<void> {
  await writeImageTar(
    {
      config: image.config,
      repoTags: image.tags,
      layers: image.layers.map((l) => ({
        diffId: sha(l),
        size: l.length,
        open: async () => Readable.from([l]),
      })),
    },
    createWriteStream(file),
    layout,
  );
}

/** A pair of versions: v2 keeps the base layer, changes a few files of the app layer, adds a layer, keeps an empty layer. */
export async function versionPair(tag: string): Promise<{ v1: SynthImage; v2: SynthImage }> {
  const base = await makeLayer([
    { path: "bin/app", size: 40_000, seed: 1 },
    { path: "etc/os-release", content: "ID=synthetic\n" },
    { path: "usr/lib/libbig.so", size: 120_000, seed: 2 },
  ]);
  const appFiles = (ver: number): SynthFile[] =>
    Array.from({ length: 20 }, (_, i) => ({
      path: `srv/app/module${i}.js`,
      size: 8_000,
      seed: i === 3 || i === 7 ? 1000 + ver * 10 + i : 100 + i,
    }));
  const empty = await makeLayer([]);
  const app1 = await makeLayer(appFiles(1));
  const app2 = await makeLayer(appFiles(2));
  const extra = await makeLayer([{ path: "srv/data/new.bin", size: 30_000, seed: 77 }]);
  return {
    v1: makeImage([base, app1, empty], [`${tag}:1`], "v1"),
    v2: makeImage([base, app2, empty, extra], [`${tag}:2`], "v2"),
  };
}
