/**
 * Per-layer binary delta methods. Each works on files (layers are never held in memory) and
 * calls the program that implements it:
 *
 * - `xdelta3` — VCDIFF (RFC 3284) via `xdelta3 -e -S none -B <window>`; the source window is
 *   sized to the old layer (xdelta3 caps it at 2 GiB), so matches anywhere in the old layer are
 *   found. When the package codec compresses the patch afterwards, xdelta3 runs with `-0`
 *   (source matches only, XD3_NOCOMPRESS): the codec finds the repeats inside the new bytes
 *   better and 3–4× faster than xdelta3's own matcher. The decoder is the same for both.
 * - `bsdiff` — Colin Percival's bsdiff 4 (suffix sorting; output is bzip2-compressed inside);
 *   needs about 17× the old layer in memory and about a second of CPU per MiB, so it runs only
 *   on base layers up to {@link bsdiffLimit} ({@link BSDIFF_MAX_BASE} at most).
 * - `zstd` — `zstd --patch-from=OLD` (the old layer as a dictionary); long-distance mode with a
 *   window covering both files on both ends above 128 MiB, level {@link ZSTD_PATCH_LEVEL} unless
 *   `-c zstd -l N` is given, on all cores. The output is zstd already.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { freemem } from "node:os";
import { pipeline } from "node:stream/promises";
import { capBytes } from "../core/codec.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { requireProgram, run } from "../core/exec.js";

/** Binary delta methods. */
export type DeltaMethod = "xdelta3" | "bsdiff" | "zstd";
/** Every {@link DeltaMethod}. */
export const DELTA_METHODS: readonly DeltaMethod[] = ["xdelta3", "bsdiff", "zstd"];

/** Largest xdelta3 source window in bytes (xdelta3's limit, 2 GiB). */
export const XDELTA3_MAX_WINDOW = 2 ** 31;
/** Above this many bytes zstd uses long-distance mode on both ends (128 MiB). */
export const ZSTD_LONG_THRESHOLD = 128 * 1024 * 1024;
/**
 * zstd level of `--patch-from` patches unless `-c zstd -l N` says otherwise: 3. On the bench
 * pair it wrote smaller patches than 9 (64 against 71 KiB on the text layer; 40.1 against
 * 39.7 KiB on the binary one) in a third of the CPU: long-distance matching against the old
 * layer finds the shared bytes, the level only tunes the rest.
 */
export const ZSTD_PATCH_LEVEL = 3;
/** bsdiff's memory need as a multiple of the old layer size. */
export const BSDIFF_MEMORY_FACTOR = 17;
/**
 * Largest base layer bsdiff is ever run on, whatever the free memory: 32 MiB, so at most about
 * 17 × 32 MiB ≈ 550 MB of memory and half a minute of CPU per layer (a 115 MiB layer took
 * 1.0 GB and minutes). Above it `-m bsdiff` falls back to xdelta3 for that layer.
 */
export const BSDIFF_MAX_BASE = 32 * 1024 * 1024;
/** `auto` runs bsdiff only when the base and new layer are both at most this size (1 MiB: under a second). */
export const AUTO_BSDIFF_MAX = 1024 * 1024;
/** `auto` ships a layer whole, without trying a delta, when its closest base layer shares less than this fraction of its bytes. */
export const AUTO_MIN_SHARED = 0.05;

/** Method parameters recorded in the package so apply uses the same settings. */
export interface MethodParams {
  /** xdelta3 source window (`-B`) in bytes. */
  window?: number;
  /** zstd window log (`--long=N`) when long mode is on. */
  windowLog?: number;
}

/** xdelta3 `-B` for an old layer of `oldSize` bytes: the layer size rounded up to 1 MiB, 16 MiB–2 GiB. */
export function xdelta3Window(oldSize: number): number {
  const mib = 1024 * 1024;
  return Math.min(XDELTA3_MAX_WINDOW, Math.max(16 * mib, Math.ceil(oldSize / mib) * mib));
}

