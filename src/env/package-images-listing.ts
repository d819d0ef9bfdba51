/**
 * The image section of a package's metadata.json against the members read (names, sha256, sizes).
 * Apart from package-images-check.ts (the image members' own checks, with the delta format's
 * schema) so that verifying a package without images loads no delta code (issue 14 C18).
 */
import type { PackageMetadata } from "./package-format.js";

type Add = (code: string, message: string, member?: string) => void;

/**
 * The image section against metadata.json, once every member was read: each listed image's
 * member present with its recorded sha256 and size, listed once, named under images/, and no
 * images/ member that metadata.json does not list.
 */
export function checkImagesAgainstMetadata(
  meta: PackageMetadata,
  digests: Map<string, { sha256: string; size: number }>,
  order: string[],
  label: string,
  add: Add,
): void {
  const listed = new Set<string>();
  const ids = new Set<string>();
  for (const img of meta.images ?? []) {
    if (listed.has(img.member) || ids.has(img.id) || !/^images\/[^/]+\.delta$/.test(img.member)) {
      add(
        "PACKAGE_METADATA_MISMATCH",
        `${label}: image ${img.id} (${img.member}) is listed twice or misnamed`,
        img.member,
      );
      continue;
    }
    listed.add(img.member);
    ids.add(img.id);
    const got = digests.get(img.member);
    if (!got) add("PACKAGE_MEMBER_MISSING", `${label}: image member '${img.member}' is missing`, img.member);
    else if (got.sha256 !== img.sha256 || got.size !== img.size)
      add(
        "PACKAGE_CHECKSUM_MISMATCH",
        `${label}: image ${img.id} (${img.member}) does not match metadata.json (sha256 or size)`,
        img.member,
      );
  }
  for (const member of order)
    if (member.startsWith("images/") && !listed.has(member))
      add(
        "PACKAGE_MEMBER_UNLISTED",
        `${label}: member '${member}' is not an image listed in metadata.json`,
        member,
      );
}
