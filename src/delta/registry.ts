/**
 * Delta packages through an OCI registry (`delta push FILE REF`, `delta pull REF -o FILE`): the
 * package file as a one-layer artifact (core/oci/file-artifact.ts) with dockpack's artifact type.
 * The file is checked with the delta reader before it is sent and after it is downloaded (before
 * it appears under its name), so neither side ever holds a package `delta info` refuses.
 */
import {
  type PullFileArtifactResult,
  type PushFileArtifactResult,
  pullFileArtifact,
  pushFileArtifact,
} from "../core/oci/file-artifact.js";
import type { RegistryOptions } from "../core/oci/transport.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { deltaInfo } from "./info.js";

/** artifactType of a delta package manifest. */
export const DELTA_ARTIFACT_TYPE = "application/vnd.dockpack.delta.package.v1";
/** Media type of its one layer: the delta package file (a tar) as written by `delta create`. */
export const DELTA_LAYER_MEDIA_TYPE = "application/vnd.dockpack.delta.package.v1.tar";

/**
 * Pushes a delta package file to `reference` (with a tag).
 * @throws DockpackError the delta reader's codes (nothing sent), `OCI_*`.
 */
export async function pushDelta(
  options: RegistryOptions & { package: string; reference: string; chunkSize?: number },
  reporter: Reporter = silentReporter(),
): Promise<PushFileArtifactResult> {
  const { source } = await deltaInfo({ package: options.package });
  return pushFileArtifact(
    {
      ...options,
      file: options.package,
      artifactType: DELTA_ARTIFACT_TYPE,
      layerMediaType: DELTA_LAYER_MEDIA_TYPE,
      annotations: source.repoTags.length ? { "dev.dockpack.delta.source": source.repoTags.join(",") } : {},
    },
    reporter,
  );
}

/**
 * Pulls a delta package from `reference` into `output`, verified by digest and by the delta
 * reader before it is renamed into place.
 * @throws DockpackError `OCI_NOT_AN_ARTIFACT`, `FS_EXISTS`, `DIGEST_MISMATCH`, the reader's codes, `OCI_*`.
 */
export async function pullDelta(
  options: RegistryOptions & { reference: string; output: string; force?: boolean },
  reporter: Reporter = silentReporter(),
): Promise<PullFileArtifactResult> {
  return pullFileArtifact(
    {
      ...options,
      artifactType: DELTA_ARTIFACT_TYPE,
      check: async (path) => {
        await deltaInfo({ package: path });
      },
    },
    reporter,
  );
}
