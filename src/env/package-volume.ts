/**
 * Volume members of an environment package, read the same way by `validate` and by `import`:
 * decompressed with the codec metadata.json records, capped at the tar size it declares (a
 * decompression bomb stops there), and every entry of the volume tar checked in order by one
 * {@link TarEntryChecker} (no `..`, nothing below an earlier symlink, hardlinks only to earlier
 * files of the same tar, no devices/fifos unless `allowSpecialFiles`).
 */
import { Transform } from "node:stream";
import type { TarEntryProblem } from "../core/archive/checks.js";
import { DockpackError, toDockpackError } from "../core/errors.js";

/**
 * A transform that passes at most `max` bytes and fails with `PACKAGE_VOLUME_TOO_LARGE` when more
 * arrive (`label` names the member).
 */
export function capBytes(max: number, label: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) {
        cb(volumeTooLarge(max, label));
        return;
      }
      cb(null, chunk);
    },
  });
}

/** `PACKAGE_VOLUME_TOO_LARGE`: `label` decompressed to more than the `max` bytes declared. */
export function volumeTooLarge(max: number, label: string): DockpackError {
  return new DockpackError(
    "PACKAGE_VOLUME_TOO_LARGE",
    `${label} decompresses to more than the ${max} bytes metadata.json declares.`,
    { hint: "The package is damaged or crafted; do not import it." },
  );
}

/** The package problem code for a volume tar entry problem. */
export function volumeProblemCode(p: TarEntryProblem): string {
  return p.code === "ARCHIVE_SPECIAL_FILE" ? "PACKAGE_SPECIAL_FILE" : "PACKAGE_UNSAFE_PATH";
}

/** The package problem code for an error met while reading an archive strictly. */
export function archiveProblemCode(code: string): string {
  switch (code) {
    case "ARCHIVE_TRUNCATED":
      return "PACKAGE_TRUNCATED";
    case "ARCHIVE_TRAILING_DATA":
      return "PACKAGE_TRAILING_DATA";
    case "ARCHIVE_TYPE_SIZE_MISMATCH":
    case "ARCHIVE_UNSUPPORTED_TYPE":
      return "PACKAGE_MEMBER_TYPE_INVALID";
    default:
      return "PACKAGE_UNREADABLE";
  }
}

/**
 * The problem `validate` reports for a failure met while a volume member's tar was decompressed
 * and read: `PACKAGE_VOLUME_INVALID` naming the cap it went past, the tar's defect or the codec's
 * complaint (the member's `codec`).
 */
export function volumeReadProblem(e: unknown, v: { codec: string }): { code: string; message: string } {
  const err = toDockpackError(e);
  if (err.code === "PACKAGE_VOLUME_TOO_LARGE")
    return { code: "PACKAGE_VOLUME_INVALID", message: err.message };
  if (err.code.startsWith("ARCHIVE_"))
    return { code: "PACKAGE_VOLUME_INVALID", message: `its tar cannot be read: ${err.message}` };
  return {
    code: "PACKAGE_VOLUME_INVALID",
    message: `it cannot be decompressed as ${v.codec}: ${err.message}`,
  };
}
