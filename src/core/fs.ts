/**
 * File-system building blocks: atomic writes, temp directories cleaned up on exit and signals,
 * the cleanup registry, free-space checks and advisory locks. The code lives in `core/fs/`.
 */
export {
  type AtomicWrite,
  type AtomicWriteOptions,
  atomicWriteFile,
  createAtomicWriteStream,
  listTempFiles,
  outputKind,
} from "./fs/atomic.js";
export { onCleanup, pendingCleanups, runCleanups, runCleanupsSync } from "./fs/cleanup.js";
export { commitIntoFolder, isMountPoint, stagingParent } from "./fs/folder.js";
export { type LockOptions, withLock } from "./fs/lock.js";
export {
  ensureFreeSpace,
  freeSpace,
  makeTempDir,
  processStartTicks,
  removeTempDir,
  sweepStaleTempDirs,
} from "./fs/temp.js";
