/**
 * Streaming `packages import REF` (registry-import.ts): the package is rebuilt as a *skeleton*
 * file — every layer except the volumes' downloaded (verified by digest) into its place, the
 * volumes' tar headers written from the config, each volume's data left a hole (a sparse file:
 * no disk blocks, reads as zeros) — and each volume's bytes are streamed from the registry into
 * the import's restore when it gets there, each chunk verified by digest as it streams.
 *
 * So everything but the volume data is on disk (and verified by the package reader) before the
 * import changes anything, and no volume is ever held in memory or written to disk outside the
 * Docker volume it restores into.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DockpackError } from "../core/errors.js";
import { mapLimit, type OciRepository } from "../core/oci/client.js";
import type { Descriptor } from "../core/oci/media-types.js";
import type { RegistryPackageConfig } from "./registry-layout.js";

/** One volume segment of a skeleton: where its data lies in the package, and its layers in order. */
export interface StreamedVolume {
  member: string;
  /** Byte offset and size of the volume member's data in the package file. */
  offset: number;
  size: number;
  layers: Descriptor[];
}

/** What {@link writeSkeleton} wrote. */
export interface Skeleton {
  /** Volume segments left as holes, to be read with {@link volumeStream}. */
  volumes: StreamedVolume[];
  /** Bytes downloaded into the skeleton (the layers that are not volume data). */
  downloadedBytes: number;
}

/**
 * Where each segment of `config` lies in the package and which manifest layers it spans:
 * volume segments (those with a tar header in the config) and the others. Image segments whose
 * member is in `holes` are in neither (their bytes stay a hole: registry-images-import.ts).
 */
export function layoutSegments(
  config: RegistryPackageConfig,
  layers: Descriptor[],
  holes?: ReadonlySet<string>,
): { volumes: StreamedVolume[]; others: { offset: number; layer: Descriptor }[] } {
  const volumes: StreamedVolume[] = [];
  const others: { offset: number; layer: Descriptor }[] = [];
  let pos = 0;
  let li = 0;
  for (const s of config.segments) {
    if (s.header) pos += Buffer.from(s.header, "base64").length;
    const mine = layers.slice(li, li + (s.chunks ?? 1));
    li += mine.length;
    if (s.kind === "volume" && s.header)
      volumes.push({ member: s.member, offset: pos, size: s.size, layers: mine });
    else if (!(s.kind === "image" && s.header && holes?.has(s.member))) {
      let at = pos;
      for (const l of mine) {
        others.push({ offset: at, layer: l });
        at += l.size;
      }
    }
    pos += s.size + (s.padding ?? 0);
  }
  return { volumes, others };
}

/**
 * Writes the skeleton of a package into `file` (created, `package_size` bytes, sparse): the
 * volume tar headers from the config, and every layer that is not volume data downloaded into
 * its place (at most `concurrency` at once, each verified by digest and size as it streams).
 * @throws DockpackError `DIGEST_MISMATCH`, `OCI_*`; `file` is then incomplete (the caller removes it)
 */
export async function writeSkeleton(
  repo: OciRepository,
  config: RegistryPackageConfig,
  layers: Descriptor[],
  file: string,
  options: {
    concurrency?: number;
    onProgress?: (bytes: number) => void;
    /** Image members left as holes (the engine has their images: registry-images-import.ts). */
    holes?: ReadonlySet<string>;
  } = {},
): Promise<Skeleton> {
  const { volumes, others } = layoutSegments(config, layers, options.holes);
  const fh = await open(file, "w");
  try {
    await fh.truncate(config.package_size);
    let pos = 0;
    for (const s of config.segments) {
      if (s.header) {
        const header = Buffer.from(s.header, "base64");
        await fh.write(header, 0, header.length, pos);
        pos += header.length;
      }
      pos += s.size + (s.padding ?? 0);
    }
  } finally {
    await fh.close();
  }
  let downloadedBytes = 0;
  await mapLimit(others, options.concurrency ?? 3, async ({ offset, layer }) => {
    if (layer.size === 0) {
      await checkedBlob(repo, layer).toArray();
      return;
    }
    await pipeline(
      checkedBlob(repo, layer),
      new Transform({
        transform(c: Buffer, _e, cb) {
          downloadedBytes += c.length;
          options.onProgress?.(downloadedBytes);
          cb(null, c);
        },
      }),
      createWriteStream(file, { flags: "r+", start: offset }),
    );
  });
  return { volumes, downloadedBytes };
}

