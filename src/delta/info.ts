/**
 * `delta info` and `delta list`: read a package's metadata only (the first tar member), never a
 * layer member, so both are instant whatever the package size.
 */
import { stat } from "node:fs/promises";
import { z } from "zod";
import { DELTA_FORMAT_VERSION, type DeltaMetadata, openDeltaPackage } from "./format.js";

/** Input of {@link deltaInfo} and {@link deltaList}. */
export const DeltaInfoOptionsSchema = z.object({ package: z.string().describe("the delta package file") });

/** Result of {@link deltaInfo}. Sizes in bytes; fractions 0–1. */
export interface DeltaInfo {
  package: string;
  formatVersion: number;
  dockpackVersion: string;
  created: string;
  source: DeltaMetadata["source"];
  bases: { ref: string; kind: string; id?: string; repoTags: string[]; layers: number }[];
  method: DeltaMetadata["method"];
  compression: DeltaMetadata["compression"];
  level?: number;
  layers: { total: number; reused: number; delta: number; full: number; duplicate: number };
  /** Σ uncompressed distinct layers + config. */
  imageSize: number;
  /** Size of the package file. */
  packageSize: number;
  /** Estimated `docker save` size of the image. */
  dockerSaveSize: number;
  /** Measured `docker save | gzip` size, when measured at create. */
  dockerSaveGzipSize?: number;
  /** packageSize / dockerSaveSize. */
  fractionOfDockerSave: number;
  /** packageSize / dockerSaveGzipSize, when measured. */
  fractionOfDockerSaveGzip?: number;
}

/** One row of {@link deltaList}. */
export interface DeltaListRow {
  index: number;
  diffId: string;
  /** Uncompressed layer size. */
  size: number;
  ship: "reused" | "delta" | "full" | "duplicate";
  /** Human summary: "reused (in img:1)", "xdelta3 against sha256:… (img:1 layer)", "full", "same as layer 2". */
  how: string;
  /** Bytes this layer takes in the package. */
  packageBytes: number;
  reason?: string;
}

/**
 * Summarises a package (see {@link DeltaInfo}). Throws the errors of `openDeltaPackage`
 * (`DELTA_PACKAGE_NOT_FOUND`, `DELTA_PACKAGE_TRUNCATED`, `DELTA_PACKAGE_INVALID`, `DELTA_FORMAT_UNSUPPORTED`).
 */
export async function deltaInfo(input: z.input<typeof DeltaInfoOptionsSchema>): Promise<DeltaInfo> {
  const { package: path } = DeltaInfoOptionsSchema.parse(input);
  const { metadata: md } = await openDeltaPackage(path);
  const packageSize = (await stat(path)).size;
  const count = (k: string) => md.layers.filter((l) => l.ship === k).length;
  const t = md.totals;
  return {
    package: path,
    formatVersion: md.formatVersion ?? DELTA_FORMAT_VERSION,
    dockpackVersion: md.dockpackVersion,
    created: md.created,
    source: md.source,
    bases: md.bases.map((b) => ({
      ref: b.ref,
      kind: b.kind,
      id: b.id,
      repoTags: b.repoTags,
      layers: b.diffIds.length,
    })),
    method: md.method,
    compression: md.compression,
    level: md.level,
    layers: {
      total: md.layers.length,
      reused: count("reused"),
      delta: count("delta"),
      full: count("full"),
      duplicate: count("duplicate"),
    },
    imageSize: t.imageSize,
    packageSize,
    dockerSaveSize: t.dockerSaveSize,
    ...(t.dockerSaveGzipSize ? { dockerSaveGzipSize: t.dockerSaveGzipSize } : {}),
    fractionOfDockerSave: packageSize / Math.max(1, t.dockerSaveSize),
    ...(t.dockerSaveGzipSize ? { fractionOfDockerSaveGzip: packageSize / t.dockerSaveGzipSize } : {}),
  };
}

/** Describes how one layer ships, for humans. */
export function describeShip(l: DeltaMetadata["layers"][number]): string {
  if (l.ship === "reused") return `reused (target has it: ${(l.providers ?? []).join(", ")})`;
  if (l.ship === "duplicate") return `same as layer ${l.sameAs}`;
  if (l.ship === "delta")
    return `${l.method} delta against ${l.base?.diffId.slice(0, 19)} (${l.base?.image})`;
  if (l.base) return `full or a delta against ${l.base.diffId.slice(0, 19)} (${l.base.image}) (dry run)`;
  return `full (${l.codec})`;
}

/** Lists a package's layers (see {@link DeltaListRow}); same errors as {@link deltaInfo}. */
export async function deltaList(
  input: z.input<typeof DeltaInfoOptionsSchema>,
): Promise<{ package: string; layers: DeltaListRow[] }> {
  const { package: path } = DeltaInfoOptionsSchema.parse(input);
  const { metadata: md } = await openDeltaPackage(path);
  return {
    package: path,
    layers: md.layers.map((l) => ({
      index: l.index,
      diffId: l.diffId,
      size: l.size,
      ship: l.ship,
      how: describeShip(l),
      packageBytes: l.memberSize ?? 0,
      ...(l.reason || l.methodReason
        ? { reason: [l.reason, l.methodReason].filter(Boolean).join("; ") }
        : {}),
    })),
  };
}
