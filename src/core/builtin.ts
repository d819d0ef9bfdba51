/**
 * Node built-in modules loaded on first use. A built-in outside Node's start-up snapshot is
 * compiled when first imported (node:crypto ~15 ms, node:zlib and node:child_process ~5–10 ms on
 * a slow machine); a module imported at the top of a file is paid for by every command that loads
 * the file, also by those that never call it (`dockpack … list`, issue 14 C18). Async code can
 * `await import("node:…")`; sync code uses {@link lazyBuiltin}.
 */
import { createRequire } from "node:module";

const nodeRequire = createRequire(import.meta.url);

/**
 * A getter of built-in module `name` (e.g. `"node:zlib"`), loaded on its first call; later calls
 * return the same module object (Node caches it).
 * @example const zlib = lazyBuiltin<typeof import("node:zlib")>("node:zlib"); zlib().createGzip()
 */
export function lazyBuiltin<T>(name: `node:${string}`): () => T {
  return () => nodeRequire(name) as T;
}
