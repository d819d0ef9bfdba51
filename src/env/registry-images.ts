/**
 * The images of an environment package through a registry (issue 16): when a package with an
 * image section is pushed (`packages push`, `export --images --push`), each of its images is also
 * pushed as an ordinary OCI image into the same repository, tagged `<tag>-image-<n>` (n: its
 * place in the section), and the package artifact's config lists them ({@link RegistryImageRef}:
 * manifest digest, tag, image ID, services). Any client reads them: `skopeo inspect`,
 * `docker pull REPO:<tag>-image-0`, `crane`, `oras`.
 *
 * Layout of each image (OCI image-spec 1.1 manifest): the config blob is the image's exact config
 * (`application/vnd.oci.image.config.v1+json`; its digest is the image ID, so a `docker pull` gives
 * the same ID), layers uncompressed (`application/vnd.oci.image.layer.v1.tar`; each layer's digest
 * is its diff_id). Uncompressed layers cost registry bytes but make every layer blob a pure
 * function of its diff_id: a push skips a layer the registry has with one HEAD and no local work,
 * and the receiver compares diff_ids without downloading anything.
 *
 * Where the layer bytes come from on push: the pushing engine when it has the image (by ID); else
 * the image is rebuilt from the package's delta member (`delta apply` into a temporary
 * docker-archive, bases from the images before it and the engine); an image neither can give
 * (a `missing-from` package whose bases only the receiver has) is not pushed, with a warning,
 * and the package still carries it as a delta.
 *
 * Receiving ({@link loadRegistryImages}, run by `packages import REF` before the import): for each
 * listed image the engine lacks (by ID), the manifest (by digest) and config are fetched, the
 * config checked against the image ID, the layers whose chain ID the engine already has (any of
 * its images) are left out, the others downloaded (each verified against its digest — its diff_id
 * — or, for a gzip layer someone else pushed, decompressed and checked against its diff_id), and a
 * docker-archive is streamed into `docker load` without the layers the engine has (`docker load`
 * skips a layer whose chain ID it has without opening it). The engine must then report the image
 * ID; the import tags it as the compose project expects, as for the package's own image section.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import { z } from "zod";
import { sha256Hex, verifyingStream } from "../core/digest.js";
import { loadImage } from "../core/docker/images.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { makeTempDir, removeTempDir } from "../core/fs.js";
import { fileRange, type OciRepository } from "../core/oci/client.js";
import { type Descriptor, type ImageManifest, OCI_CONFIG, OCI_MANIFEST } from "../core/oci/media-types.js";
import type { OciReference } from "../core/oci/reference.js";
import type { Reporter } from "../core/output.js";
import { applyDelta } from "../delta/apply.js";
import { engineInventory } from "../delta/inventory.js";
import { openImage } from "../image/open.js";
import type { PackageMetadata } from "./package-format.js";
import { engineHas, extractImageMembers } from "./package-images-load.js";

/** Media type of the uncompressed layers dockpack pushes. */
export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
const PLAIN_LAYERS = new Set([OCI_LAYER_TAR, "application/vnd.docker.image.rootfs.diff.tar"]);
const GZIP_LAYERS = new Set([
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
]);

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/);

/** One image of a package artifact's config (`images`): an ordinary image next to the artifact. */
export const registryImageSchema = z.object({
  /** Image ID (`sha256:` of the config): equals the package section's image ID. */
  id: digest,
  /** Digest of the image manifest in the same repository. */
  manifest: digest,
  /** Tag it was pushed under (`<tag>-image-<n>`); absent when the package was pushed by digest. */
  tag: z.string().max(128).optional(),
  /** Sum of the layer sizes (bytes, uncompressed). */
  size: z.number().int().nonnegative(),
  /** The compose services that run it (as in metadata.json's image section). */
  services: z.array(z.object({ service: z.string(), image: z.string().optional() })).max(10_000),
});
/** See {@link registryImageSchema}. */
export type RegistryImageRef = z.infer<typeof registryImageSchema>;

/**
 * Tag of image `n` of a package pushed under `tag`: `<tag>-image-<n>`, the package tag shortened
 * so the whole fits the distribution spec's 128 characters.
 */
export function imageTag(tag: string, n: number): string {
  const suffix = `-image-${n}`;
  return `${tag.slice(0, 128 - suffix.length)}${suffix}`;
}

