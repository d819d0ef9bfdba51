/** The dockpack version recorded in delta packages (from package.json, two levels up from src/ and dist/). */
import { readFileSync } from "node:fs";

/** dockpack's version string, e.g. `0.1.0`; `unknown` when package.json cannot be read. */
export const DOCKPACK_VERSION: string = (() => {
  try {
    return (
      JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
    ).version;
  } catch {
    return "unknown";
  }
})();
