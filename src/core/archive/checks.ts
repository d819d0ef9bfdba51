/**
 * Checks for the entries of an untrusted tar that is about to be written somewhere (a Docker
 * volume): one {@link TarEntryChecker} per archive, fed every entry in order, so that validation
 * and restore apply the very same rules.
 *
 * Rules: names relative without `..` (the root `./` allowed as a directory); no entry twice; no
 * entry below an earlier symlink or regular file of the same archive (so nothing is written
 * through a link the archive created); hardlinks only to an earlier regular-file entry of the same
 * archive; character and block devices and fifos refused unless `allowSpecialFiles`.
 */
import { checkEntryPath } from "./extract.js";
import type { StrictTarEntry } from "./strict.js";

/** Options of {@link TarEntryChecker}. */
export interface TarEntryCheckOptions {
  /** Accept character/block devices and fifos (default false). */
  allowSpecialFiles?: boolean;
}

/** Why an entry is refused: `ARCHIVE_SPECIAL_FILE` or `ARCHIVE_UNSAFE_ENTRY`, and the reason. */
export interface TarEntryProblem {
  code: "ARCHIVE_SPECIAL_FILE" | "ARCHIVE_UNSAFE_ENTRY";
  reason: string;
}

/** `./a//b/` → `a/b`; `./` → "". */
export function normaliseEntryName(name: string): string {
  return name
    .split("/")
    .filter((p) => p !== "" && p !== ".")
    .join("/");
}

/** Applies the rules of the module docs to the entries of one archive, in order. */
export class TarEntryChecker {
  private readonly seen = new Set<string>();
  private readonly files = new Set<string>();
  private readonly leaves = new Set<string>();

  constructor(private readonly options: TarEntryCheckOptions = {}) {}

  /** The problem with `entry` (given after every earlier entry of the archive), or null. */
  check(entry: Pick<StrictTarEntry, "name" | "type" | "linkname">): TarEntryProblem | null {
    const unsafe = (reason: string): TarEntryProblem => ({ code: "ARCHIVE_UNSAFE_ENTRY", reason });
    const bad = checkEntryPath(entry.name);
    if (bad) return unsafe(`entry '${entry.name}': ${bad}`);
    const rel = normaliseEntryName(entry.name);
    if (rel === "") return entry.type === "directory" ? null : unsafe(`entry '${entry.name}' names the root`);
    if (this.seen.has(rel)) return unsafe(`entry '${rel}' appears twice`);
    this.seen.add(rel);
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (this.leaves.has(p)) return unsafe(`entry '${rel}' lies below '${p}', which is not a directory`);
    }
    switch (entry.type) {
      case "character-device":
      case "block-device":
      case "fifo":
        if (!this.options.allowSpecialFiles)
          return {
            code: "ARCHIVE_SPECIAL_FILE",
            reason: `entry '${rel}' is a ${entry.type.replace("-", " ")}`,
          };
        break;
      case "link": {
        const bad = checkEntryPath(entry.linkname);
        const target = normaliseEntryName(entry.linkname);
        if (bad || !this.files.has(target))
          return unsafe(
            `hardlink '${rel}' → '${entry.linkname}' does not name an earlier file of the archive`,
          );
        break;
      }
      case "file":
        this.files.add(rel);
        break;
    }
    if (entry.type !== "directory") this.leaves.add(rel);
    return null;
  }
}
