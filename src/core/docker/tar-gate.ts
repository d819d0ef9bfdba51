/**
 * The untrusted side of writeVolumeTar: a tar from a package, moved under `dir/` for the engine's
 * `PUT /containers/{id}/archive?path=/`, with every entry read by the strict reader
 * (readTarStrict) and checked by one TarEntryChecker **before any byte of it reaches the engine**.
 *
 * The bytes themselves are not re-packed (tar-stream's extract + pack copied every chunk and cost
 * more time than the engine): they go through the streaming header rewriter (tar-rename.ts:
 * names and hardlink targets renamed, contents passed through as slices), but only up to the
 * offset the strict reader has approved — an entry's headers and content once its header was
 * parsed strictly and checked, the end of the archive once the reader found its end valid. The
 * rewriter therefore only ever sees a prefix of a tar the strict reader accepted, entry for
 * entry, so both read the same entries.
 */
import { PassThrough, type Readable } from "node:stream";
import { normaliseEntryName, TarEntryChecker } from "../archive/checks.js";
import { readTarStrict } from "../archive/strict.js";
import { DockpackError, isDockpackError } from "../errors.js";
import { chunksOf, drained } from "../stream.js";
import { renameTarEntries } from "./tar-rename.js";

const BLOCK = 512;

/** Options of {@link gatedPrefixedTar}. */
export interface GateOptions {
  /** Accept character/block devices and fifos. */
  allowSpecialFiles?: boolean;
}

/** The error for a refused entry (as writeVolumeTar documents). */
function refused(problem: { code: string; reason: string }): DockpackError {
  return new DockpackError(
    problem.code === "ARCHIVE_SPECIAL_FILE" ? "VOLUME_SPECIAL_FILE" : "VOLUME_UNSAFE_ENTRY",
    `Refusing volume tar ${problem.reason}.`,
    {
      hint:
        problem.code === "ARCHIVE_SPECIAL_FILE"
          ? "Device nodes and fifos are refused by default; pass --allow-special-files if you trust the package."
          : "The volume data may be malicious; do not import it.",
      details: { reason: problem.reason },
    },
  );
}

/** A failure of the strict reading as writeVolumeTar reports it. */
function readFailure(err: unknown): DockpackError {
  if (isDockpackError(err) && !String(err.code).startsWith("ARCHIVE_")) return err;
  return new DockpackError(
    "VOLUME_TAR_INVALID",
    `The tar stream for the volume is unreadable: ${(err as Error).message}`,
    { hint: "The volume data is damaged or crafted.", cause: err },
  );
}

/**
 * Returns the tar of `input` with every entry moved under `dir/` (see the module docs); `done`
 * settles when the input was read to its end and every byte was handed on (rejects with
 * `VOLUME_SPECIAL_FILE`, `VOLUME_UNSAFE_ENTRY`, `VOLUME_TAR_INVALID`, or the input's own
 * DockpackError). On a failure the returned stream is destroyed with it.
 */
export function gatedPrefixedTar(
  input: Readable,
  dir: string,
  options: GateOptions = {},
): Readable & { done: Promise<void> } {
  const checker = new TarEntryChecker({ allowSpecialFiles: options.allowSpecialFiles === true });
  const move = (n: string) => {
    const rel = normaliseEntryName(n);
    if (rel === "") return `${dir}/`;
    return `${dir}/${rel}${n.endsWith("/") ? "/" : ""}`;
  };
  const out = renameTarEntries(move);
  const strictIn = new PassThrough({ highWaterMark: 1024 * 1024 });
  /** Input bytes not yet handed to the rewriter, from `queuedAt` on. */
  const queue: Buffer[] = [];
  let queuedAt = 0;
  /** Input offset up to which the strict reader approved the bytes. */
  let approved = 0;
  let failure: DockpackError | undefined;

  const strict = readTarStrict(strictIn, async (entry, body) => {
    const problem = checker.check(entry);
    if (problem) throw refused(problem);
    approved = entry.dataOffset + entry.size + ((BLOCK - (entry.size % BLOCK)) % BLOCK);
    body.resume();
  }).then(() => {
    approved = Number.POSITIVE_INFINITY;
  });
  strict.catch(() => undefined);

  /** Hands the approved queued bytes to the rewriter, waiting while it is full. */
  const release = async () => {
    while (queue.length > 0 && queuedAt < approved) {
      let chunk = queue[0];
      const room = approved - queuedAt;
      if (chunk.length > room) {
        queue[0] = chunk.subarray(room);
        chunk = chunk.subarray(0, room);
      } else queue.shift();
      queuedAt += chunk.length;
      if (!out.write(chunk)) await drained(out);
      if (out.destroyed) throw failure ?? new Error("output closed");
    }
  };

  const run = async () => {
    try {
      // chunk by chunk as they came (the stream's own iterator would concatenate what is buffered)
      for await (const chunk of chunksOf(input)) {
        queue.push(chunk);
        if (!strictIn.write(chunk)) await drained(strictIn);
        await release();
      }
      strictIn.end();
      await strict;
      await release();
      out.end();
    } catch (err) {
      const f = failure ?? readFailure(err);
      failure = f;
      strictIn.destroy();
      out.destroy(f);
      throw f;
    }
  };
  // the strict reader's refusal stops the run at once (it may be waiting on the rewriter)
  strict.catch((err) => {
    failure ??= readFailure(err);
    out.destroy(failure);
    input.destroy();
  });
  const done = run();
  done.catch(() => undefined);
  // the engine request may not listen for errors; they travel through `done`
  out.on("error", () => undefined);
  return Object.assign(out, { done }) as unknown as Readable & { done: Promise<void> };
}
