/**
 * Bundles the tool service runtime (`runtime/entry.ts`: HTTP server, tool runner, manifest
 * and schema validation) with esbuild into one self-contained CommonJS file for Node 20, used
 * as `server.cjs` in the container and as the main script of the single executable.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { DockpackError } from "../core/errors.js";

function entryPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/tools or dist/tools; from the bundled command (dist/bin) the tsc build's dist/tools.
  for (const dir of [join(here, "runtime"), join(here, "..", "tools", "runtime")])
    for (const name of ["entry.ts", "entry.js"]) {
      const p = join(dir, name);
      if (existsSync(p)) return p;
    }
  throw new DockpackError(
    "BUNDLE_ENTRY_MISSING",
    `The tool runtime entry is missing in ${join(here, "runtime")}.`,
    {
      hint: "Reinstall dockpack.",
    },
  );
}

/**
 * Builds the runtime bundle for `toolId` (its default tool), once per id and process (later
 * calls share the first build).
 * @returns the bundle text (deterministic: same sources and id → same bytes); a few hundred KiB
 * @throws DockpackError `BUNDLE_FAILED` with esbuild's messages
 */
export function bundleRuntime(toolId: string): Promise<string> {
  // The sources cannot change under a running process: one build per tool id and process.
  let hit = built.get(toolId);
  if (!hit) {
    hit = buildBundle(toolId);
    built.set(toolId, hit);
    hit.catch(() => built.delete(toolId));
  }
  return hit;
}

const built = new Map<string, Promise<string>>();

async function buildBundle(toolId: string): Promise<string> {
  try {
    const res = await build({
      entryPoints: [entryPath()],
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node20",
      write: false,
      minify: true,
      legalComments: "none",
      logLevel: "silent",
      define: { __DOCKPACK_TOOL_ID__: JSON.stringify(toolId) },
      banner: { js: "// dockpack tool service runtime (bundled with esbuild; see docs/commands/tool.md)" },
    });
    return res.outputFiles[0].text;
  } catch (e) {
    throw new DockpackError("BUNDLE_FAILED", `Bundling the tool runtime failed: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
