/**
 * Streaming tar reader over tar-stream: ustar, GNU and PAX (POSIX.1-2001) headers, one entry at
 * a time, never holding an entry's body in memory.
 */
import { Readable } from "node:stream";
import tarStream from "tar-stream";
import { DockpackError } from "../errors.js";

/**
 * A tar entry header as tar-stream decodes it: `name` (PAX `path` applied), `type`
 * (`file`, `directory`, `symlink`, `link`, `character-device`, `block-device`, `fifo`,
 * `contiguous-file`, …), `size` (bytes), `mode` (permission bits incl. setuid/setgid/sticky),
 * `mtime` (Date), `uid`/`gid`, `uname`/`gname`, `linkname` (symlink target or hardlink path).
 */
export type TarHeader = tarStream.Header;

/**
 * Reads the tar stream `input` and calls `onEntry(header, body)` for each entry in order,
 * waiting for the returned promise before going on. `body` streams the entry's bytes (empty for
 * non-files); whatever `onEntry` leaves unread is drained. Resolves after the last entry.
 * Errors: a rejection of `onEntry` stops reading, destroys `input` and is rethrown; a corrupt
 * archive fails with `ARCHIVE_INVALID`; errors of `input` are rethrown.
 */
export async function readTar(
  input: Readable,
  onEntry: (header: TarHeader, body: Readable) => Promise<void>,
): Promise<void> {
  const extract = tarStream.extract();
  let inputError: Error | undefined;
  const onInputError = (err: Error) => {
    inputError = err;
    extract.destroy(err);
  };
  input.on("error", onInputError);
  input.pipe(extract as unknown as NodeJS.WritableStream);
  let fromCaller = false;
  try {
    for await (const entry of extract) {
      await handleEntry(entry, async (header, body) => {
        try {
          await onEntry(header, body);
        } catch (err) {
          fromCaller = true;
          throw err;
        }
      });
    }
  } catch (err) {
    input.unpipe(extract as unknown as NodeJS.WritableStream);
    if (!input.destroyed) input.destroy();
    if (inputError) throw inputError;
    if (!fromCaller && err instanceof Error && !(err instanceof DockpackError)) {
      throw new DockpackError("ARCHIVE_INVALID", `The tar archive is invalid or truncated: ${err.message}`, {
        hint: "Check that the file is a complete tar archive (tar -tvf).",
        cause: err,
      });
    }
    throw err;
  } finally {
    input.off("error", onInputError);
  }
  if (inputError) throw inputError;
}

/** The parts of tar-stream's (streamx) entry stream used here. */
interface EntryStream {
  header: TarHeader;
  // biome-ignore lint/suspicious/noExplicitAny: streamx event listener signature
  on(event: string, listener: (...args: any[]) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: streamx event listener signature
  once(event: string, listener: (...args: any[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

async function handleEntry(
  entry: EntryStream,
  onEntry: (header: TarHeader, body: Readable) => Promise<void>,
): Promise<void> {
  let ended = false;
  let forwarding = true;
  const body = new Readable({
    read() {
      entry.resume();
    },
  });
  // The archive's own error is reported by readTar; a caller that stopped reading must not crash.
  body.on("error", () => undefined);
  entry.on("data", (chunk: Buffer) => {
    if (forwarding && !body.push(chunk)) entry.pause();
  });
  const end = new Promise<void>((resolve, reject) => {
    entry.once("end", () => {
      ended = true;
      if (forwarding) body.push(null);
      resolve();
    });
    entry.once("error", (err: Error) => {
      body.destroy(err);
      reject(err);
    });
  });
  end.catch(() => undefined);
  await onEntry(entry.header, body);
  forwarding = false;
  if (!ended) {
    entry.resume();
    await end;
  }
}
