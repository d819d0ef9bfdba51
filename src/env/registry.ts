/**
 * Environment packages through an OCI registry: push a package file as one artifact manifest,
 * pull it back to the identical file, list what a repository holds. Layout: registry-layout.ts;
 * docs: docs/commands/registry.md.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DigestStream, sha256Hex } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import { CDC_ALGORITHM, type CdcParams, DEFAULT_CDC } from "../core/oci/cdc.js";
import { fileRange, mapLimit, type OciRepository, openRepository } from "../core/oci/client.js";
import { type Descriptor, type ImageManifest, OCI_MANIFEST } from "../core/oci/media-types.js";
import { formatReference, referenceTarget } from "../core/oci/reference.js";
import type { RegistryOptions } from "../core/oci/transport.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { PACKAGE_EXTENSION } from "./package-format.js";
import { requireValidPackage } from "./package-reader.js";
import { isImageTag, type PushedImages, pushPackageImages } from "./registry-images.js";
import {
  chunkSegments,
  ENV_ARTIFACT_TYPE,
  ENV_CHUNK_MEDIA_TYPE,
  ENV_CONFIG_MEDIA_TYPE,
  ENV_ENCRYPTED_VOLUME_MEDIA_TYPES,
  ENV_IMAGE_MEDIA_TYPE,
  ENV_SEGMENT_MEDIA_TYPE,
  ENV_VOLUME_MEDIA_TYPES,
  type RegistryPackageConfig,
  registryPackageConfigSchema,
  scanSegments,
} from "./registry-layout.js";
import { signPackageManifest, verifyPackageSignature } from "./registry-sign.js";

/** Options of {@link pushPackage}. */
export interface PushPackageOptions extends RegistryOptions {
  /** The package file. */
  package: string;
  /** Target reference, e.g. `ghcr.io/acme/shop-env:main`. */
  reference: string;
  /** Blobs uploaded in parallel (default 3). */
  concurrency?: number;
  /** PATCH chunk size for big blobs (bytes, default 16 MiB). */
  chunkSize?: number;
  /** SSH private key: attach an SSH signature of the manifest as a referrer (registry-sign.ts). */
  sign?: string;
  /** Content-defined chunk bounds (bytes; default 256 KiB / 1 MiB / 4 MiB). */
  cdc?: CdcParams;
  /** Also push the package's images as ordinary images next to it (default true; registry-images.ts). */
  images?: boolean;
}

/** Result of {@link pushPackage}. */
export interface PushPackageResult {
  reference: string;
  /** `sha256:<hex>` of the manifest. */
  digest: string;
  /** Total bytes of the package's blobs (config + layers). */
  totalBytes: number;
  /** Bytes actually sent (blobs the registry lacked). */
  uploadedBytes: number;
  /** Blobs skipped because the registry had them (HEAD hit), and mounted ones. */
  existing: number;
  layers: number;
  /** Digest of the signature artifact, with `sign`. */
  signature?: string;
  /** The package's images pushed as ordinary images (registry-images.ts); absent without images. */
  images?: PushedImages;
  seconds: number;
}

/**
 * Pushes a package file as an OCI artifact: verifies it with the package reader, uploads each
 * segment the registry lacks, then the config and finally the manifest under the tag — so an
 * interrupted push never leaves a tag pointing at missing blobs. Rerunning resumes chunked uploads.
 * @throws DockpackError the reader's `PACKAGE_*` codes (nothing is sent), `OCI_*`.
 */
