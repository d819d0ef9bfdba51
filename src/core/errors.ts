/**
 * The one error type of dockpack.
 *
 * Every failure a user can cause or meet is thrown as a {@link DockpackError} with a stable
 * machine-readable `code` (SCREAMING_SNAKE_CASE, e.g. `PACKAGE_CHECKSUM_MISMATCH`), a message that
 * names the file, layer, volume or other object and says what is wrong, and an optional `hint`
 * that says what to do about it. The CLI maps a DockpackError to exit code 1 (2 when `usage` is
 * set), prints `error: …` and `hint: …` on stderr, and under `--json` prints
 * `{"error":{"code","message","hint"}}` on stdout.
 */

/** Options accepted by {@link DockpackError}. */
export interface DockpackErrorOptions {
  /** What the user can do about it, one sentence. */
  hint?: string;
  /** The underlying error, kept for `--log-level debug`. */
  cause?: unknown;
  /** True for a usage error (bad flag or argument): the CLI exits with 2 instead of 1. */
  usage?: boolean;
  /** Extra structured details (paths, digests, lists) rendered under `--json`. */
  details?: Record<string, unknown>;
}

/** The one error type thrown by the dockpack library. */
export class DockpackError extends Error {
  /** Stable error code, SCREAMING_SNAKE_CASE. Never changes meaning between versions. */
  readonly code: string;
  /** What to do about it, or undefined. */
  readonly hint: string | undefined;
  /** True when this is a usage error (CLI exit code 2). */
  readonly usage: boolean;
  /** Structured details for machine consumers. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: DockpackErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DockpackError";
    this.code = code;
    this.hint = options.hint;
    this.usage = options.usage ?? false;
    this.details = options.details;
  }

  /** The JSON form printed under `--json`: `{ code, message, hint?, details? }`. */
  toJSON(): { code: string; message: string; hint?: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** True when `err` is a {@link DockpackError} (also across module copies). */
export function isDockpackError(err: unknown): err is DockpackError {
  return (
    err instanceof DockpackError || (err instanceof Error && err.name === "DockpackError" && "code" in err)
  );
}

/**
 * Turns any thrown value into a {@link DockpackError}. A DockpackError is returned unchanged;
 * a Node system error (ENOENT, EACCES, ENOSPC, …) becomes a DockpackError with code `FS_<CODE>`
 * and its path in the message; anything else becomes `INTERNAL_ERROR`.
 */
export function toDockpackError(err: unknown): DockpackError {
  if (isDockpackError(err)) return err;
  if (err instanceof Error) {
    const sys = err as NodeJS.ErrnoException;
    if (typeof sys.code === "string" && /^E[A-Z]+$/.test(sys.code)) {
      const hints: Record<string, string> = {
        ENOENT: "Check that the path exists.",
        EACCES: "Check the file permissions, or run as a user who may access it.",
        ENOSPC: "Free some disk space and try again.",
        EEXIST: "Remove it or choose another name.",
      };
      return new DockpackError(`FS_${sys.code}`, err.message, { hint: hints[sys.code], cause: err });
    }
    return new DockpackError("INTERNAL_ERROR", err.message, { cause: err });
  }
  return new DockpackError("INTERNAL_ERROR", String(err));
}
