/**
 * The export's fast read of a volume (issue 17): the engine's archive of a never-started helper
 * container (`GET /containers/{id}/archive?path=/data/.`, core/docker/volumes.ts
 * openVolumeArchive) read straight off the engine's Unix socket.
 *
 * Why not through dockerode: Node's HTTP client allocates a fresh buffer for every socket read
 * and its parser copies every body chunk again; on a 1 GiB volume that alone cost ~3.5 s of
 * main-thread CPU, against ~0.3 s here. The request is sent as HTTP/1.0, so the engine (Go's
 * net/http) answers with the plain tar up to the end of the connection (no chunked framing);
 * the socket reads into buffers the caller lends (`onread`, no allocation per read), the entry
 * names are rewritten by {@link TarRenamer} synchronously, and the rewritten bytes — slices of
 * that buffer plus fresh header blocks — go to the caller's sink. The tar must end with its end-of-archive block: a connection that
 * closes before it is an error, never a short volume.
 *
 * Only for `unix://` engines (DOCKER_HOST unset or `unix://…`); other engines take
 * readVolumeTar's stream.
 */
import { connect, type Socket } from "node:net";
import { interrupted, onAbort } from "../core/abort.js";
import { dockerHost } from "../core/docker/client.js";
import { TarRenamer } from "../core/docker/tar-rename.js";
import { openVolumeArchive } from "../core/docker/volumes.js";
// records each helper container before its create request (crash recovery)
import "./helper-ledger.js";
import { DockpackError } from "../core/errors.js";
import { onCleanup } from "../core/fs.js";

/** Bytes per socket read (the reused buffer). */
export const ARCHIVE_READ_BYTES = 256 * 1024;
/** At most this many bytes of an error answer are kept. */
const ERROR_BODY_MAX = 64 * 1024;

/** Where the rewritten tar goes; it lends the buffers the socket reads into. */
export interface ArchiveSink {
  /** A buffer of {@link ARCHIVE_READ_BYTES} for the next read (lent until `take` is done with it). */
  next(): Buffer;
  /**
   * The rewritten bytes of one read, in order: slices of `buffer` (the one {@link next} lent)
   * and fresh header blocks. Returns null when {@link next} may be called again at once, else a
   * promise resolving when it may (the socket waits meanwhile).
   */
  take(parts: Buffer[], buffer: Buffer): Promise<void> | null;
}

/** The engine's Unix socket when the fast read applies (see the module docs), else null. */
export function rawEngineSocket(): string | null {
  const host = dockerHost();
  if (!host.startsWith("unix://")) return null;
  return host.slice("unix://".length) || "/var/run/docker.sock";
}

function volumeFailed(volume: string, message: string, cause?: unknown): DockpackError {
  return new DockpackError("VOLUME_FAILED", `Docker volume '${volume}': reading files failed: ${message}`, {
    hint: "Check that the Docker Engine is running and the volume is not in a broken state.",
    cause,
    details: { volume },
  });
}

/** The engine's error text from an answer body (`{"message": …}`), else the body as text. */
export function engineText(body: Buffer): string {
  const text = body.toString("utf8").trim();
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof m === "string") return m;
  } catch {
    // not JSON
  }
  return text.slice(0, 500) || "no message";
}

/** One volume's archive download, read as the module docs say. */
export class VolumeArchiveDownload {
  private socket?: Socket;
  private failure?: (err: unknown) => void;
  private cutReason?: unknown;

  private constructor(
    private readonly volume: string,
    private readonly socketPath: string,
    private readonly archive: Awaited<ReturnType<typeof openVolumeArchive>>,
  ) {}

  /**
   * Creates the helper container of `volume`.
   * @throws DockpackError `VOLUME_NOT_FOUND`, `VOLUME_FAILED`
   */
  static async open(volume: string, socketPath: string): Promise<VolumeArchiveDownload> {
    return new VolumeArchiveDownload(volume, socketPath, await openVolumeArchive(volume));
  }

  /**
   * Ends the download with `err` (or removes the container when it never started): the pending
   * {@link run} rejects with it.
   */
  cut(err: unknown): void {
    this.cutReason ??= err;
    this.failure?.(err);
    this.socket?.destroy();
  }

  /** Removes the helper container (idempotent, never throws); call once the download settled. */
  release(): Promise<void> {
    return this.archive.release();
  }

