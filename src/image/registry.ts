/**
 * `docker://REF` images (skopeo's transport syntax): pulled through dockpack's OCI client
 * (core/oci/image-pull.ts) into a temporary OCI layout, every blob verified by digest, then read
 * as any OCI layout. The folder is removed when the image is closed.
 */
import { makeTempDir, removeTempDir } from "../core/fs.js";
import { pullImageLayout } from "../core/oci/image-pull.js";
import type { Reporter } from "../core/output.js";
import { DirContainer } from "./container.js";
import type { Image } from "./image.js";
import { readOciLayout } from "./oci-layout.js";

/** Opens `docker://<reference>` (`reference` without the prefix); close the image when done. */
export async function openRegistryImage(reference: string, raw: string, reporter?: Reporter): Promise<Image> {
  const dir = await makeTempDir("dockpack-image-");
  try {
    await pullImageLayout(reference, dir, {}, reporter);
    return await readOciLayout(new DirContainer(dir), raw, "oci", undefined, () => removeTempDir(dir));
  } catch (e) {
    await removeTempDir(dir);
    throw e;
  }
}
