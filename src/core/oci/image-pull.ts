/**
 * Pulls an image from a registry into an OCI image layout folder (OCI image-layout spec 1.0:
 * `oci-layout`, `index.json`, `blobs/sha256/<hex>`), every blob verified by digest through the
 * client. An image index is resolved to its linux/amd64 manifest (else its first), the choice
 * `src/image/oci-layout.ts` makes when it reads the folder back. This is how `docker://REF`
 * images (skopeo's transport syntax) are read by `delta create` and `delta apply`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256Hex } from "../digest.js";
import { DockpackError } from "../errors.js";
import { type Reporter, silentReporter } from "../output.js";
import { mapLimit, openRepository } from "./client.js";
import type { Descriptor } from "./media-types.js";
import { formatReference, referenceTarget } from "./reference.js";
import type { RegistryOptions } from "./transport.js";

const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

/** Result of {@link pullImageLayout}. */
export interface PulledImage {
  /** The reference as `registry/repository:tag` or `@digest`. */
  reference: string;
  /** Digest of the image manifest written (the platform's manifest under an index). */
  manifest: string;
  /** Bytes downloaded (config + layers). */
  bytes: number;
}

/**
 * Writes the image `reference` (with or without `docker://`) into the empty folder `dir`.
 * @throws DockpackError `OCI_NOT_AN_IMAGE` (an artifact or a manifest without layers),
 *   `DIGEST_MISMATCH`, `OCI_NOT_FOUND`, `OCI_UNAUTHORIZED` and the client's other errors.
 */
export async function pullImageLayout(
  reference: string,
  dir: string,
  options: RegistryOptions & { concurrency?: number } = {},
  reporter: Reporter = silentReporter(),
): Promise<PulledImage> {
  const { repo, ref } = await openRepository(reference.replace(/^docker:\/\//, ""), { ...options, reporter });
  const where = formatReference(ref);
  try {
    const blobs = join(dir, "blobs", "sha256");
    await mkdir(blobs, { recursive: true });
    const save = (digest: string, bytes: Buffer) => {
      if (`sha256:${sha256Hex(bytes)}` !== digest)
        throw new DockpackError("DIGEST_MISMATCH", `${where}: manifest bytes do not match ${digest}`);
      return writeFile(join(blobs, digest.slice(7)), bytes);
    };
    let top = await repo.getManifest(referenceTarget(ref));
    await save(top.digest, top.bytes);
    const topDesc = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
    if (INDEX_TYPES.has(top.mediaType)) {
      const list = (top.json.manifests ?? []) as (Descriptor & {
        platform?: { os?: string; architecture?: string };
      })[];
      const chosen =
        list.find((m) => m.platform?.os === "linux" && m.platform?.architecture === "amd64") ?? list[0];
      if (!chosen) throw new DockpackError("OCI_NOT_AN_IMAGE", `${where}: an empty image index`);
      top = await repo.getManifest(chosen.digest);
      await save(chosen.digest, top.bytes);
    }
    const m = top.json as { config?: Descriptor; layers?: Descriptor[]; artifactType?: string };
    if (!m.config?.digest || !Array.isArray(m.layers) || m.layers.length === 0 || m.artifactType)
      throw new DockpackError("OCI_NOT_AN_IMAGE", `${where} is not a container image (no config or layers)`, {
        hint: "Give an image reference; dockpack artifacts are read with 'packages pull' or 'delta pull'.",
      });
    const wanted = [m.config, ...m.layers];
    const bar = reporter.progress(
      `pull ${where}`,
      wanted.reduce((n, d) => n + d.size, 0),
    );
    const done = new Map<string, number>();
    const unique = [...new Map(wanted.map((d) => [d.digest, d])).values()];
    await mapLimit(unique, options.concurrency ?? 3, (d) =>
      repo.downloadBlob(d, join(blobs, d.digest.replace(/^sha256:/, "")), (n) => {
        done.set(d.digest, n);
        bar.update([...done.values()].reduce((a, b) => a + b, 0));
      }),
    );
    bar.stop();
    const name = ref.tag ? `${ref.registry}/${ref.repository}:${ref.tag}` : undefined;
    await writeFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(
      join(dir, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            ...topDesc,
            ...(name
              ? {
                  annotations: {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": ref.tag,
                  },
                }
              : {}),
          },
        ],
      }),
    );
    return { reference: where, manifest: top.digest, bytes: unique.reduce((n, d) => n + d.size, 0) };
  } finally {
    await repo.transport.close();
  }
}
