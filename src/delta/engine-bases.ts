/**
 * Finding base layers in the local Docker Engine for `delta apply`: which images hold the
 * needed diff_ids (`RootFS.Layers` of GET /images/{id}/json). The package's own base list is
 * tried first, then every local image; images are chosen greedily, most needed layers first.
 */
import { getDocker, requireEngine } from "../core/docker/client.js";
import { inspectImage } from "../core/docker/images.js";
import { type DeltaMetadata, isValidRepoTag } from "./format.js";

/**
 * Returns engine images (ID, and a name for messages) that together hold as many of `missing`
 * as the engine has. Throws `ENGINE_UNAVAILABLE` when no engine answers.
 */
export async function findInEngine(
  missing: string[],
  md: DeltaMetadata,
): Promise<{ id: string; name: string }[]> {
  await requireEngine();
  const holders = new Map<string, Set<string>>(); // image id → needed diff_ids it holds
  const names = new Map<string, string>();
  const want = new Set(missing);
  const consider = async (ref: string) => {
    // the package names its bases: only real tags and IDs are looked up (a forged one names nothing)
    if (!isValidRepoTag(ref) && !/^sha256:[a-f0-9]{64}$/.test(ref)) return;
    try {
      const info = await inspectImage(ref);
      if (holders.has(info.Id)) return;
      const have = new Set((info.RootFS?.Layers ?? []).filter((d) => want.has(d)));
      if (have.size > 0) {
        holders.set(info.Id, have);
        names.set(info.Id, info.RepoTags?.[0] ?? info.Id);
      }
    } catch (e) {
      if ((e as { code?: string }).code !== "IMAGE_NOT_FOUND") throw e;
    }
  };
  for (const b of md.bases) for (const ref of [...b.repoTags, ...(b.id ? [b.id] : [])]) await consider(ref);
  const covered = () => new Set([...holders.values()].flatMap((s) => [...s]));
  if (missing.some((d) => !covered().has(d))) {
    for (const i of await getDocker().listImages()) await consider(i.Id);
  }
  const chosen: { id: string; name: string }[] = [];
  const left = new Set(missing);
  while (left.size > 0) {
    let best: [string, number] | undefined;
    for (const [id, have] of holders) {
      const n = [...have].filter((d) => left.has(d)).length;
      if (n > 0 && (!best || n > best[1])) best = [id, n];
    }
    if (!best) break;
    chosen.push({ id: best[0], name: names.get(best[0]) ?? best[0] });
    for (const d of holders.get(best[0]) ?? []) left.delete(d);
  }
  return chosen;
}
