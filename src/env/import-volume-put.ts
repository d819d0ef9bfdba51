/**
 * The import's upload of a volume tar, written straight onto the engine's Unix socket (issue 17):
 * `PUT /containers/{id}/archive?path=/` of a never-started helper container
 * (core/docker/volumes.ts openVolumeUpload), HTTP/1.1 with a chunked body, one chunk per vectored
 * write of the caller's parts (slices of the buffers it read into, no copy), `Connection: close`.
 *
 * Why not through dockerode: Node's HTTP client wraps every write in its own chunk framing and
 * stream machinery; at a 1 GiB restore that cost more main-thread time than the strict check of
 * the tar. The answer is read whole (at most 64 KiB kept): 200 is success; anything else is the
 * engine's refusal, reported with its message (`VOLUME_FAILED`). An answer that comes early (the
 * engine gave up while the tar was still being sent: no space, a bad tar) ends the upload at once.
 *
 * Only for `unix://` engines (export-archive.ts rawEngineSocket); other engines take
 * writeVolumeTar.
 */
import { connect, type Socket } from "node:net";
import { DockpackError } from "../core/errors.js";
import { engineText } from "./export-archive.js";

/** At most this many bytes of the engine's answer are kept. */
const ANSWER_MAX = 64 * 1024;
const CRLF = Buffer.from("\r\n");

function uploadFailed(volume: string, message: string, cause?: unknown): DockpackError {
  return new DockpackError("VOLUME_FAILED", `Docker volume '${volume}': writing files failed: ${message}`, {
    hint: "Check that the Docker Engine is running and has room for the volume's data.",
    cause,
    details: { volume },
  });
}

/** The body of an answer: its chunked framing removed when it has one. */
function answerBody(head: string, body: Buffer): Buffer {
  if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) return body;
  const parts: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const eol = body.indexOf("\r\n", at);
    if (eol < 0) break;
    const n = Number.parseInt(body.toString("latin1", at, eol), 16);
    if (!Number.isFinite(n) || n <= 0) break;
    parts.push(body.subarray(eol + 2, eol + 2 + n));
    at = eol + 2 + n + 2;
  }
  return Buffer.concat(parts);
}

/** One volume upload over the engine socket (see the module docs). */
export class VolumeUpload {
  private readonly socket: Socket;
  private readonly answer: Buffer[] = [];
  private answerBytes = 0;
  private failure?: unknown;
  /**
   * Settles when the connection is over: resolves after {@link finish} once the engine answered
   * 200; rejects with the engine's refusal (`VOLUME_FAILED`, its message), the connection's
   * failure, or what {@link cut} was given.
   */
  readonly done: Promise<void>;
  private ended = false;
  private cutWith?: unknown;

  /**
   * Connects and sends the request head.
   * @param socketPath the engine's Unix socket
   * @param path the request path (openVolumeUpload's)
   * @param volume the volume's name, for messages
   */
  constructor(
    socketPath: string,
    path: string,
    private readonly volume: string,
  ) {
    this.socket = connect({ path: socketPath, writableHighWaterMark: 1024 * 1024 } as never);
    const socket = this.socket;
    socket.write(
      `PUT ${path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockpack\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
    );
    this.done = new Promise<void>((resolve, reject) => {
      socket.on("data", (d: Buffer) => {
        if (this.answerBytes < ANSWER_MAX) this.answer.push(d.subarray(0, ANSWER_MAX - this.answerBytes));
        this.answerBytes += d.length;
        // an answer before the body was sent whole: the engine gave up (its reason follows)
        if (!this.ended)
          this.failure ??= uploadFailed(volume, "the engine answered before the end of the tar");
      });
      socket.on("error", (err) => {
        this.failure ??= uploadFailed(volume, err.message, err);
      });
      socket.on("close", () => {
        const refusal = this.refusal();
        if (this.cutWith !== undefined) reject(this.cutWith);
        else if (refusal === null && this.ended && this.failure === undefined && this.answer.length > 0)
          resolve();
        else
          reject(refusal ?? this.failure ?? uploadFailed(volume, "the connection closed without an answer"));
      });
    });
    this.done.catch(() => undefined);
  }

  /** The engine's answer as an error (null: none yet, or 200). */
  private refusal(): DockpackError | null {
    if (this.answer.length === 0) return null;
    const all = Buffer.concat(this.answer);
    const end = all.indexOf("\r\n\r\n");
    const head = all.toString("latin1", 0, end < 0 ? Math.min(all.length, 1024) : end);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) return uploadFailed(this.volume, "the engine's answer is not HTTP");
    if (m[1] === "200") return null;
    return uploadFailed(
      this.volume,
      `${m[1]} ${end < 0 ? "" : engineText(answerBody(head, all.subarray(end + 4)))}`.trim(),
    );
  }

  /** Whether the upload failed already (the engine answered early, or the connection failed). */
  get failed(): boolean {
    return this.failure !== undefined || this.socket.destroyed;
  }

  /**
   * Sends `parts` as one chunk of the body, in one vectored write; `done` is called once the
   * socket no longer needs their memory (written, or the upload failed).
   * @returns false when the socket's buffer is full: wait for {@link drained} before the next send
   */
  send(parts: Buffer[], done: () => void): boolean {
    let n = 0;
    for (const p of parts) n += p.length;
    if (n === 0 || this.failed) {
      done();
      return !this.failed;
    }
    const s = this.socket;
    s.cork();
    s.write(`${n.toString(16)}\r\n`);
    for (const p of parts) s.write(p);
    const ok = s.write(CRLF, () => done());
    s.uncork();
    return ok;
  }

  /** Resolves when the socket may take more (or the upload failed). */
  drained(): Promise<void> {
    if (this.failed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const go = () => {
        this.socket.off("drain", go);
        this.socket.off("close", go);
        resolve();
      };
      this.socket.on("drain", go);
      this.socket.on("close", go);
    });
  }

  /**
   * Ends the body and resolves once the engine answered 200 (the files are in the volume).
   * @throws DockpackError `VOLUME_FAILED` with the engine's message or the connection's failure
   */
  finish(): Promise<void> {
    this.ended = true;
    if (!this.socket.destroyed) this.socket.end("0\r\n\r\n");
    return this.done;
  }

  /** Ends the upload at once (the engine discards the request); settles {@link finish}'s promise. */
  cut(err: unknown): Promise<void> {
    this.cutWith ??= err ?? new Error("cut");
    this.failure ??= this.cutWith;
    this.socket.destroy();
    return this.done.catch(() => undefined);
  }
}