export async function pushPackage(
  options: PushPackageOptions,
  reporter: Reporter = silentReporter(),
): Promise<PushPackageResult> {
  const t0 = Date.now();
  const file = resolve(options.package);
  const { metadata } = await requireValidPackage(file, reporter);
  const segments = await scanSegments(file);
  const cdc = options.cdc ?? DEFAULT_CDC;
  const packageSha = await chunkSegments(file, segments, cdc);
  const { repo, ref } = await openRepository(options.reference, { ...options, reporter });
  if (!ref.tag && !ref.digest)
    throw new DockpackError("OCI_REFERENCE_INVALID", "push needs a tag", { usage: true });
  try {
    const images =
      options.images !== false && metadata.images?.length
        ? await pushPackageImages(repo, ref, file, metadata, options, reporter)
        : undefined;
    const chunked = segments.some((s) => (s.chunks?.length ?? 1) > 1);
    const config: RegistryPackageConfig = {
      format: "dockpack-env-package-oci",
      format_version: chunked ? "1.1" : "1.0",
      file_name: basename(file),
      package_size: (await stat(file)).size,
      package_sha256: packageSha,
      metadata: metadata as unknown as Record<string, unknown>,
      segments: segments.map((s) => ({
        kind: s.kind,
        member: s.member,
        size: s.end - s.start,
        ...(s.header ? { header: s.header.toString("base64"), padding: s.padding ?? 0 } : {}),
        ...((s.chunks?.length ?? 1) > 1 ? { chunks: s.chunks?.length } : {}),
      })),
      ...(chunked ? { chunking: { algorithm: CDC_ALGORITHM, ...cdc } } : {}),
      ...(images?.images.length ? { images: images.images } : {}),
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDesc: Descriptor = {
      mediaType: ENV_CONFIG_MEDIA_TYPE,
      digest: `sha256:${sha256Hex(configBytes)}`,
      size: configBytes.length,
    };
    // --encrypt-all: the volume members are age files (registry-layout.ts)
    const sealed = metadata.encryption?.all === true;
    const parts = segments.flatMap((s) => {
      const vol = metadata.volumes.find((v) => v.member === s.member);
      const chunks = s.chunks ?? [];
      const title = s.kind === "volume" || s.kind === "image" ? s.member : s.kind;
      return chunks.map((c, k) => ({
        c,
        d: {
          mediaType:
            chunks.length > 1
              ? ENV_CHUNK_MEDIA_TYPE
              : s.kind === "volume" && vol
                ? (sealed ? ENV_ENCRYPTED_VOLUME_MEDIA_TYPES : ENV_VOLUME_MEDIA_TYPES)[vol.codec]
                : s.kind === "image"
                  ? ENV_IMAGE_MEDIA_TYPE
                  : ENV_SEGMENT_MEDIA_TYPE,
          digest: c.digest,
          size: c.end - c.start,
          annotations: {
            "org.opencontainers.image.title": chunks.length > 1 ? `${title}.${k}` : title,
            ...(vol ? { "dev.dockpack.volume": vol.name } : {}),
            ...(vol && sealed ? { "dev.dockpack.encryption": "age" } : {}),
            ...(chunks.length > 1 ? { "dev.dockpack.chunk": `${k + 1}/${chunks.length}` } : {}),
          },
        } satisfies Descriptor,
      }));
    });
    const layers = parts.map((p) => p.d);
    let uploadedBytes = 0;
    let existing = 0;
    const total = layers.reduce((n, l) => n + l.size, 0) + configBytes.length;
    const bar = reporter.progress(`push ${formatReference(ref)}`, total);
    let done = 0;
    const seen = new Set<string>();
    await mapLimit(parts, options.concurrency ?? 3, async ({ c, d }) => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      const r = await repo.pushBlob(d.digest, d.size, {
        open: fileRange(file, c.start, c.end),
        chunkSize: options.chunkSize,
      });
      if (r.how === "uploaded") uploadedBytes += r.sent;
      else existing++;
      done += d.size;
      bar.update(done);
    });
    const c = await repo.pushBlob(configDesc.digest, configDesc.size, {
      open: (from) => Readable.from([configBytes.subarray(from)]),
    });
    if (c.how === "uploaded") uploadedBytes += c.sent;
    bar.stop();
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: ENV_ARTIFACT_TYPE,
      config: configDesc,
      layers,
      annotations: {
        "org.opencontainers.image.created": metadata.created_at,
        "org.opencontainers.image.title": basename(file),
        "dev.dockpack.project": metadata.project,
        "dev.dockpack.branch": metadata.branch,
        ...(metadata.commit ? { "org.opencontainers.image.revision": metadata.commit } : {}),
        ...(images?.images.length
          ? { "dev.dockpack.images": images.images.map((i) => i.tag ?? i.manifest).join(",") }
          : {}),
      },
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const { digest } = await repo.putManifest(referenceTarget(ref), manifestBytes, OCI_MANIFEST);
    const signature = options.sign ? await signPackageManifest(repo, manifestBytes, options.sign) : undefined;
    reporter.info(`pushed ${formatReference(ref)}@${digest}: sent ${uploadedBytes} of ${total} bytes`);
    return {
      reference: formatReference(ref),
      digest,
      totalBytes: total,
      uploadedBytes,
      existing,
      layers: layers.length,
      ...(signature ? { signature } : {}),
      ...(images ? { images } : {}),
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    await repo.transport.close();
  }
}

/** A package manifest and its config, read from a registry. */
export interface RemotePackage {
  repo: OciRepository;
  digest: string;
  /** The manifest's exact bytes. */
  bytes: Buffer;
  manifest: ImageManifest;
  config: RegistryPackageConfig;
}

/**
 * Reads a package artifact's manifest and config (checked against the schema and against the
 * manifest: each segment's layers (its chunks) add up to its size, every layer used once).
 * @throws DockpackError `OCI_NOT_A_PACKAGE` for another kind of artifact, `OCI_*`.
 */
export async function readRemotePackage(repo: OciRepository, target: string): Promise<RemotePackage> {
  const m = await repo.getManifest(target);
  const manifest = m.json as unknown as ImageManifest;
  const where = `${repo.registry}/${repo.repository}:${target}`;
  if (manifest.artifactType !== ENV_ARTIFACT_TYPE || manifest.config?.mediaType !== ENV_CONFIG_MEDIA_TYPE)
    throw new DockpackError(
      "OCI_NOT_A_PACKAGE",
      `${where} is not a dockpack environment package (artifactType ${manifest.artifactType ?? manifest.config?.mediaType ?? "none"})`,
      {
        hint: "Pass a reference pushed with 'dockpack packages push'.",
      },
    );
  if (manifest.config.size > 16 * 1024 * 1024)
    throw new DockpackError("OCI_NOT_A_PACKAGE", `${where}: config blob too large`);
  const chunks: Buffer[] = [];
  for await (const c of await repo.openBlob(manifest.config.digest)) chunks.push(c as Buffer);
  const parsed = registryPackageConfigSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString("utf8")));
  if (!parsed.success)
    throw new DockpackError("OCI_NOT_A_PACKAGE", `${where}: config blob is invalid: ${parsed.error.message}`);
  const config = parsed.data;
  const layers = manifest.layers ?? [];
  let li = 0;
  for (const s of config.segments) {
    let sum = 0;
    for (let k = 0; k < (s.chunks ?? 1); k++) sum += layers[li++]?.size ?? Number.NaN;
    if (sum !== s.size || li > layers.length) {
      li = Number.NaN;
      break;
    }
  }
  if (li !== layers.length)
    throw new DockpackError("OCI_NOT_A_PACKAGE", `${where}: layers and config segments disagree`);
  let size = 0;
  for (const s of config.segments)
    size += s.size + (s.header ? Buffer.from(s.header, "base64").length : 0) + (s.padding ?? 0);
  if (size !== config.package_size)
    throw new DockpackError("OCI_NOT_A_PACKAGE", `${where}: segments do not add up to the package size`);
  return { repo, digest: m.digest, bytes: m.bytes, manifest, config };
}

