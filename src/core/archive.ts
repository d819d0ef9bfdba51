/**
 * Tar archives, streaming: a reader ({@link readTar}), writers ({@link createTarWriter},
 * {@link packDirectory}, deterministic for reproducible artifacts) and a safe extractor
 * ({@link extractTarSafe}, {@link checkEntryPath}), and a strict reader for untrusted archives
 * ({@link readTarStrict}) with per-entry checks ({@link TarEntryChecker}). The code lives in `core/archive/`.
 */

export {
  normaliseEntryName,
  TarEntryChecker,
  type TarEntryCheckOptions,
  type TarEntryProblem,
} from "./archive/checks.js";
export {
  checkEntryPath,
  type ExtractOptions,
  type ExtractResult,
  extractTarSafe,
} from "./archive/extract.js";
export { readTar, type TarHeader } from "./archive/reader.js";
export {
  parseTarField,
  readTarStrict,
  type StrictEntryType,
  type StrictTarEntry,
  type StrictTarResult,
  StrictTarScanner,
} from "./archive/strict.js";
export {
  createTarWriter,
  type PackDirectoryOptions,
  packDirectory,
  type TarEntryOptions,
  type TarWriter,
  type TarWriterOptions,
} from "./archive/writer.js";
