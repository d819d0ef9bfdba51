/**
 * `packages import REF`, streaming: the manifest and config are read (and `--verify-key`
 * checked) first; every layer but the volumes' data is downloaded, verified by digest, into a
 * sparse skeleton of the package in a temporary folder (registry-stream.ts); the ordinary import
 * (import.ts) then verifies the skeleton with the package reader — so everything that can be
 * refused is refused before anything changes — and restores each volume straight from the
 * registry in the same one pass that checks it: its chunks stream in order, each verified by
 * digest as it streams, the member's sha256 and its tar checked as for a file. A corrupt chunk
 * fails the import with `DIGEST_MISMATCH` and the import's journal rolls everything back. The
 * temporary folder is removed afterwards (after kill -9: by the next dockpack run).
 */
import { createReadStream } from "node:fs";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { DockpackError } from "../core/errors.js";
import { ensureFreeSpace, makeTempDir, removeTempDir } from "../core/fs.js";
import { openRepository } from "../core/oci/client.js";
import { formatReference, referenceTarget } from "../core/oci/reference.js";
import type { RegistryOptions } from "../core/oci/transport.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { type ImportOptions, type ImportResult, importPackage } from "./import.js";
import { PACKAGE_EXTENSION } from "./package-format.js";
import { readRemotePackage } from "./registry.js";
import type { RegistryImageLoad } from "./registry-images.js";
import { withRegistryImages } from "./registry-images-import.js";
import { verifyPackageSignature } from "./registry-sign.js";
import { type StreamedVolume, volumeStream, writeSkeleton } from "./registry-stream.js";

export { isRegistryReference } from "./registry-reference.js";

/** What {@link importFromRegistry} fetched. */
export interface RegistryImportFetch {
  reference: string;
  /** Manifest digest of the package artifact. */
  digest: string;
  /** Size of the package in bytes (as exported). */
  size: number;
  /** Bytes fetched: the skeleton's layers plus the volume bytes streamed into the restore. */
  downloadedBytes: number;
  /** Of these, bytes written to the temporary skeleton (everything but volume data). */
  skeletonBytes: number;
  seconds: number;
}

/**
 * Imports a package straight from a registry reference, streaming (see the module docs). Images
 * the artifact references are loaded from the registry first (registry-images-import.ts).
 * @throws DockpackError as {@link importPackage}; `OCI_*`, `OCI_NOT_A_PACKAGE`;
 *   `PACKAGE_SIGNATURE_MISSING`/`_INVALID` (with `verifyKey`, before anything is downloaded);
 *   `DIGEST_MISMATCH` (a layer not matching its digest: before anything changed, or while a
 *   volume streams, then after the rollback); `NO_SPACE` (temporary space for the skeleton)
 */
export async function importFromRegistry(
  options: Omit<ImportOptions, "package" | "volumeSource"> &
    RegistryOptions & { reference: string; verifyKey?: string; concurrency?: number },
  reporter: Reporter = silentReporter(),
): Promise<ImportResult & { pulled: RegistryImportFetch; registryImages?: RegistryImageLoad[] }> {
  return withRegistryImages(options, reporter, (present) => importStreaming(options, reporter, present));
}

async function importStreaming(
  options: Omit<ImportOptions, "package" | "volumeSource"> &
    RegistryOptions & { reference: string; verifyKey?: string; concurrency?: number },
  reporter: Reporter,
  present: ReadonlySet<string> = new Set(),
): Promise<ImportResult & { pulled: RegistryImportFetch }> {
  const t0 = Date.now();
  const { repo, ref } = await openRepository(options.reference, { ...options, reporter });
  let dir: string | undefined;
  try {
    const remote = await readRemotePackage(repo, referenceTarget(ref));
    const { config, manifest } = remote;
    const shown = formatReference(ref);
    if (options.verifyKey) await verifyPackageSignature(repo, remote.bytes, options.verifyKey, shown);
    dir = await makeTempDir("dockpack-pull-");
    let name = config.file_name;
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name) || !name.endsWith(PACKAGE_EXTENSION))
      name = `${remote.digest.slice(7, 23)}${PACKAGE_EXTENSION}`;
    const file = join(dir, name);
    // the image members of images the engine has (loaded from the registry) stay holes
    const holes = new Set(
      ((config.metadata as { images?: { member: string; id: string }[] }).images ?? [])
        .filter((i) => present.has(i.id))
        .map((i) => i.member),
    );
    const volumeBytes = config.segments.reduce(
      (n, s) =>
        n + ((s.kind === "volume" || (s.kind === "image" && holes.has(s.member))) && s.header ? s.size : 0),
      0,
    );
    await ensureFreeSpace(dir, config.package_size - volumeBytes, `the package ${shown} without its volumes`);
    const bar = reporter.progress(`fetch ${shown}`, config.package_size - volumeBytes);
    const skeleton = await writeSkeleton(repo, config, manifest.layers, file, {
      concurrency: options.concurrency,
      onProgress: (n) => bar.update(n),
      holes,
    }).finally(() => bar.stop());
    let streamed = 0;
    const volumeSource = (member: string, at: { offset: number; size: number }): Readable => {
      const v = skeleton.volumes.find((x) => x.offset === at.offset && x.size === at.size);
      if (v) return counted(volumeStream(repo, v), (n) => (streamed += n));
      if (!skeleton.volumes.some((x) => overlaps(x, at)))
        return at.size > 0
          ? createReadStream(file, { start: at.offset, end: at.offset + at.size - 1 })
          : Readable.from([]);
      throw new DockpackError(
        "OCI_NOT_A_PACKAGE",
        `${shown}: volume member ${member} does not match the artifact's volume layers`,
        { hint: "The artifact is inconsistent; push the package again.", details: { packageProblem: true } },
      );
    };
    const res = await importPackage(
      { ...options, package: file, volumeSource, imagesElsewhere: present },
      reporter,
    );
    return {
      ...res,
      pulled: {
        reference: shown,
        digest: remote.digest,
        size: config.package_size,
        downloadedBytes: skeleton.downloadedBytes + streamed,
        skeletonBytes: skeleton.downloadedBytes,
        seconds: (Date.now() - t0) / 1000,
      },
    };
  } finally {
    if (dir) await removeTempDir(dir);
    await repo.transport.close();
  }
}

function overlaps(v: StreamedVolume, at: { offset: number; size: number }): boolean {
  return v.offset < at.offset + at.size && at.offset < v.offset + v.size;
}

/** Passes `src` through, reporting each piece's length. */
function counted(src: Readable, onBytes: (n: number) => void): Readable {
  const t = new Transform({
    highWaterMark: 1024 * 1024,
    transform(c: Buffer, _e, cb) {
      onBytes(c.length);
      cb(null, c);
    },
  });
  src.on("error", (e) => t.destroy(e));
  // destroyed by the reader (a refusal, Ctrl-C): the registry responses are let go too
  t.on("close", () => src.destroy());
  return src.pipe(t);
}
