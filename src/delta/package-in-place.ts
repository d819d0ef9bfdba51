/**
 * A delta package assembled where it is written, for `delta create -m layer` from the engine:
 * the metadata member is reserved at the head of the package (its size estimated from the layer
 * and base counts), the compressed layers are appended by the save's unpacker as they stream
 * (image/save-unpack's `into`), and what remains at the end is to name those members, add the
 * config, fill the metadata in (JSON followed by spaces, which JSON allows) and commit. No layer
 * is copied after the save. When the metadata outgrows its reservation, or a compressed layer
 * is not shipped (a layer the target has that the unpacker could not drop), the caller falls
 * back to writing the package again from these bytes ({@link writeDeltaPackage}).
 *
 * The package is an atomic write (core/fs/atomic: an O_TMPFILE, linked into place at commit), so
 * a kill at any moment leaves no file behind.
 */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { type AppendedMember, PackageTarWriter, type Reservation } from "../core/archive/file-writer.js";
import { createAtomicWriteStream } from "../core/fs.js";
import {
  DELTA_CONFIG_MEMBER,
  DELTA_METADATA_MEMBER,
  type DeltaBaseEntry,
  type DeltaMetadata,
} from "./format.js";

/** A package being assembled in place (see the module doc). */
export interface InPlacePackage {
  /** The writer the save's unpacker appends layers to. */
  writer: PackageTarWriter;
  /** Reserves `bytes` for the metadata member (see {@link metadataReserve}); returns the writer. */
  prepare(bytes: number): Promise<PackageTarWriter>;
  /** True once {@link prepare} ran (the unpacker may have appended layers). */
  prepared(): boolean;
  /**
   * Names the appended members, adds the config, fills the metadata in and commits; returns the
   * package size in bytes, or undefined (nothing committed) when the metadata does not fit or
   * an appended member is not among `members` (the caller writes the package another way).
   * Members without `inPackage` are copied in from their files.
   */
  finish(
    metadata: DeltaMetadata,
    config: Buffer,
    members: { name: string; file: string; inPackage?: AppendedMember }[],
    appended: AppendedMember[],
  ): Promise<number | undefined>;
  /** Discards the package (the target is untouched). Safe to call more than once. */
  abort(): Promise<void>;
}

/**
 * Bytes to reserve for the pretty-printed metadata of an image of `layerCount` layers against
 * `bases` (plus `unknownBases` whose entries are not known yet, at 32 KiB each): each layer row
 * takes under 1 KiB plus the names of the bases that provide it, the bases their diff_id lists
 * (twice their compact JSON for the indentation); rounded up to 4 KiB.
 */
export function metadataReserve(
  layerCount: number,
  bases: DeltaBaseEntry[],
  unknownBases: number,
  sourceRef: string,
): number {
  const names =
    bases.reduce((a, b) => a + (b.repoTags[0] ?? b.id ?? b.ref).length + 8, 0) + unknownBases * 264;
  const est =
    8192 +
    4 * sourceRef.length +
    2 * JSON.stringify(bases).length +
    unknownBases * 32768 +
    layerCount * (1024 + 2 * names);
  return Math.ceil(est / 4096) * 4096;
}

/**
 * Starts an in-place package at `path` (a regular file; `overwrite` as for
 * {@link createAtomicWriteStream}), or returns undefined where the atomic write has no
 * descriptor or /proc/self/fd is missing. Throws as {@link createAtomicWriteStream} does (`FS_EXISTS`, `FS_EACCES`, ...).
 */
export async function startInPlacePackage(
  path: string,
  overwrite: boolean,
): Promise<InPlacePackage | undefined> {
  if (process.platform !== "linux") return undefined;
  const out = createAtomicWriteStream(path, { overwrite });
  if (out.fd === undefined) {
    await out.abort();
    return undefined;
  }
  const self = `/proc/self/fd/${out.fd}`;
  let writer: PackageTarWriter;
  try {
    writer = await PackageTarWriter.attach(await open(self, "r+"), self);
  } catch {
    await out.abort();
    return undefined;
  }
  let reservation: Reservation | undefined;
  let closed = false;
  const abort = async () => {
    if (closed) return;
    closed = true;
    await writer.abort();
    await out.abort();
  };
  return {
    writer,
    async prepare(bytes) {
      reservation = await writer.reserve(DELTA_METADATA_MEMBER, bytes);
      return writer;
    },
    prepared: () => reservation !== undefined,
    async finish(metadata, config, members, appended) {
      if (!reservation) throw new Error("the in-place package was never prepared");
      const json = Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`);
      const named = new Set(members.flatMap((m) => (m.inPackage ? [m.inPackage] : [])));
      if (json.length > reservation.size || appended.some((a) => !named.has(a))) return undefined;
      for (const m of members) {
        if (m.inPackage) await writer.nameAppended(m.inPackage, m.name);
        else await writer.addStream(m.name, createReadStream(m.file, { highWaterMark: 4 * 1024 * 1024 }));
      }
      await writer.addBuffer(DELTA_CONFIG_MEMBER, config);
      await writer.fill(reservation, json);
      await writer.finish();
      closed = true;
      await out.commit();
      return writer.size;
    },
    abort,
  };
}
