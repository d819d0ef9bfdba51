/**
 * The `volumes` step of an import, run in the background while the worktree, its files, the
 * settings (compose's model: `docker-compose config`, the slowest of them) and the images are
 * made: each package volume is created (recorded in the run journal first, as always) and restored
 * in the one read that checks it (import-restore.ts `restoreVolume`).
 *
 * A volume's create options come from compose's model, which is not known yet when its restore
 * starts: until then the volume is created as a plain local volume — what almost every compose
 * file declares. When the model, once known, says otherwise (a bind-style `driver_opts` volume,
 * whose data belong in the environment's own folder) or names the volume differently, that
 * volume's restore is stopped, the volume removed, and it is created again as compose declares it
 * and restored from the start. Nothing of the model is guessed: compose's answer decides.
 */
import type { Readable } from "node:stream";
import { interrupted } from "../core/abort.js";
import { requireEngine } from "../core/docker/client.js";
import { ensureHelperImage } from "../core/docker/helper-image.js";
import { createVolume, removeVolume } from "../core/docker/volumes.js";
import type { Reporter } from "../core/output.js";
import { restoreVolume } from "./import-restore.js";
import type { ImportTarget } from "./import-target.js";
import type { Journal } from "./journal.js";
import type { PackageVolume } from "./package-format.js";
import { RUN_LABEL } from "./recover-undo.js";
import { type EnvSettings, volumeCreateOptions } from "./settings.js";

/** What {@link startVolumes} needs from the import. */
export interface VolumeJobInput {
  file: string;
  target: ImportTarget;
  volumes: PackageVolume[];
  /** Where each volume member's content lies in the package (the verification read found it). */
  deferred: Map<string, { offset: number; size: number }>;
  journal: Journal;
  reporter: Reporter;
  /** False: empty volumes (`--no-data`). */
  restoreData: boolean;
  allowSpecialFiles: boolean;
  identity?: string;
  volumeSource?: (member: string, at: { offset: number; size: number }) => Readable;
}

/** The running step; see the module docs. */
export interface VolumeJob {
  /** Hands compose's model (the settings written from it) to the job; call once it is known. */
  settings(s: EnvSettings): void;
  /** Settles when every volume is created and restored; rejects with the first failure. */
  done: Promise<void>;
  /** The job's failure when it failed already (the import stops at its next step). */
  failure(): unknown;
  /**
   * Stops the job (a failure elsewhere) and waits until nothing of it runs any more (what it
   * created stays journaled for the rollback).
   */
  stop(): Promise<void>;
}

/**
 * Starts, in the background, what the first volume's helper container needs from the engine
 * besides the volume (the engine's answer, the helper image, the sweep of dead runs' helpers:
 * core/docker/helper-image.ts, once per process), so that it is done by the time the volume
 * exists (fixed start-up before the first byte moves). Never throws: a failure is met again,
 * and reported, where the helper is made.
 */
export function prepareVolumeHelpers(): void {
  requireEngine()
    .then((docker) => ensureHelperImage(docker))
    .catch(() => undefined);
}

/** Starts the step in the background (see the module docs). */
export function startVolumes(input: VolumeJobInput): VolumeJob {
  let resolveSettings!: (s: EnvSettings | null) => void;
  const model = new Promise<EnvSettings | null>((r) => {
    resolveSettings = r;
  });
  let known: EnvSettings | null | undefined;
  void model.then((s) => {
    known = s;
  });
  const stopper = new AbortController();
  let failed: { error: unknown } | undefined;
  const done = runAll(input, model, () => known, stopper.signal).catch((error) => {
    failed ??= { error };
    throw error;
  });
  done.catch(() => undefined);
  return {
    settings: (s) => resolveSettings(s),
    done,
    failure: () => failed?.error,
    stop: async () => {
      stopper.abort();
      resolveSettings(null);
      await done.catch(() => undefined);
    },
  };
}

async function runAll(
  input: VolumeJobInput,
  model: Promise<EnvSettings | null>,
  known: () => EnvSettings | null | undefined,
  stopped: AbortSignal,
): Promise<void> {
  for (const v of input.target.volumes) {
    if (stopped.aborted) throw interrupted();
    const packaged = input.volumes.find((p) => p.name === v.name) as PackageVolume;
    const now = known();
    if (now) {
      // compose's model is known already: as it says, no guess
      await restoreOne(input, packaged, dockerNameOf(now, v), volumeCreateOptions(now, v.name), stopped);
      continue;
    }
    // not yet: a plain volume under the target name, checked against the model when it comes
    const guess = new AbortController();
    const stopGuess = () => guess.abort();
    stopped.addEventListener("abort", stopGuess);
    let wrong = false;
    void model.then((s) => {
      if (s && (dockerNameOf(s, v) !== v.target || volumeCreateOptions(s, v.name))) {
        wrong = true;
        guess.abort();
      }
    });
    try {
      await restoreOne(input, packaged, v.target, undefined, guess.signal);
    } catch (err) {
      if (!wrong) throw err;
    } finally {
      stopped.removeEventListener("abort", stopGuess);
    }
    const s = await model;
    if (!s || stopped.aborted) throw interrupted();
    if (dockerNameOf(s, v) === v.target && !volumeCreateOptions(s, v.name)) continue;
    input.reporter.info(`volume ${v.target}: compose declares it otherwise; creating it again`);
    await removeVolume(v.target);
    await restoreOne(input, packaged, dockerNameOf(s, v), volumeCreateOptions(s, v.name), stopped);
  }
}

function dockerNameOf(s: EnvSettings, v: { name: string; target: string }): string {
  return s.volumes[v.name] ?? v.target;
}

/** Creates one volume (journaled first) and restores its data; `signal` stops the restore. */
async function restoreOne(
  input: VolumeJobInput,
  packaged: PackageVolume,
  dockerName: string,
  createOptions: ReturnType<typeof volumeCreateOptions>,
  signal: AbortSignal,
): Promise<void> {
  const { journal, target } = input;
  await journal.will({ op: "volume", name: dockerName });
  await createVolume(
    dockerName,
    {
      "com.docker.compose.project": target.composeProject,
      "com.docker.compose.volume": packaged.name,
      [RUN_LABEL]: journal.id,
    },
    createOptions,
  );
  journal.checkpoint();
  if (!input.restoreData) return;
  if (signal.aborted) throw interrupted();
  input.reporter.info(`restoring volume ${dockerName}`);
  const at = input.deferred.get(packaged.member);
  if (!at) throw new Error(`unreachable: volume member ${packaged.member} was not located`);
  await restoreVolume(input.file, at, packaged, dockerName, input.reporter, journal, {
    allowSpecialFiles: input.allowSpecialFiles,
    identity: input.identity,
    source: input.volumeSource?.(packaged.member, at),
    signal,
  });
  journal.checkpoint();
}
