/**
 * The build context of a target: a streaming tar of the context folder that honours the
 * folder's `.dockerignore` (Docker's rules, via @balena/dockerignore, as the docker CLI applies
 * them: patterns relative to the context root, `!` re-includes, the Dockerfile and .dockerignore
 * always sent). A Dockerfile outside the context is added under a generated name, as the docker
 * CLI does, so `dockerfile` always names a path inside the tar.
 */
import { createReadStream, existsSync } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import dockerignore from "@balena/dockerignore";
import { createTarWriter } from "../core/archive.js";

/** What {@link contextFiles} decided for a context. */
export interface ContextPlan {
  /** Absolute context folder. */
  dir: string;
  /** The `.dockerignore` patterns in force (empty when there is none). */
  ignore: string[];
}

/** Reads `<dir>/.dockerignore` as a list of patterns (comments and blank lines dropped). */
export async function readDockerignore(dir: string): Promise<string[]> {
  const file = join(dir, ".dockerignore");
  if (!existsSync(file)) return [];
  return (await readFile(file, "utf8"))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/**
 * Lists the context's entries that are sent to the engine (relative `/` paths, sorted, folders
 * before their contents), applying `.dockerignore`. `keep` names paths always sent.
 */
export async function contextEntries(
  dir: string,
  patterns: string[],
  keep: string[] = [],
): Promise<string[]> {
  // CommonJS module: its factory is both module.exports and module.exports.default
  const ig = dockerignore.default({ ignorecase: false }).add(patterns);
  const hasNegation = patterns.some((p) => p.startsWith("!"));
  const keepSet = new Set(keep);
  const out: string[] = [];
  const walk = async (rel: string) => {
    const names = (await readdir(rel ? join(dir, rel) : dir)).sort();
    for (const name of names) {
      const child = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, child));
      const ignored = ig.ignores(child) && !keepSet.has(child);
      if (st.isDirectory()) {
        if (ignored && !hasNegation) continue;
        if (!ignored) out.push(child);
        const before = out.length;
        await walk(child);
        // a folder that is itself ignored is sent only when something inside it is re-included
        if (ignored && out.length > before) out.splice(before, 0, child);
      } else if (!ignored) out.push(child);
    }
  };
  await walk("");
  return out;
}

/** Result of {@link packContext}. */
export interface PackedContext {
  /** The tar stream (consume it exactly once). */
  stream: Readable;
  /** Path of the Dockerfile inside the tar. */
  dockerfile: string;
  /** Number of entries sent. */
  entries: number;
  /** Sum of file sizes sent, in bytes. */
  bytes: number;
}

/**
 * Streams the context `dir` as a tar (files are read one at a time, never held in memory).
 * `dockerfileInContext` is the Dockerfile's path relative to the context, or null when it lies
 * outside; then `dockerfileAbs` is added as `.dockpack.<name>.Dockerfile`.
 */
export async function packContext(
  dir: string,
  dockerfileInContext: string | null,
  dockerfileAbs: string,
): Promise<PackedContext> {
  const patterns = await readDockerignore(dir);
  const keep = [".dockerignore", ...(dockerfileInContext ? [dockerfileInContext] : [])];
  const entries = await contextEntries(dir, patterns, keep);
  const writer = createTarWriter({ deterministic: true });
  let bytes = 0;
  const stats = await Promise.all(entries.map((rel) => lstat(join(dir, rel))));
  for (const st of stats) if (st.isFile()) bytes += st.size;
  const dockerfile = dockerfileInContext ?? `.dockpack.${process.pid}.Dockerfile`;
  const fill = async () => {
    for (const [i, rel] of entries.entries()) {
      const abs = join(dir, rel);
      const st = stats[i];
      if (st.isDirectory()) await writer.addDirectory(rel);
      else if (st.isSymbolicLink()) await writer.addSymlink(rel, await readlink(abs));
      else if (st.isFile())
        await writer.addFile(
          rel,
          { stream: createReadStream(abs), size: st.size },
          { mode: st.mode & 0o777 },
        );
    }
    if (!dockerfileInContext) {
      const st = await lstat(dockerfileAbs);
      bytes += st.size;
      await writer.addFile(
        dockerfile,
        { stream: createReadStream(dockerfileAbs), size: st.size },
        { mode: 0o644 },
      );
    }
    await writer.finish();
  };
  fill().catch((err: unknown) => writer.stream.destroy(err as Error));
  return {
    stream: writer.stream,
    dockerfile,
    entries: entries.length + (dockerfileInContext ? 0 : 1),
    bytes,
  };
}
