/**
 * The engine-free check of the image section (package-images.ts), run by the one verification
 * read of a package (package-reader.ts) for `validate`, `inspect` and `import`: each `images/`
 * member is read as a dockpack delta package with the strict tar reader while it streams, and
 * checked as `delta apply` checks one before rebuilding, with the same codes:
 * `DELTA_PACKAGE_INVALID` (not a delta package, members inconsistent with its metadata, layer list
 * not the config's diff_ids), `DELTA_FORMAT_UNSUPPORTED`, `DELTA_CONFIG_MISMATCH` (config bytes
 * not matching their digest, or an image ID other than the one metadata.json names),
 * `DIGEST_MISMATCH` (a layer or delta member whose bytes do not match the digest recorded for it).
 * Rebuilt layers are checked against their diff_ids at import (package-images-load.ts), where the
 * receiver's base layers are at hand.
 */
import { PassThrough, type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { readTarStrict } from "../core/archive.js";
import { DigestStream, digestStream, sha256Hex } from "../core/digest.js";
import { toDockpackError } from "../core/errors.js";
import {
  checkDeltaConsistency,
  DELTA_CONFIG_MEMBER,
  DELTA_FORMAT_NAME,
  DELTA_FORMAT_VERSION,
  DELTA_METADATA_LIMIT,
  DELTA_METADATA_MEMBER,
  type DeltaMetadata,
  DeltaMetadataSchema,
} from "../delta/format.js";
import type { PackageImage } from "./package-format.js";

/** Largest image config accepted (bytes); real ones are a few KiB. */
const CONFIG_LIMIT = 4 * 1024 * 1024;

/** What {@link checkImageMember} found: the member's digest and size, and its problems. */
export interface ImageCheck {
  sha256: string;
  size: number;
  problems: { code: string; message: string }[];
}

async function readCapped(body: Readable, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n <= limit) chunks.push(c);
  }
  return n <= limit ? Buffer.concat(chunks) : null;
}

/**
 * Reads one image member's body to its end and checks it (see the module docs). Never throws
 * for bad content: problems are returned. `label` names the package in messages.
 */
export async function checkImageMember(
  body: Readable,
  image: PackageImage,
  label: string,
): Promise<ImageCheck> {
  const where = `${label}: image ${image.id} (${image.member})`;
  const problems: ImageCheck["problems"] = [];
  const note = (code: string, message: string): void => {
    problems.push({ code, message: `${where}: ${message}` });
  };
  const outer = new DigestStream();
  const plain = new PassThrough();
  let innerDone = false;
  // Feeds the inner reader but never fails the outer read: once the inner side ended, bytes are only hashed.
  const feed = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (innerDone || plain.destroyed) return cb();
      if (plain.write(chunk)) cb();
      else plain.once("drain", () => cb());
    },
    final(cb) {
      if (!plain.destroyed) plain.end();
      cb();
    },
  });
  let md: DeltaMetadata | undefined;
  let config: Buffer | null = null;
  const names: string[] = [];
  const digests = new Map<string, { digest: string; size: number }>();
  const inner = readTarStrict(plain, async (entry, b) => {
    const first = names.length === 0;
    names.push(entry.name);
    if (entry.type !== "file") {
      note("DELTA_PACKAGE_INVALID", `member ${entry.name} is a ${entry.type}, not a file`);
      b.resume();
      return;
    }
    if (first && entry.name === DELTA_METADATA_MEMBER) {
      const buf = await readCapped(b, DELTA_METADATA_LIMIT);
      if (buf) md = parseDeltaMetadata(buf, note);
      else note("DELTA_METADATA_TOO_LARGE", `${DELTA_METADATA_MEMBER} is too large`);
      return;
    }
    if (entry.name === DELTA_CONFIG_MEMBER && config === null) {
      config = await readCapped(b, CONFIG_LIMIT);
      if (!config) note("DELTA_PACKAGE_INVALID", `${DELTA_CONFIG_MEMBER} is over ${CONFIG_LIMIT} bytes`);
      return;
    }
    digests.set(entry.name, await digestStream(b));
  })
    .catch((e) => {
      const err = toDockpackError(e);
      note(
        err.code === "ARCHIVE_TRUNCATED" ? "DELTA_PACKAGE_TRUNCATED" : "DELTA_PACKAGE_INVALID",
        `not a readable delta package: ${err.message}`,
      );
    })
    .finally(() => {
      innerDone = true;
      plain.resume();
    });
  await pipeline(body, outer, feed);
  await inner;
  if (problems.length === 0)
    for (const [code, message] of checkDelta(md, config, names, digests, image, where)) note(code, message);
  return { sha256: outer.digest, size: outer.size, problems };
}