/** zstd window log covering `bytes` (27–31), or undefined when long mode is not needed. */
export function zstdWindowLog(bytes: number): number | undefined {
  if (bytes <= ZSTD_LONG_THRESHOLD) return undefined;
  return Math.min(31, Math.max(27, Math.ceil(Math.log2(bytes + 1))));
}

/** Largest old layer (bytes) bsdiff may take: free memory × 0.8 / 17, and never above {@link BSDIFF_MAX_BASE}. */
export function bsdiffLimit(): number {
  return Math.min(BSDIFF_MAX_BASE, Math.floor((freemem() * 0.8) / BSDIFF_MEMORY_FACTOR));
}

/** True when `method` can diff an old layer of `oldSize` bytes on this machine. */
export function methodFits(method: DeltaMethod, oldSize: number): boolean {
  if (method === "bsdiff") return oldSize <= bsdiffLimit();
  if (method === "xdelta3") return true; // beyond 2 GiB it still works, with fewer matches
  return oldSize < 2 ** 31;
}

/**
 * Throws `DELTA_BSDIFF_TOO_LARGE` when bsdiff cannot take an old layer of `oldSize` bytes.
 * @param layer the diff_id, for the message
 */
export function checkBsdiff(oldSize: number, layer: string): void {
  const limit = bsdiffLimit();
  if (oldSize > limit) {
    throw new DockpackError(
      "DELTA_BSDIFF_TOO_LARGE",
      `bsdiff needs about ${BSDIFF_MEMORY_FACTOR}× the old layer in memory: base layer ${layer} is ${oldSize} bytes, the limit on this machine is ${limit} bytes (at most ${BSDIFF_MAX_BASE}).`,
      { hint: "Use --method xdelta3 or --method zstd (or auto) for large layers." },
    );
  }
}

/**
 * Writes a delta from `oldFile` to `newFile` into `patchFile` and returns the parameters apply
 * needs. Sizes in bytes. Throws `PROGRAM_MISSING`, `COMMAND_FAILED`, `DELTA_BSDIFF_TOO_LARGE`.
 * @param level zstd level for the zstd method (1–22; default {@link ZSTD_PATCH_LEVEL})
 * @param sourceOnly xdelta3: match against the old layer only (`-0`), for a patch the caller
 *   compresses afterwards (see the module doc); the patch decodes the same way
 */
export async function encodeDelta(
  method: DeltaMethod,
  oldFile: string,
  oldSize: number,
  newFile: string,
  newSize: number,
  patchFile: string,
  level = ZSTD_PATCH_LEVEL,
  sourceOnly = false,
): Promise<MethodParams> {
  if (method === "xdelta3") {
    const window = xdelta3Window(oldSize);
    const lvl = sourceOnly ? ["-0"] : [];
    await run("xdelta3", [
      "-e",
      "-f",
      ...lvl,
      "-S",
      "none",
      "-B",
      String(window),
      "-s",
      oldFile,
      newFile,
      patchFile,
    ]);
    return { window };
  }
  if (method === "bsdiff") {
    checkBsdiff(oldSize, oldFile);
    await run("bsdiff", [oldFile, newFile, patchFile]);
    return {};
  }
  const windowLog = zstdWindowLog(Math.max(oldSize, newSize));
  const lvl = Math.min(22, Math.max(1, level));
  await run("zstd", [
    "-q",
    "-f",
    "-T0",
    ...(lvl > 19 ? ["--ultra"] : []),
    `-${lvl}`,
    ...(windowLog ? [`--long=${windowLog}`] : []),
    `--patch-from=${oldFile}`,
    newFile,
    "-o",
    patchFile,
  ]);
  return windowLog ? { windowLog } : {};
}

