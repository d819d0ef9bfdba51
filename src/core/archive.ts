/**
 * Tar archives, streaming: a reader ({@link readTar}), writers ({@link createTarWriter},
 * {@link packDirectory}, deterministic for reproducible artifacts) and a safe extractor
 * ({@link extractTarSafe}, {@link checkEntryPath}). The code lives in `core/archive/`.
 */
export {
  checkEntryPath,
  type ExtractOptions,
  type ExtractResult,
  extractTarSafe,
} from "./archive/extract.js";
export { readTar, type TarHeader } from "./archive/reader.js";
export {
  createTarWriter,
  type PackDirectoryOptions,
  packDirectory,
  type TarEntryOptions,
  type TarWriter,
  type TarWriterOptions,
} from "./archive/writer.js";