  /**
   * Downloads the archive into `sink` (entry names rewritten as readVolumeTar's) and resolves
   * once its end-of-archive block and the end of the connection were read.
   * @param progress called with the byte count of each read
   * @throws DockpackError `VOLUME_FAILED` (the engine refused, the connection failed or closed
   *   before the end of the tar), `INTERRUPTED`, the sink's errors, or what {@link cut} passed
   */
  run(sink: ArchiveSink, progress: (n: number) => void): Promise<void> {
    const { volume } = this;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const unhook: Array<() => void> = [];
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        for (const u of unhook) u();
        this.socket?.destroy();
        reject(err);
      };
      if (this.cutReason !== undefined) {
        fail(this.cutReason);
        return;
      }
      this.failure = fail;
      // the engine holds the container's lock while a download is open, so a removal waits for
      // it: on SIGINT/SIGTERM or process exit the download is cut first (cleanups run newest first)
      unhook.push(
        onCleanup(() => {
          this.socket?.destroy();
        }),
      );
      unhook.push(onAbort(() => fail(interrupted())));
      let parts: Buffer[] = [];
      const renamer = new TarRenamer(this.archive.rename, (b) => parts.push(b));
      let lent: Buffer | undefined;
      let head: Buffer | null = Buffer.alloc(0);
      let status = 0;
      const errorBody: Buffer[] = [];
      let errorBytes = 0;
      /** The read's buffer back to the sink, nothing of it used (its bytes were copied). */
      const giveBack = (): boolean => paused(sink.take([], lent as Buffer));
      /** The callback's answer for a take: false (the socket pauses) until its promise resolves. */
      const paused = (waiting: Promise<void> | null): boolean => {
        if (!waiting) return true;
        waiting.then(() => {
          if (!settled) this.socket?.resume();
        }, fail);
        return false;
      };
      const onData = (data: Buffer): boolean => {
        if (status !== 200) {
          if (errorBytes < ERROR_BODY_MAX) {
            errorBody.push(Buffer.from(data.subarray(0, ERROR_BODY_MAX - errorBytes)));
            errorBytes += data.length;
          }
          return giveBack();
        }
        progress(data.length);
        renamer.write(data);
        const out = parts;
        parts = [];
        return paused(sink.take(out, lent as Buffer));
      };
      const socket = connect({
        path: this.socketPath,
        onread: {
          buffer: () => {
            lent = sink.next();
            return lent;
          },
          callback: (n: number, buf: Uint8Array): boolean => {
            if (settled) return false;
            try {
              let data = Buffer.from(buf.buffer, buf.byteOffset, n);
              if (head) {
                // the answer's head may span reads: copied, the buffer is reused
                const all = Buffer.concat([head, data]);
                const end = all.indexOf("\r\n\r\n");
                if (end < 0) {
                  if (all.length > 64 * 1024)
                    throw volumeFailed(volume, "the engine's answer has no end of headers");
                  head = all;
                  return giveBack();
                }
                const m = /^HTTP\/1\.[01] (\d{3})/.exec(all.toString("latin1", 0, Math.min(end, 64)));
                if (!m) throw volumeFailed(volume, "the engine's answer is not HTTP");
                status = Number(m[1]);
                const headers = all.toString("latin1", 0, end).toLowerCase();
                if (status === 200 && /\r\ntransfer-encoding:\s*(?!identity)/.test(headers))
                  throw volumeFailed(volume, "the engine answered with a transfer encoding");
                head = null;
                data = all.subarray(end + 4);
                if (data.length === 0) return giveBack();
              }
              return onData(data);
            } catch (err) {
              fail(err);
              return false;
            }
          },
        },
      });
      this.socket = socket;
      socket.on("connect", () => {
        socket.write(`GET ${this.archive.path} HTTP/1.0\r\nHost: docker\r\nUser-Agent: dockpack\r\n\r\n`);
      });
      socket.on("error", (err) => fail(volumeFailed(volume, err.message, err)));
      socket.on("end", () => {
        if (head) fail(volumeFailed(volume, "the engine closed the connection without an answer"));
        else if (status !== 200)
          fail(volumeFailed(volume, `${status} ${engineText(Buffer.concat(errorBody))}`));
        else if (!renamer.ended)
          fail(volumeFailed(volume, "the archive ended before its end-of-archive block"));
        else {
          try {
            renamer.end();
          } catch (err) {
            fail(err);
            return;
          }
          settled = true;
          for (const u of unhook) u();
          resolve();
        }
      });
      socket.on("close", () => fail(volumeFailed(volume, "the connection to the engine closed early")));
    });
  }
}

/**
 * The downloads of an export's volumes, in order, each helper container created while the
 * volume before it streams and removed while the one after it streams (the engine's create and
 * remove, ~0.1-0.3 s each, leave the critical path). {@link close} removes every container this
 * made, used or not; call it in a `finally`.
 */
export class VolumeDownloads {
  private readonly opened: Promise<VolumeArchiveDownload>[] = [];
  private readonly released: Promise<void>[] = [];
  private index = 0;

  /** @param sources the Docker volumes, in the order {@link next} is called */
  constructor(
    private readonly sources: string[],
    private readonly socketPath: string,
  ) {}

  private open(i: number): Promise<VolumeArchiveDownload> {
    if (!this.opened[i]) {
      this.opened[i] = VolumeArchiveDownload.open(this.sources[i], this.socketPath);
      this.opened[i].catch(() => undefined);
    }
    return this.opened[i];
  }

  /** Starts creating the first volume's container (before {@link next} is called). */
  prefetch(): void {
    if (this.sources.length > 0) void this.open(0);
  }

  /**
   * The download of the next volume (its container created now unless prefetched), and the
   * creation of the one after it started.
   * @throws DockpackError `VOLUME_NOT_FOUND`, `VOLUME_FAILED`
   */
  async next(): Promise<VolumeArchiveDownload> {
    const i = this.index++;
    const download = this.open(i);
    if (i + 1 < this.sources.length) void this.open(i + 1);
    return download;
  }

  /** Starts removing a used download's container (awaited by {@link close}). */
  done(download: VolumeArchiveDownload): void {
    this.released.push(download.release());
  }

  /** Removes every container made (used or prefetched); never throws. */
  async close(): Promise<void> {
    for (const p of this.opened)
      this.released.push(
        p.then(
          (d) => d.release(),
          () => undefined,
        ),
      );
    await Promise.all(this.released);
  }
}
