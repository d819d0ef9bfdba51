/**
 * Undo of an import's image step (journal op `image`, package-images-load.ts): puts every tag
 * the import moved back where it was, removes the tags it added, and removes the image itself
 * only when the import loaded it (an image the engine had before is never removed). Idempotent
 * and checking the engine's current state first, so it is right whether or not the load or the
 * tagging had happened when the process died.
 */
import { getDocker, requireEngine, statusCode } from "../core/docker/client.js";
import { tagImage } from "../core/docker/images.js";
import type { Reporter } from "../core/output.js";

/** The journal entry of one image an import loads or tags. */
export interface ImageJournalEntry {
  op: "image";
  /** Image ID (`sha256:…`). */
  id: string;
  /** True when the engine lacked the image: the import loads it (removed on undo). */
  added: boolean;
  /** Tags the import points at the image, each with the image ID it named before (null: none). */
  tags: { tag: string; previous: string | null }[];
}

async function currentId(ref: string): Promise<{ id: string; tags: string[] } | null> {
  try {
    const info = await (await requireEngine()).getImage(ref).inspect();
    return { id: info.Id, tags: info.RepoTags ?? [] };
  } catch (err) {
    if (statusCode(err) === 404) return null;
    throw err;
  }
}

/**
 * Undoes one `image` entry (see the module docs). An image a container uses meanwhile is kept,
 * with a warning. Throws only when the engine fails.
 */
export async function undoImageEntry(e: ImageJournalEntry, reporter: Reporter): Promise<void> {
  const docker = getDocker();
  for (const { tag, previous } of [...e.tags].reverse()) {
    const now = await currentId(tag);
    if (now?.id !== e.id) continue; // not ours (any more)
    if (previous && (await currentId(previous))) {
      await tagImage(previous, tag);
      continue;
    }
    const image = await currentId(e.id);
    // untagging the last tag of an image the engine had before would delete it: keep it then
    if (!e.added && (image?.tags.length ?? 0) <= 1) continue;
    await docker
      .getImage(tag)
      .remove({ noprune: true })
      .catch((err) => {
        if (statusCode(err) !== 404) throw err;
      });
  }
  if (!e.added) return;
  const image = await currentId(e.id);
  if (!image) return;
  try {
    await docker.getImage(e.id).remove({ noprune: false });
  } catch (err) {
    if (statusCode(err) === 404) return;
    if (statusCode(err) === 409) {
      reporter.warn(`image ${e.id} that the import loaded is in use or tagged meanwhile; kept`);
      return;
    }
    throw err;
  }
}