/** The method a layer is diffed with, and why when it is not simply the one asked for. */
export interface MethodPick {
  /** undefined: no delta is worth trying (auto, too little shared). */
  method: DeltaMethod | undefined;
  reason?: string;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 2 : 1)} MiB`;

/**
 * Picks the delta method for one layer before running any (so `auto` costs one method's time,
 * not the sum of all):
 * - `bsdiff` asked for a base layer above {@link bsdiffLimit} → xdelta3, saying so;
 * - `auto`: no delta when the closest base layer shares less than {@link AUTO_MIN_SHARED} of the
 *   new layer's bytes (`sharedBytes`, from the tar headers: see similarity.ts); bsdiff when both
 *   layers are at most {@link AUTO_BSDIFF_MAX} (best ratio on binaries, cheap at that size);
 *   else xdelta3 (matches anywhere in the base layer, at disk speed, in bounded memory).
 * Sizes in bytes.
 */
export function pickMethod(
  requested: DeltaMethod | "auto",
  oldSize: number,
  newSize: number,
  sharedBytes: number,
): MethodPick {
  const limit = bsdiffLimit();
  if (requested === "bsdiff") {
    if (oldSize <= limit) return { method: "bsdiff" };
    return {
      method: "xdelta3",
      reason: `bsdiff fell back to xdelta3: the base layer (${mib(oldSize)}) is above bsdiff's limit of ${mib(limit)} (it needs about ${BSDIFF_MEMORY_FACTOR}× the base layer in memory)`,
    };
  }
  if (requested !== "auto") return { method: requested };
  const fraction = newSize > 0 ? Math.min(1, sharedBytes / newSize) : 0;
  const shared = `has ${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)}% of its bytes in paths the base layer also has`;
  if (fraction < AUTO_MIN_SHARED)
    return {
      method: undefined,
      reason: `auto: no delta, the layer ${shared} (below ${AUTO_MIN_SHARED * 100}%): a delta would not be smaller`,
    };
  if (Math.max(oldSize, newSize) <= Math.min(AUTO_BSDIFF_MAX, limit))
    return {
      method: "bsdiff",
      reason: `auto: bsdiff, both layers are at most ${mib(AUTO_BSDIFF_MAX)} (best ratio, under a second); the layer ${shared}`,
    };
  return {
    method: "xdelta3",
    reason: `auto: xdelta3, the layers (${mib(oldSize)} → ${mib(newSize)}) are above ${mib(AUTO_BSDIFF_MAX)}, where bsdiff takes about a second per MiB and ${BSDIFF_MEMORY_FACTOR}× memory; the layer ${shared}`,
  };
}

/**
 * Reads the header of a bsdiff 4 patch (`BSDIFF40`, control and diff block lengths, new file
 * size; 64-bit sign-magnitude little-endian, as bspatch.c `offtin`). Returns undefined when the
 * file is not such a patch.
 */
export async function bsdiffNewSize(patchFile: string): Promise<number | undefined> {
  const fh = await open(patchFile, "r");
  try {
    const head = Buffer.alloc(32);
    const { bytesRead } = await fh.read(head, 0, 32, 0);
    if (bytesRead < 32 || head.toString("latin1", 0, 8) !== "BSDIFF40") return undefined;
    const offtin = (at: number): number => {
      const hi = head.readUInt32LE(at + 4);
      const v = (hi & 0x7fffffff) * 2 ** 32 + head.readUInt32LE(at);
      return hi & 0x80000000 ? -v : v;
    };
    return offtin(24);
  } finally {
    await fh.close();
  }
}

/**
 * Runs `program args…` whose output goes to its standard output into `outFile`, failing with
 * `CODEC_OUTPUT_TOO_LARGE` (and killing the program) at the first byte past `maxBytes`.
 * Throws `COMMAND_FAILED` with the tail of stderr when it exits non-zero.
 */
