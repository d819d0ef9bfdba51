/**
 * Volume members of an environment package, read the same way by `validate` and by `import`:
 * decompressed with the codec metadata.json records, capped at the tar size it declares (a
 * decompression bomb stops there), and every entry of the volume tar checked in order by one
 * {@link TarEntryChecker} (no `..`, nothing below an earlier symlink, hardlinks only to earlier
 * files of the same tar, no devices/fifos unless `allowSpecialFiles`).
 */
import { Transform } from "node:stream";
import type { TarEntryProblem } from "../core/archive.js";
import { DockpackError } from "../core/errors.js";

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
        cb(
          new DockpackError(
            "PACKAGE_VOLUME_TOO_LARGE",
            `${label} decompresses to more than the ${max} bytes metadata.json declares.`,
            { hint: "The package is damaged or crafted; do not import it." },
          ),
        );
        return;
      }
      cb(null, chunk);
    },
  });
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
