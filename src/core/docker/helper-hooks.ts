/**
 * Hooks around each helper container's life (volumes.ts), for a crash ledger (env/helper-ledger.ts).
 * No dependencies, so that installing them loads nothing else.
 */

/**
 * `beforeCreate` runs (awaited) before the create request is sent, with the container's name and
 * volume (when it throws, nothing is created); `removed` once the container is gone or its create
 * was refused. A name given to `beforeCreate` and never to `removed` may name a container that
 * exists, or one whose create request is still on its way to the engine.
 */
export interface HelperHooks {
  beforeCreate(name: string, volume: string): Promise<void> | void;
  /** The engine answered the create request: the container exists. */
  created(name: string): void;
  removed(name: string): void;
}

let installed: HelperHooks | undefined;

/** Installs the {@link HelperHooks} of this process (one set; a second call replaces the first). */
export function setHelperHooks(h: HelperHooks | undefined): void {
  installed = h;
}

/** The installed {@link HelperHooks}, if any. */
export function helperHooks(): HelperHooks | undefined {
  return installed;
}
