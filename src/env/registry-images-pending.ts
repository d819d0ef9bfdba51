/**
 * Kill -9 safety of `packages import REF`'s image step (registry-images-import.ts): the images
 * it loads from the registry are loaded before the import's own run journal exists, so each one
 * is written to a small record first, `<state dir>/runs/registry-images-<pid>-<hex>.json`
 * (`{ pid, start, host, ids: ["sha256:…"] }`, rewritten atomically before each load). The record
 * is removed when the step's caller has finished (imported, or undone after a failure).
 *
 * {@link recoverRegistryImages} (run by `recoverDeadRuns` after the dead imports are rolled
 * back) removes, for a record whose process is dead, each listed image that is still untagged and
 * used by no container: such an image was loaded by the dead run and never handed over (a
 * finished import tags what it keeps; a rolled-back one has removed its tags again). An image
 * with a tag or a container is left alone.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { getDocker, statusCode } from "../core/docker/client.js";
import type { Reporter } from "../core/output.js";
import { ownerAlive, processStart, runsDir } from "./journal.js";

interface PendingRecord {
  pid: number;
  start: number | null;
  host: string;
  ids: string[];
}

/** The record of one image step in progress (see the module docs). */
export interface PendingRegistryImages {
  /** Records `id` (an image ID about to be loaded) durably, before the load starts. */
  add(id: string): Promise<void>;
  /** Removes the record (the step's images are handed over to the import, or undone). */
  close(): Promise<void>;
}

/**
 * Opens a record for this process (nothing is written until the first {@link PendingRegistryImages.add}).
 * @throws Node's fs errors when the state folder cannot be written
 */
export function openPendingRegistryImages(): PendingRegistryImages {
  const path = join(runsDir(), `registry-images-${process.pid}-${randomBytes(4).toString("hex")}.json`);
  const record: PendingRecord = {
    pid: process.pid,
    start: processStart(process.pid),
    host: hostname(),
    ids: [],
  };
  let written = false;
  return {
    async add(id) {
      record.ids.push(id);
      await mkdir(runsDir(), { recursive: true });
      await writeFile(`${path}.tmp`, JSON.stringify(record));
      await rename(`${path}.tmp`, path);
      written = true;
    },
    async close() {
      if (written) await unlink(path).catch(() => {});
      await unlink(`${path}.tmp`).catch(() => {});
    },
  };
}

async function removeIfOrphan(id: string, reporter: Reporter): Promise<void> {
  const docker = getDocker();
  let tags: string[];
  try {
    tags = (await docker.getImage(id).inspect()).RepoTags ?? [];
  } catch (err) {
    if (statusCode(err) === 404) return;
    throw err;
  }
  if (tags.length > 0) return;
  const users = await docker.listContainers({ all: true, filters: { ancestor: [id] } });
  if (users.length > 0) return;
  try {
    await docker.getImage(id).remove({ noprune: false });
    reporter.info(`removed image ${id.slice(0, 19)} that an interrupted import had loaded from a registry`);
  } catch (err) {
    if (statusCode(err) !== 404 && statusCode(err) !== 409) throw err;
  }
}

/**
 * Cleans up after image steps whose process died (see the module docs). Never throws: a record
 * whose clean-up fails is kept for the next run, with a warning.
 */
export async function recoverRegistryImages(reporter: Reporter): Promise<void> {
  const dir = runsDir();
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) =>
    n.startsWith("registry-images-"),
  );
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith(".tmp")) {
      const pid = Number(name.split("-")[2]);
      if (!Number.isInteger(pid) || !ownerAlive({ pid, start: null, host: hostname() }))
        await unlink(path).catch(() => {});
      continue;
    }
    let rec: PendingRecord;
    try {
      rec = JSON.parse(await readFile(path, "utf8")) as PendingRecord;
    } catch {
      continue; // removed meanwhile, or not ours to read
    }
    if (!Array.isArray(rec.ids) || typeof rec.pid !== "number" || ownerAlive(rec)) continue;
    try {
      for (const id of rec.ids)
        if (typeof id === "string" && /^sha256:[0-9a-f]{64}$/.test(id)) await removeIfOrphan(id, reporter);
      await unlink(path).catch(() => {});
    } catch (err) {
      reporter.warn(
        `could not remove the images an interrupted import loaded (${path}): ${(err as Error).message}`,
      );
    }
  }
}