/** True when `tag` is the image tag of a package tag in `tags` (`packages list` hides those). */
export function isImageTag(tag: string, tags: Set<string>): boolean {
  const m = /^(.+)-image-\d+$/.exec(tag);
  return m !== null && [...tags].some((t) => t !== tag && imageTagPrefix(t) === m[1]);
}

function imageTagPrefix(tag: string): string {
  return imageTag(tag, 0).slice(0, -"-image-0".length);
}

/** Result of {@link pushPackageImages}. */
export interface PushedImages {
  images: RegistryImageRef[];
  /** Images not pushed (their bytes were not at hand), with why. */
  skipped: { id: string; reason: string }[];
  uploadedBytes: number;
  /** Blobs the registry had already (HEAD hit). */
  existing: number;
}

/**
 * Pushes the images of `metadata`'s image section (package `file`) into `repo` as ordinary
 * images (see the module docs). Layers go before the config and the config before the manifest.
 * @throws DockpackError `OCI_*`, `IMAGE_*`, what `delta apply` throws other than a missing base
 */
export async function pushPackageImages(
  repo: OciRepository,
  ref: OciReference,
  file: string,
  metadata: PackageMetadata,
  options: { chunkSize?: number },
  reporter: Reporter,
): Promise<PushedImages> {
  const out: PushedImages = { images: [], skipped: [], uploadedBytes: 0, existing: 0 };
  const section = metadata.images ?? [];
  if (section.length === 0) return out;
  const tmp = await makeTempDir("dockpack-push-images-");
  try {
    const rebuilt: string[] = [];
    let deltas: Map<string, string> | undefined;
    const seen = new Set<string>();
    for (const [n, entry] of section.entries()) {
      let source: string;
      if (await engineHas(entry.id)) source = `docker-daemon:${entry.id}`;
      else {
        deltas ??= await extractImageMembers(file, metadata, tmp);
        const archive = join(tmp, `${n}.tar`);
        try {
          await applyDelta(
            {
              package: deltas.get(entry.member) as string,
              output: archive,
              format: "docker-archive",
              baseArchives: rebuilt.slice(),
              force: true,
            },
            reporter,
          );
        } catch (e) {
          const err = toDockpackError(e);
          if (err.code !== "DELTA_BASE_MISSING") throw e;
          reporter.warn(
            `image ${entry.id.slice(0, 19)} is not pushed as an image: this engine lacks it and the package holds it as a delta against layers only the receiver has (${err.message}); the package still carries it`,
          );
          out.skipped.push({ id: entry.id, reason: err.message });
          continue;
        }
        rebuilt.push(archive);
        source = `docker-archive:${archive}`;
      }
      const image = await openImage(source, reporter);
      try {
        if (image.configDigest !== entry.id)
          throw new DockpackError(
            "DELTA_CONFIG_MISMATCH",
            `${source}: image ID ${image.configDigest}, the package names ${entry.id}`,
          );
        const layers: Descriptor[] = [];
        for (const l of image.layers) {
          if (l.codec !== "none")
            throw new DockpackError("IMAGE_FAILED", `${source}: layer ${l.index} is stored compressed`);
          const r = await image.container.range(l.blob);
          layers.push({ mediaType: OCI_LAYER_TAR, digest: l.diffId, size: r.size });
          if (seen.has(l.diffId)) continue;
          seen.add(l.diffId);
          const res = await repo.pushBlob(l.diffId, r.size, {
            open: fileRange(r.file, r.start, r.start + r.size),
            chunkSize: options.chunkSize,
          });
          if (res.how === "uploaded") out.uploadedBytes += res.sent;
          else out.existing++;
        }
        const config = image.config;
        const c = await repo.pushBlob(entry.id, config.length, {
          open: (from) => Readable.from([config.subarray(from)]),
        });
        if (c.how === "uploaded") out.uploadedBytes += c.sent;
        else out.existing++;
        const tag = ref.tag ? imageTag(ref.tag, n) : undefined;
        const manifest: ImageManifest = {
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: OCI_CONFIG, digest: entry.id, size: config.length },
          layers,
          annotations: {
            "org.opencontainers.image.title": entry.services.map((s) => s.image ?? s.service).join(", "),
            "dev.dockpack.services": entry.services.map((s) => s.service).join(","),
            ...(metadata.commit ? { "org.opencontainers.image.revision": metadata.commit } : {}),
          },
        };
        const bytes = Buffer.from(JSON.stringify(manifest));
        const { digest: manifestDigest } = await repo.putManifest(
          tag ?? `sha256:${sha256Hex(bytes)}`,
          bytes,
          OCI_MANIFEST,
        );
        out.images.push({
          id: entry.id,
          manifest: manifestDigest,
          ...(tag ? { tag } : {}),
          size: layers.reduce((a, l) => a + l.size, 0),
          services: entry.services,
        });
        reporter.info(
          `pushed image ${tag ?? manifestDigest} (${entry.services.map((s) => s.service).join(", ")})`,
        );
      } finally {
        await image.close();
      }
    }
    return out;
  } finally {
    await removeTempDir(tmp);
  }
}