function parseDeltaMetadata(
  buf: Buffer,
  note: (code: string, message: string) => void,
): DeltaMetadata | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString("utf8"));
  } catch {
    note("DELTA_PACKAGE_INVALID", `${DELTA_METADATA_MEMBER} is not valid JSON`);
    return undefined;
  }
  const r = raw as { format?: unknown; formatVersion?: unknown } | null;
  if (
    r?.format === DELTA_FORMAT_NAME &&
    typeof r.formatVersion === "number" &&
    r.formatVersion !== DELTA_FORMAT_VERSION
  ) {
    note("DELTA_FORMAT_UNSUPPORTED", `delta format version ${r.formatVersion} is not supported`);
    return undefined;
  }
  const parsed = DeltaMetadataSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    note(
      "DELTA_PACKAGE_INVALID",
      `${DELTA_METADATA_MEMBER} is malformed: ${i?.path.join(".")} ${i?.message}`,
    );
    return undefined;
  }
  return parsed.data;
}

/** The problems of a delta package read whole: `[code, message]` pairs, first the fatal one. */
function checkDelta(
  md: DeltaMetadata | undefined,
  config: Buffer | null,
  names: string[],
  digests: Map<string, { digest: string; size: number }>,
  image: PackageImage,
  where: string,
): [string, string][] {
  if (!md) return [["DELTA_PACKAGE_INVALID", `${DELTA_METADATA_MEMBER} is not the first member`]];
  try {
    checkDeltaConsistency(where, md, names);
  } catch (e) {
    return [["DELTA_PACKAGE_INVALID", toDockpackError(e).message.replace(`${where}: `, "")]];
  }
  if (!config) return [["DELTA_PACKAGE_INVALID", `${DELTA_CONFIG_MEMBER} is missing`]];
  const got = `sha256:${sha256Hex(config)}`;
  if (got !== md.config.digest)
    return [
      ["DELTA_CONFIG_MISMATCH", `the image config has digest ${got}, its metadata says ${md.config.digest}`],
    ];
  if (md.source.id !== image.id)
    return [["DELTA_CONFIG_MISMATCH", `it holds image ${md.source.id}, metadata.json names ${image.id}`]];
  let diffIds: unknown;
  try {
    diffIds = (JSON.parse(config.toString("utf8")) as { rootfs?: { diff_ids?: unknown } })?.rootfs?.diff_ids;
  } catch {
    diffIds = undefined;
  }
  if (!Array.isArray(diffIds) || diffIds.join() !== md.layers.map((l) => l.diffId).join())
    return [["DELTA_PACKAGE_INVALID", "the layer list does not match the config's rootfs.diff_ids"]];
  const out: [string, string][] = [];
  for (const l of md.layers) {
    if (!l.member) continue;
    const d = digests.get(l.member);
    if (!d || d.digest !== l.memberDigest || d.size !== l.memberSize)
      out.push([
        "DIGEST_MISMATCH",
        `member ${l.member} of layer ${l.index} (${l.diffId}) is corrupted: expected ${l.memberDigest}, got ${d?.digest ?? "nothing"}`,
      ]);
  }
  return out;
}

export { checkImagesAgainstMetadata } from "./package-images-listing.js";