/** Options of {@link pullPackage}. */
export interface PullPackageOptions extends RegistryOptions {
  reference: string;
  /** Folder to write the package into (default `./packages`). */
  outputDir?: string;
  concurrency?: number;
  /** SSH public key: refuse the package unless a signature referrer verifies with it. */
  verifyKey?: string;
}

/** Result of {@link pullPackage}. */
export interface PullPackageResult {
  reference: string;
  digest: string;
  /** Path of the package file written. */
  package: string;
  size: number;
  downloadedBytes: number;
  seconds: number;
}

/**
 * Pulls a package artifact back into the identical package file: downloads each layer (verified
 * by digest; partial downloads in `<outputDir>/.dockpack-pull-<digest>/` are resumed by a rerun),
 * reassembles the tar, checks its sha256 against the pushed package's, runs the package reader,
 * and only then renames it into place.
 * @throws DockpackError `DIGEST_MISMATCH`, `OCI_NOT_A_PACKAGE`, `PACKAGE_*`, `FS_EXISTS`, `OCI_*`.
 */
export async function pullPackage(
  options: PullPackageOptions,
  reporter: Reporter = silentReporter(),
): Promise<PullPackageResult> {
  const t0 = Date.now();
  const { repo, ref } = await openRepository(options.reference, { ...options, reporter });
  try {
    const remote = await readRemotePackage(repo, referenceTarget(ref));
    const { config, manifest } = remote;
    if (options.verifyKey)
      await verifyPackageSignature(repo, remote.bytes, options.verifyKey, formatReference(ref));
    let name = config.file_name;
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name) || !name.endsWith(PACKAGE_EXTENSION))
      name = `${remote.digest.slice(7, 23)}${PACKAGE_EXTENSION}`;
    const outDir = resolve(options.outputDir ?? "packages");
    const out = join(outDir, name);
    try {
      await stat(out);
      throw new DockpackError("FS_EXISTS", `${out} already exists`, {
        hint: "Remove it or pull into another folder (-o DIR).",
      });
    } catch (e) {
      if ((e as DockpackError).code === "FS_EXISTS") throw e;
    }
    const work = join(outDir, `.dockpack-pull-${remote.digest.slice(7, 23)}`);
    await mkdir(work, { recursive: true });
    const total = manifest.layers.reduce((n, l) => n + l.size, 0);
    const bar = reporter.progress(`pull ${formatReference(ref)}`, total);
    const progress = new Map<string, number>();
    let downloadedBytes = 0;
    const unique = [...new Map(manifest.layers.map((l) => [l.digest, l])).values()];
    await mapLimit(unique, options.concurrency ?? 3, async (l) => {
      const path = join(work, l.digest.slice(7));
      const before = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      await repo.downloadBlob(l, path, (n) => {
        progress.set(l.digest, n);
        bar.update([...progress.values()].reduce((a, b) => a + b, 0));
      });
      downloadedBytes += l.size - Math.min(before, l.size);
    });
    bar.stop();
    const assembled = join(work, "package.tar");
    const digest = new DigestStream();
    const sink = createWriteStream(assembled);
    const parts = async function* () {
      let li = 0;
      for (const s of config.segments) {
        if (s.header) yield Buffer.from(s.header, "base64");
        for (let k = 0; k < (s.chunks ?? 1); k++)
          for await (const c of createReadStream(join(work, manifest.layers[li++].digest.slice(7)), {
            highWaterMark: 1024 * 1024,
          }))
            yield c as Buffer;
        if (s.padding) yield Buffer.alloc(s.padding);
      }
    };
    await pipeline(parts, digest, sink);
    if (digest.digest !== config.package_sha256) {
      await rm(work, { recursive: true, force: true });
      throw new DockpackError(
        "DIGEST_MISMATCH",
        `${formatReference(ref)}: the reassembled package is ${digest.digest}, the config says ${config.package_sha256}`,
        {
          hint: "The artifact is inconsistent; nothing was written. Push the package again.",
        },
      );
    }
    try {
      await requireValidPackage(assembled, reporter);
    } catch (e) {
      await rm(work, { recursive: true, force: true });
      throw e;
    }
    await rename(assembled, out);
    await rm(work, { recursive: true, force: true });
    return {
      reference: formatReference(ref),
      digest: remote.digest,
      package: out,
      size: digest.size,
      downloadedBytes,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    await repo.transport.close();
  }
}

