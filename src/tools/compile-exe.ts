/**
 * The standalone executable of a tool: a Node.js single executable application
 * (https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html). The bundled
 * runtime (`server.cjs`) is the main script; the tool folders are SEA assets listed in
 * `exe/assets.json`; the blob is injected into a copy of this node binary with postject.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, copyFile, lstat, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { execa } from "execa";
import { DockpackError } from "../core/errors.js";
import type { Reporter } from "../core/output.js";
import type { Tool } from "./manifest.js";
import type { SeaIndex } from "./runtime/entry.js";

/** The fuse string Node's SEA loader looks for (Node 20). */
export const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

/** The executable written by {@link buildExecutable}. */
export interface ExeInfo {
  /** File name (the tool id). */
  name: string;
  /** Path (relative to the package folder while building; absolute in the compile result). */
  path: string;
  /** Size in bytes. */
  bytes: number;
  /** `sha256:<hex>` of the executable. */
  digest: string;
  /** Node version embedded. */
  node: string;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  await pipeline(createReadStream(path), h);
  return h.digest("hex");
}

async function walk(root: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const st = await lstat(p);
    if (st.isDirectory()) out.push(...(await walk(root, p)));
    else if (st.isFile()) out.push(relative(root, p).split(sep).join("/"));
  }
  return out;
}

/** True when this node supports SEA assets (Node ≥ 20.12 or ≥ 21.7). */
export function seaSupported(version = process.versions.node): boolean {
  const [major, minor] = version.split(".").map(Number);
  return major > 21 || (major === 21 && minor >= 7) || (major === 20 && minor >= 12);
}

/**
 * Builds `exe/<tool id>` in package folder `dir`, which already holds `server.cjs` and `tools/`.
 * Writes `exe/assets.json` and `exe/sea-config.json` (kept, for rebuilding by hand).
 * Memory: postject reads the node binary (~100 MB) into memory once.
 * @throws DockpackError `SEA_UNSUPPORTED` (node too old), `SEA_BUILD_FAILED` (blob or injection failed)
 */
export async function buildExecutable(dir: string, tool: Tool, reporter: Reporter): Promise<ExeInfo> {
  if (!seaSupported())
    throw new DockpackError(
      "SEA_UNSUPPORTED",
      `Node ${process.versions.node} cannot build single executables with assets.`,
      {
        hint: "Use Node 20.12 or newer (or compile the docker target).",
      },
    );
  const name = tool.manifest.id;
  const files = await walk(dir, join(dir, "tools"));
  const index: SeaIndex = { toolId: name, files: [] };
  const assets: Record<string, string> = { "index.json": "exe/assets.json" };
  for (const rel of files) {
    const mode = (await stat(join(dir, rel))).mode & 0o111 ? 0o755 : 0o644;
    index.files.push({ key: rel, path: rel, mode, sha256: await sha256File(join(dir, rel)) });
    assets[rel] = rel;
  }
  const seaConfig = {
    main: "server.cjs",
    output: "exe/sea-prep.blob",
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: false,
    assets,
  };
  await mkdir(join(dir, "exe"), { recursive: true });
  await writeFile(join(dir, "exe", "assets.json"), `${JSON.stringify(index, null, 2)}\n`);
  await writeFile(join(dir, "exe", "sea-config.json"), `${JSON.stringify(seaConfig, null, 2)}\n`);
  reporter.info("generating the SEA blob (node --experimental-sea-config)");
  const blobRes = await execa(process.execPath, ["--experimental-sea-config", "exe/sea-config.json"], {
    cwd: dir,
    reject: false,
  });
  if (blobRes.exitCode !== 0)
    throw new DockpackError(
      "SEA_BUILD_FAILED",
      `node --experimental-sea-config failed: ${String(blobRes.stderr).trim()}`,
    );
  const exePath = join(dir, "exe", name);
  reporter.info(`injecting into a copy of ${process.execPath} (postject)`);
  await copyFile(process.execPath, exePath);
  await chmod(exePath, 0o755);
  const blobPath = join(dir, "exe", "sea-prep.blob");
  try {
    const moduleName = "postject"; // no type declarations ship with it
    const postject = (await import(moduleName)) as unknown as {
      inject(file: string, resource: string, data: Buffer, options: Record<string, unknown>): Promise<void>;
    };
    const inject = postject.inject ?? (postject as unknown as { default: typeof postject }).default.inject;
    await inject(exePath, "NODE_SEA_BLOB", await readFile(blobPath), { sentinelFuse: SEA_FUSE });
  } catch (e) {
    throw new DockpackError(
      "SEA_BUILD_FAILED",
      `Injecting the SEA blob into ${exePath} failed: ${(e as Error).message}`,
      {
        hint: "The node binary must support single executable applications (official builds do).",
        cause: e,
      },
    );
  } finally {
    await rm(blobPath, { force: true });
  }
  const st = await stat(exePath);
  return {
    name,
    path: `exe/${name}`,
    bytes: st.size,
    digest: `sha256:${await sha256File(exePath)}`,
    node: process.versions.node,
  };
}
