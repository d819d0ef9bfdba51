/** Test helpers for features: build feature folders in temp dirs and read tarballs back. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { readTar } from "../../src/core/archive.js";

/** A temp folder removed by the returned cleanup. */
export async function tempDir(
  prefix = "dockpack-features-test-",
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Default metadata of a test feature with this id. */
export function metaFor(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    version: "1.0.0",
    name: `The ${id} feature`,
    description: "A test feature",
    options: {
      flavour: { type: "string", enum: ["plain", "fancy"], default: "plain", description: "Which flavour" },
      verbose: { type: "boolean", default: false },
    },
    ...extra,
  };
}

/**
 * Writes a feature folder `parent/id` with devcontainer-feature.json (`meta`, or raw text when a
 * string), an executable install.sh and `files` (path → content). Modes are set explicitly
 * (0644 files, 0755 folders and install.sh) so that results do not depend on the umask.
 */
export async function writeFeature(
  parent: string,
  id: string,
  options: {
    meta?: Record<string, unknown> | string;
    files?: Record<string, string>;
    install?: boolean;
  } = {},
): Promise<string> {
  const dir = join(parent, id);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);
  const meta = options.meta ?? metaFor(id);
  const metaPath = join(dir, "devcontainer-feature.json");
  await writeFile(metaPath, typeof meta === "string" ? meta : JSON.stringify(meta, null, 2));
  await chmod(metaPath, 0o644);
  if (options.install !== false) {
    await writeFile(join(dir, "install.sh"), `#!/bin/sh\nset -e\necho "installing ${id}"\n`);
    await chmod(join(dir, "install.sh"), 0o755);
  }
  for (const [rel, content] of Object.entries(options.files ?? {})) {
    const path = join(dir, rel);
    let d = dirname(path);
    await mkdir(d, { recursive: true, mode: 0o755 });
    while (d.length > dir.length) {
      await chmod(d, 0o755);
      d = dirname(d);
    }
    await writeFile(path, content);
    await chmod(path, rel.endsWith(".sh") ? 0o755 : 0o644);
  }
  return dir;
}

/** One tar member as compared in tests. */
export interface Member {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  linkname: string | null;
  sha256: string | null;
}

/** Reads every member of a tar file (bodies hashed, not kept). */
export async function readMembers(file: string): Promise<Member[]> {
  const out: Member[] = [];
  await readTar(createReadStream(file), async (h, body) => {
    const hash = createHash("sha256");
    for await (const chunk of body) hash.update(chunk as Buffer);
    out.push({
      name: h.name,
      type: h.type ?? "file",
      mode: (h.mode ?? 0) & 0o7777,
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
      uname: h.uname ?? "",
      gname: h.gname ?? "",
      linkname: h.linkname ?? null,
      sha256: h.type === "file" ? hash.digest("hex") : null,
    });
  });
  return out;
}

/** sha256 hex of a file. */
export async function sha256File(file: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}