/**
 * One blob's bytes, verified as they stream: more bytes than `desc.size` fail at once, and the
 * end fails unless size and sha256 match (`DIGEST_MISMATCH`, `details.packageProblem` true, so
 * an import names it and rolls back).
 */
export function checkedBlob(repo: OciRepository, desc: Descriptor, opened?: Promise<Readable>): Readable {
  const where = `${repo.registry}/${repo.repository}`;
  const mismatch = (got: string, n: number) =>
    new DockpackError(
      "DIGEST_MISMATCH",
      `blob ${desc.digest} from ${where}: got ${got} (${n} bytes, expected ${desc.size})`,
      {
        hint: "The registry served corrupt data; nothing of it was kept. Retry or report it to the registry's operator.",
        details: { packageProblem: true, expected: desc.digest, actual: got, size: n },
      },
    );
  async function* bytes() {
    const body = await (opened ?? repo.openRaw(desc.digest));
    const hash = createHash("sha256");
    let n = 0;
    try {
      for await (const c of body as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > desc.size) throw mismatch("more bytes than the manifest says", n);
        hash.update(c);
        yield c;
      }
    } finally {
      body.destroy();
    }
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== desc.digest || n !== desc.size) throw mismatch(got, n);
  }
  return Readable.from(bytes(), { objectMode: false });
}

/** Layers of a volume whose requests are opened ahead of the one streaming. */
export const PREFETCH = 1;
/** Bytes passed on at once by {@link volumeStream}. */
const COALESCE = 1024 * 1024;

/**
 * The bytes of one volume member, streamed from its layers in order (each verified by
 * {@link checkedBlob}) and passed on in 1 MiB buffers; the requests of the next {@link PREFETCH} layers are opened while one
 * streams (their bodies wait under backpressure, in socket and stream buffers), so at most
 * `PREFETCH + 1` responses are open and memory stays bounded.
 */
export function volumeStream(repo: OciRepository, volume: StreamedVolume): Readable {
  async function* bytes() {
    const opens: (Promise<Readable> | undefined)[] = [];
    // the responses arrive in pieces of ~70 KiB; the restore behind (digest, zstd's stdin, the
    // engine) costs per piece, so they are passed on in 1 MiB buffers as a file read gives them
    let pending: Buffer[] = [];
    let held = 0;
    const flush = () => {
      const b = pending.length === 1 ? pending[0] : Buffer.concat(pending, held);
      pending = [];
      held = 0;
      return b;
    };
    const start = (i: number) => {
      if (i >= volume.layers.length || opens[i]) return;
      const p = repo.openRaw(volume.layers[i].digest);
      p.catch(() => undefined);
      opens[i] = p;
    };
    try {
      for (let i = 0; i < volume.layers.length; i++) {
        for (let k = i; k <= i + PREFETCH; k++) start(k);
        const opened = opens[i] as Promise<Readable>;
        opens[i] = undefined;
        for await (const c of checkedBlob(repo, volume.layers[i], opened)) {
          pending.push(c as Buffer);
          held += (c as Buffer).length;
          if (held >= COALESCE) yield flush();
        }
      }
      if (held > 0) yield flush();
    } finally {
      for (const p of opens)
        p?.then(
          (b) => b.destroy(),
          () => undefined,
        );
    }
  }
  return Readable.from(bytes(), { objectMode: false, highWaterMark: 1024 * 1024 });
}
