/** The running dockpack's version, read from package.json (recorded in package metadata). */
import { readFileSync } from "node:fs";

let cached: string | undefined;

/** dockpack's semver version, e.g. `0.1.0`. */
export function dockpackVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
  ).version;
  return cached;
}