/** One tag of {@link listRemotePackages}. */
export interface RemotePackageRow {
  tag: string;
  digest?: string;
  project?: string;
  branch?: string;
  created_at?: string;
  volumes?: string[];
  size?: number;
  /** Set when the tag is not a readable package. */
  error?: { code: string; message: string };
}

/** Lists the tags of a repository with each package's metadata (manifest + config only). */
export async function listRemotePackages(
  options: RegistryOptions & { repository: string },
): Promise<{ repository: string; packages: RemotePackageRow[] }> {
  const { repo, ref } = await openRepository(options.repository, options);
  try {
    const all = await repo.listTags();
    const names = new Set(all);
    const tags = all.filter((t) => !/^sha256-[a-f0-9]{64}$/.test(t) && !isImageTag(t, names)).sort();
    const rows = await mapLimit(tags, 4, async (tag): Promise<RemotePackageRow> => {
      try {
        const r = await readRemotePackage(repo, tag);
        const m = r.config.metadata as {
          project?: string;
          branch?: string;
          created_at?: string;
          volumes?: { name: string }[];
        };
        return {
          tag,
          digest: r.digest,
          project: m.project,
          branch: m.branch,
          created_at: m.created_at,
          volumes: (m.volumes ?? []).map((v) => v.name),
          size: r.config.package_size,
        };
      } catch (e) {
        const err = e as DockpackError;
        return { tag, error: { code: err.code ?? "ERROR", message: err.message } };
      }
    });
    return { repository: `${ref.registry}/${ref.repository}`, packages: rows };
  } finally {
    await repo.transport.close();
  }
}
