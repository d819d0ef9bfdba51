/**
 * Writes an image as a tar stream in one of three layouts, streaming every layer (never held in
 * memory):
 *
 * - `docker-archive` — the Docker < 25 `docker save` layout (`<diff-hex>/layer.tar`,
 *   `<config-hex>.json`, `manifest.json`), Docker image spec v1.2; accepted by `docker load` of
 *   every Docker version and by `skopeo inspect docker-archive:FILE`.
 * - `docker-archive-oci` — the Docker ≥ 25 layout: an OCI image layout (`oci-layout`,
 *   `index.json`, `blobs/sha256/…`) plus `manifest.json` pointing into it.
 * - `oci-archive` — an OCI image layout in a tar (OCI image-spec image-layout.md).
 *
 * Layers are written uncompressed (so each layer's digest equals its diff_id) and once per
 * diff_id even when the image repeats one (e.g. several empty layers).
 */
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { interrupted, onAbort } from "../core/abort.js";
import { sha256Hex } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import { IMAGE_NAME, REF_NAME } from "./oci-layout.js";

/** A layer to write: its diff_id, uncompressed size in bytes, and a function streaming its bytes. */
export interface LayerInput {
  diffId: string;
  size: number;
  open(): Promise<Readable>;
}

/** What {@link writeImageTar} writes. */
export interface ImageInput {
  /** Exact config bytes (their sha256 is the image ID). */
  config: Buffer;
  /** `name:tag` references to record. */
  repoTags: string[];
  /** Bottom layer first; must match the config's rootfs.diff_ids. */
  layers: LayerInput[];
}

/** Output layouts of {@link writeImageTar}. */
export type ArchiveLayout = "docker-archive" | "docker-archive-oci" | "oci-archive";

const hex = (digest: string) => digest.replace(/^sha256:/, "");

/**
 * Streams `image` as a tar in `layout` into `dest` (ends it). Resolves when everything is
 * written. A layer stream yielding a different byte count than `size` fails with
 * `IMAGE_LAYER_SIZE_MISMATCH`.
 */
export async function writeImageTar(
  image: ImageInput,
  dest: Writable,
  layout: ArchiveLayout = "docker-archive",
): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, dest);
  // A destination that fails or is destroyed (an abort, a closed pipe) ends every wait below at
  // once, and its "Premature close" is never left unhandled (it was a stack trace on Ctrl-C).
  const broken = done.then(
    () => new Promise<never>(() => undefined),
    (e: unknown) => {
      throw e;
    },
  );
  broken.catch(() => undefined);
  const off = onAbort(() => pack.destroy(interrupted()));
  const guarded = <T>(p: Promise<T>): Promise<T> => Promise.race([p, broken]);
  const mtime = new Date(0);
  const addBuffer = (name: string, data: Buffer | string) =>
    guarded(
      new Promise<void>((resolve, reject) => {
        if (pack.destroyed) return reject(interrupted());
        const entry = pack.entry({ name, mtime, mode: 0o644 }, data, (err) =>
          err ? reject(err) : resolve(),
        );
        entry.on("error", reject); // destroyed with the pack (an abort): never an unhandled error
      }),
    );
  const addLayer = async (name: string, layer: LayerInput) => {
    const body = await layer.open();
    await guarded(
      new Promise<void>((resolve, reject) => {
        if (pack.destroyed) return reject(interrupted());
        const entry = pack.entry({ name, size: layer.size, mtime, mode: 0o644 }, (err) =>
          err
            ? reject(
                new DockpackError(
                  "IMAGE_LAYER_SIZE_MISMATCH",
                  `Layer ${layer.diffId}: the stream did not yield the expected ${layer.size} bytes (${err.message}).`,
                  { cause: err },
                ),
              )
            : resolve(),
        );
        body.on("error", (e) => {
          entry.destroy(e);
          reject(e);
        });
        entry.on("error", reject); // destroyed with the pack (an abort): never an unhandled error
        body.pipe(entry);
      }),
    ).catch((e: unknown) => {
      body.destroy();
      throw e;
    });
  };
  try {
    const configHex = sha256Hex(image.config);
    const unique = new Map<string, LayerInput>();
    for (const l of image.layers) if (!unique.has(l.diffId)) unique.set(l.diffId, l);
    if (layout === "docker-archive") {
      await addBuffer(`${configHex}.json`, image.config);
      const manifest = [
        {
          Config: `${configHex}.json`,
          RepoTags: image.repoTags.length ? image.repoTags : null,
          Layers: image.layers.map((l) => `${hex(l.diffId)}/layer.tar`),
        },
      ];
      await addBuffer("manifest.json", JSON.stringify(manifest));
      for (const [diffId, l] of unique) {
        await addBuffer(`${hex(diffId)}/VERSION`, "1.0");
        await addLayer(`${hex(diffId)}/layer.tar`, l);
      }
    } else {
      const ociManifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: `sha256:${configHex}`,
          size: image.config.length,
        },
        layers: image.layers.map((l) => ({
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: l.diffId,
          size: l.size,
        })),
      });
      const manifestHex = sha256Hex(ociManifest);
      const refs = image.repoTags.length ? image.repoTags : [undefined];
      const index = {
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: refs.map((tag) => ({
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: `sha256:${manifestHex}`,
          size: Buffer.byteLength(ociManifest),
          ...(tag
            ? {
                annotations:
                  layout === "docker-archive-oci"
                    ? { [IMAGE_NAME]: tag, [REF_NAME]: tag.slice(tag.lastIndexOf(":") + 1) }
                    : { [REF_NAME]: tag },
              }
            : {}),
        })),
      };
      await addBuffer("oci-layout", JSON.stringify({ imageLayoutVersion: "1.0.0" }));
      await addBuffer("index.json", JSON.stringify(index));
      if (layout === "docker-archive-oci") {
        const manifest = [
          {
            Config: `blobs/sha256/${configHex}`,
            RepoTags: image.repoTags.length ? image.repoTags : null,
            Layers: image.layers.map((l) => `blobs/sha256/${hex(l.diffId)}`),
          },
        ];
        await addBuffer("manifest.json", JSON.stringify(manifest));
      }
      await addBuffer(`blobs/sha256/${manifestHex}`, ociManifest);
      await addBuffer(`blobs/sha256/${configHex}`, image.config);
      for (const [diffId, l] of unique) await addLayer(`blobs/sha256/${hex(diffId)}`, l);
    }
    pack.finalize();
    await done;
  } catch (e) {
    pack.destroy(e as Error);
    await done.catch(() => {});
    throw e;
  } finally {
    off();
  }
}