/** What {@link loadRegistryImages} did per image. */
export interface RegistryImageLoad {
  id: string;
  /** True when it was loaded from the registry; false when the engine had it. */
  loaded: boolean;
  /** Layers downloaded, and left out because the engine had them. */
  fetchedLayers: number;
  presentLayers: number;
  fetchedBytes: number;
}

/** OCI image-spec chain IDs of a diff_id list. */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev ? `sha256:${sha256Hex(`${prev} ${d}`)}` : d);
  }
  return out;
}

async function readSmallBlob(repo: OciRepository, d: Descriptor, limit: number): Promise<Buffer> {
  if (d.size > limit)
    throw new DockpackError("OCI_NOT_AN_IMAGE", `blob ${d.digest} is ${d.size} bytes, over ${limit}`);
  const chunks: Buffer[] = [];
  for await (const c of await repo.openBlob(d.digest)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Loads the images `refs` lists into the engine, fetching only the layers it lacks (see the
 * module docs). Images the engine has (same ID) are left alone. Returns one row per image; the
 * images it loaded are untagged (the import tags them). Each image is added to `rows` as soon as
 * the engine has it, so a caller can undo a run that failed midway; `beforeLoad(id)` runs (and
 * is awaited) before each load starts, for a durable record (registry-images-pending.ts).
 * @throws DockpackError `OCI_NOT_AN_IMAGE` (manifest or config not what the package lists),
 *   `DIGEST_MISMATCH` (a layer or config whose bytes do not match), `IMAGE_LOAD_FAILED`,
 *   `DELTA_LOAD_MISMATCH` (the engine did not end up with the image ID), `OCI_*`
 */
export async function loadRegistryImages(
  repo: OciRepository,
  refs: RegistryImageRef[],
  reporter: Reporter,
  rows: RegistryImageLoad[] = [],
  beforeLoad: (id: string) => Promise<void> = async () => {},
): Promise<RegistryImageLoad[]> {
  let have: Set<string> | undefined;
  const where = `${repo.registry}/${repo.repository}`;
  const tmp = await makeTempDir("dockpack-registry-images-");
  try {
    for (const r of refs) {
      if (await engineHas(r.id)) {
        rows.push({ id: r.id, loaded: false, fetchedLayers: 0, presentLayers: 0, fetchedBytes: 0 });
        continue;
      }
      if (!have) {
        have = new Set<string>();
        for (const i of await engineInventory()) for (const c of chainIds(i.diffIds)) have.add(c);
      }
      const m = await repo.getManifest(r.manifest);
      const man = m.json as unknown as ImageManifest;
      if (!man.config || man.config.digest !== r.id || !Array.isArray(man.layers) || man.artifactType)
        throw new DockpackError(
          "OCI_NOT_AN_IMAGE",
          `${where}@${r.manifest} is not the image ${r.id} the package lists`,
          { hint: "The artifact and its images disagree; push the package again." },
        );
      const config = await readSmallBlob(repo, man.config, 4 * 1024 * 1024);
      if (`sha256:${sha256Hex(config)}` !== r.id)
        throw new DockpackError("DIGEST_MISMATCH", `${where}: config of image ${r.id} does not match its ID`);
      const diffIds = (JSON.parse(config.toString("utf8")) as { rootfs?: { diff_ids?: string[] } }).rootfs
        ?.diff_ids;
      if (!Array.isArray(diffIds) || diffIds.length !== man.layers.length)
        throw new DockpackError(
          "OCI_NOT_AN_IMAGE",
          `${where}@${r.manifest}: ${man.layers.length} layers, the config lists ${diffIds?.length ?? "no"} diff_ids`,
        );
      const chains = chainIds(diffIds);
      const row: RegistryImageLoad = {
        id: r.id,
        loaded: true,
        fetchedLayers: 0,
        presentLayers: 0,
        fetchedBytes: 0,
      };
      const files: (string | null)[] = [];
      for (const [i, l] of man.layers.entries()) {
        if (have.has(chains[i])) {
          row.presentLayers++;
          files.push(null);
          continue;
        }
        const target = join(tmp, `${diffIds[i].slice(7)}.tar`);
        if (!(await stat(target).catch(() => null))) {
          await fetchLayer(repo, l, diffIds[i], target, tmp);
          row.fetchedLayers++;
          row.fetchedBytes += l.size;
        }
        files.push(target);
      }
      reporter.info(
        `loading image ${r.id.slice(0, 19)} from ${where} (${row.fetchedLayers} layer(s) fetched, ${row.presentLayers} already in the engine)`,
      );
      await beforeLoad(r.id);
      rows.push(row);
      await loadArchive(r.id, config, files);
      if (!(await engineHas(r.id)))
        throw new DockpackError("DELTA_LOAD_MISMATCH", `The engine did not load image ${r.id}.`, {
          hint: "Check the Docker Engine's log and free disk space.",
        });
      for (const c of chains) have.add(c);
    }
    return rows;
  } finally {
    await removeTempDir(tmp);
  }
}

/** Downloads one layer into `target` as an uncompressed tar checked against `diffId`. */
async function fetchLayer(
  repo: OciRepository,
  l: Descriptor,
  diffId: string,
  target: string,
  tmp: string,
): Promise<void> {
  const where = `${repo.registry}/${repo.repository}`;
  if (PLAIN_LAYERS.has(l.mediaType)) {
    if (l.digest !== diffId)
      throw new DockpackError(
        "DIGEST_MISMATCH",
        `${where}: uncompressed layer ${l.digest} is not its diff_id ${diffId}`,
      );
    await repo.downloadBlob(l, target);
    return;
  }
  if (!GZIP_LAYERS.has(l.mediaType))
    throw new DockpackError(
      "OCI_NOT_AN_IMAGE",
      `${where}: layer media type ${l.mediaType} is not supported`,
      {
        hint: "dockpack reads uncompressed and gzip layers.",
      },
    );
  const gz = join(tmp, `${l.digest.slice(7)}.gz`);
  await repo.downloadBlob(l, gz);
  await pipeline(
    createReadStream(gz),
    createGunzip(),
    verifyingStream(diffId, `${where}: layer ${l.digest} (diff_id ${diffId})`),
    createWriteStream(target),
  );
}

/**
 * Streams a docker-archive (Docker image spec v1.2) of image `id` into `docker load`: the config,
 * manifest.json, and the layer files given (null: a layer the engine has, listed but absent).
 */
async function loadArchive(id: string, config: Buffer, files: (string | null)[]): Promise<void> {
  const pack = tar.pack();
  const loading = loadImage(pack as unknown as Readable);
  loading.catch(() => undefined);
  const hex = id.slice(7);
  const add = (name: string, size: number, body: Readable | Buffer) =>
    new Promise<void>((resolve, reject) => {
      const entry = pack.entry({ name, size, mtime: new Date(0), mode: 0o644 }, (err) =>
        err ? reject(err) : resolve(),
      );
      if (Buffer.isBuffer(body)) entry.end(body);
      else pipeline(body, entry).catch(reject);
    });
  const layerPaths = files.map((_, i) => `${i}/layer.tar`);
  await add(`${hex}.json`, config.length, config);
  for (const [i, f] of files.entries())
    if (f)
      await add(layerPaths[i], (await stat(f)).size, createReadStream(f, { highWaterMark: 1024 * 1024 }));
  const manifest = Buffer.from(
    JSON.stringify([{ Config: `${hex}.json`, RepoTags: null, Layers: layerPaths }]),
  );
  await add("manifest.json", manifest.length, manifest);
  pack.finalize();
  await loading;
}
