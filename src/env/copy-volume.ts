/**
 * `env create --copy-data-from`: copies one named volume's data into another through the
 * engine's tar streams, drawing a progress bar of the bytes copied (total: the source volume's
 * size when the engine knows it, a spinner otherwise).
 */
import { Transform } from "node:stream";
import { readVolumeTar, volumeSize, writeVolumeTar } from "../core/docker/volumes.js";
// records each helper container before its create request (crash recovery)
import "./helper-ledger.js";
import type { Reporter } from "../core/output.js";

/**
 * Copies the content of volume `from` into the existing volume `to` (an exact copy: owners,
 * modes, links). Progress: a bytes bar labelled `copy <from>`; the tar stream carries headers,
 * so the count is clamped to the total. Throws the core/docker errors of
 * {@link readVolumeTar} / {@link writeVolumeTar} (`VOLUME_NOT_FOUND`, `VOLUME_FAILED`, …).
 */
export async function copyVolumeData(from: string, to: string, reporter: Reporter): Promise<void> {
  const total = await volumeSize(from).then(
    (n) => (n > 0 ? n : undefined),
    () => undefined,
  );
  const bar = reporter.progress(`copy ${from}`, total);
  let done = 0;
  const counter = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      bar.update(total === undefined ? done : Math.min(done, total));
      cb(null, chunk);
    },
  });
  try {
    const source = await readVolumeTar(from);
    source.on("error", (err) => counter.destroy(err));
    await writeVolumeTar(to, source.pipe(counter));
  } finally {
    bar.stop();
  }
}
