/**
 * `env create --copy-data-from SOURCE`: the source environment's volumes copied into the new
 * environment's, with the source's containers paused meanwhile (export-pause.ts). Every change is
 * recorded in the create's run journal first — each new volume (labelled with the run id, so the
 * undo never removes another's volume) and the stopped containers — so a killed create is undone
 * by the next dockpack command: the copies removed and the source's containers started again.
 */
import { createVolume, volumeExists } from "../core/docker/volumes.js";
import type { Reporter } from "../core/output.js";
import type { EnvConfig } from "./config.js";
import { copyVolumeData } from "./copy-volume.js";
import { withPausedEnvironment } from "./export-pause.js";
import type { Journal } from "./journal.js";
import { withEnvLock } from "./recover.js";
import { RUN_LABEL } from "./recover-undo.js";
import type { EnvSettings } from "./settings.js";
import { volumeCreateOptions } from "./settings.js";

/**
 * Copies every configured volume of `source` that exists into the matching new volume of
 * `target` (created here), holding the source environment's lock.
 * @throws DockpackError `VOLUME_EXISTS` (a target volume is there already), `VOLUME_*`, `INTERRUPTED`
 */
export async function copyEnvironmentData(
  config: EnvConfig,
  source: EnvSettings,
  target: EnvSettings,
  journal: Journal,
  reporter: Reporter,
): Promise<void> {
  await withEnvLock(source.compose_project, reporter, () =>
    withPausedEnvironment(source.compose_project, journal, reporter, async () => {
      for (const name of config.volumes) {
        const from = source.volumes[name];
        const to = target.volumes[name];
        if (!from || !to || !(await volumeExists(from))) continue;
        journal.checkpoint();
        reporter.info(`copying volume ${from} → ${to}`);
        await journal.will({ op: "volume", name: to });
        await createVolume(
          to,
          {
            "com.docker.compose.project": target.compose_project,
            "com.docker.compose.volume": name,
            [RUN_LABEL]: journal.id,
          },
          volumeCreateOptions(target, name),
        );
        await copyVolumeData(from, to, reporter);
      }
    }),
  );
}
