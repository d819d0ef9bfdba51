#!/usr/bin/env node
/**
 * The installed `dockpack` command (`dist/bin/dockpack.js`, built by scripts/bundle-cli.mjs): runs
 * the bundled CLI (`dist/bin/dockpack-main.js` and its chunks: main.ts and everything it loads) through the V8
 * code cache of compile-cache.ts. V8 is tuned first: the cache is only accepted under the flags it
 * was made with.
 */
import "./v8-tuning.js";
import { runBundle } from "./compile-cache.js";

/** Hash of the bundle's files, set by scripts/bundle-cli.mjs (`define`). */
declare const DOCKPACK_BUNDLE_ID: string;

runBundle(new URL("./", import.meta.url), "dockpack-main.js", DOCKPACK_BUNDLE_ID, process.argv.slice(2));
