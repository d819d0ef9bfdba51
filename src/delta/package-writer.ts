/**
 * Writes a delta package (format.ts) atomically: metadata first, then the config bytes, then
 * each layer member streamed from its temporary file. The package appears under its name only
 * when complete; an interrupted run leaves nothing behind.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { interrupted, onAbort } from "../core/abort.js";
import { DockpackError } from "../core/errors.js";
import { createAtomicWriteStream } from "../core/fs.js";
import { DELTA_CONFIG_MEMBER, DELTA_METADATA_MEMBER, type DeltaMetadata } from "./format.js";

/**
 * Writes the package to `path` and returns its size in bytes. Each member's body is its `file`,
 * or `size` bytes of it from `start` when given. `-` is standard output; a
 * character device or fifo is written in place (see core/fs/atomic). Throws `DELTA_OUTPUT_EXISTS`
 * when `path` exists and `overwrite` is false, `FS_NOT_REGULAR_FILE` for a directory or socket.
 */
export async function writeDeltaPackage(
  path: string,
  metadata: DeltaMetadata,
  config: Buffer,
  members: { name: string; file: string; start?: number; size?: number }[],
  overwrite: boolean,
): Promise<number> {
  let out: ReturnType<typeof createAtomicWriteStream>;
  try {
    out = createAtomicWriteStream(path, { overwrite, allowStdout: true });
  } catch (e) {
    if ((e as { code?: string }).code === "FS_EXISTS") {
      throw new DockpackError("DELTA_OUTPUT_EXISTS", `The file '${path}' exists.`, {
        hint: "Pass -f/--force to overwrite it, or choose another name.",
      });
    }
    throw e;
  }
  const pack = tar.pack();
  const done = pipeline(pack, out.stream);
  // A destination that fails or is destroyed (an abort) ends every wait at once; its
  // "Premature close" is never left unhandled.
  const broken = done.then(
    () => new Promise<never>(() => undefined),
    (e: unknown) => {
      throw e;
    },
  );
  broken.catch(() => undefined);
  const off = onAbort(() => pack.destroy(interrupted()));
  const mtime = new Date(metadata.created);
  const add = (name: string, data: Buffer) =>
    Promise.race([
      new Promise<void>((resolve, reject) => {
        if (pack.destroyed) return reject(interrupted());
        const entry = pack.entry({ name, mtime, mode: 0o644 }, data, (err) =>
          err ? reject(err) : resolve(),
        );
        entry.on("error", reject); // destroyed with the pack (an abort)
      }),
      broken,
    ]);
  try {
    await add(DELTA_METADATA_MEMBER, Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`));
    await add(DELTA_CONFIG_MEMBER, config);
    for (const m of members) {
      const size = m.size ?? (await stat(m.file)).size;
      // Large reads: a few big writes into the package instead of hundreds of 64 KiB ones.
      const body =
        m.start === undefined
          ? createReadStream(m.file, { highWaterMark: 4 * 1024 * 1024 })
          : size === 0
            ? Readable.from([])
            : createReadStream(m.file, {
                highWaterMark: 4 * 1024 * 1024,
                start: m.start,
                end: m.start + size - 1,
              });
      await Promise.race([
        new Promise<void>((resolve, reject) => {
          if (pack.destroyed) return reject(interrupted());
          const entry = pack.entry({ name: m.name, size, mtime, mode: 0o644 }, (err) =>
            err ? reject(err) : resolve(),
          );
          body.on("error", reject);
          entry.on("error", reject); // destroyed with the pack (an abort): never an unhandled error
          body.pipe(entry);
        }),
        broken,
      ]).catch((e: unknown) => {
        body.destroy();
        throw e;
      });
    }
    pack.finalize();
    await done;
    await out.commit();
  } catch (e) {
    pack.destroy(e as Error);
    await done.catch(() => {});
    await out.abort();
    throw e;
  } finally {
    off();
  }
  return out.bytesWritten();
}