async function runToFile(
  program: string,
  args: string[],
  outFile: string,
  maxBytes: number,
  label: string,
): Promise<void> {
  const child = spawn(requireProgram(program), args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => {
    stderr = (stderr + d).slice(-4096);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve(code));
  });
  try {
    await pipeline(child.stdout, capBytes(maxBytes, label), createWriteStream(outFile));
  } catch (e) {
    child.kill("SIGKILL");
    await exited.catch(() => undefined);
    throw e;
  }
  const code = await exited;
  if (code !== 0) {
    const tail = stderr.trim().split("\n").slice(-8).join("\n");
    throw new DockpackError(
      "COMMAND_FAILED",
      `${label}: '${program} ${args.join(" ")}' failed with exit code ${code}${tail ? `:\n${tail}` : ""}`,
      {
        hint: "The patch is corrupted or forged, or was made against other base bytes; copy the package again.",
        details: { program, args, exitCode: code, stderr: tail },
      },
    );
  }
}

/**
 * Checks a patch's recorded parameters against those {@link encodeDelta} derives from the
 * declared sizes (a forged window would make the program allocate it).
 * @returns an explanation when they differ, else undefined
 */
export function unexpectedParams(
  method: DeltaMethod,
  params: MethodParams,
  oldSize: number,
  newSize: number,
): string | undefined {
  if (method === "xdelta3") {
    const want = xdelta3Window(oldSize);
    if (params.window !== undefined && params.window !== want)
      return `xdelta3 window ${params.window} (a base layer of ${oldSize} bytes gives ${want})`;
    if (params.windowLog !== undefined) return "a zstd windowLog on an xdelta3 patch";
  } else if (method === "zstd") {
    const want = zstdWindowLog(Math.max(oldSize, newSize));
    if (params.windowLog !== want)
      return `zstd windowLog ${params.windowLog ?? "none"} (the sizes give ${want ?? "none"})`;
    if (params.window !== undefined) return "an xdelta3 window on a zstd patch";
  } else if (params.window !== undefined || params.windowLog !== undefined)
    return "window parameters on a bsdiff patch";
  return undefined;
}

/**
 * Rebuilds `outFile` from `oldFile` and a patch written by {@link encodeDelta} with the same
 * method and parameters, writing at most `newSize` bytes: a patch that expands further fails
 * with `CODEC_OUTPUT_TOO_LARGE` at the first byte over (bsdiff: its header must declare exactly
 * `newSize`, else `DELTA_PATCH_INVALID` before bspatch allocates anything). The caller verifies
 * the result's digest.
 */
export async function decodeDelta(
  method: DeltaMethod,
  oldFile: string,
  patchFile: string,
  outFile: string,
  params: MethodParams,
  newSize: number,
  label = outFile,
): Promise<void> {
  if (method === "xdelta3") {
    const window = params.window ?? XDELTA3_MAX_WINDOW;
    await runToFile(
      "xdelta3",
      ["-d", "-c", "-B", String(window), "-s", oldFile, patchFile],
      outFile,
      newSize,
      label,
    );
  } else if (method === "bsdiff") {
    const declared = await bsdiffNewSize(patchFile);
    if (declared !== newSize) {
      throw new DockpackError(
        "DELTA_PATCH_INVALID",
        `${label}: the bsdiff patch ${declared === undefined ? "has no BSDIFF40 header" : `declares ${declared} bytes`}, the layer is ${newSize} bytes.`,
        { hint: "The package is corrupted or forged; copy it again." },
      );
    }
    await run("bspatch", [oldFile, outFile, patchFile]).catch((e: unknown) => {
      const err = toDockpackError(e);
      if (err.code !== "COMMAND_FAILED") throw err;
      throw new DockpackError(err.code, `${label}: ${err.message}`, {
        hint: "The patch is corrupted or forged, or was made against other base bytes; copy the package again.",
        cause: err,
        details: err.details,
      });
    });
  } else {
    const w = params.windowLog;
    await runToFile(
      "zstd",
      [
        "-q",
        "-d",
        "-c",
        ...(w ? [`--long=${w}`, `--memory=${2 ** w}`] : []),
        `--patch-from=${oldFile}`,
        patchFile,
      ],
      outFile,
      newSize,
      label,
    );
  }
}
