/** Shared helpers of the archive tests (not a test file). */
import { execFileSync } from "node:child_process";
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import tarStream from "tar-stream";
import { readTar, type TarHeader } from "../../src/core/archive.js";

export type RawEntry = Partial<TarHeader> & { name: string; body?: string };

/** A tar built with tar-stream directly, so that unsafe entries can be made. */
export async function rawTar(entries: RawEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const e of entries) {
    const { body, ...h } = e;
    pack.entry({ mode: 0o644, ...h }, body ?? "");
  }
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const c of pack) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export async function entriesOf(tar: Buffer): Promise<{ h: TarHeader; body: string }[]> {
  const out: { h: TarHeader; body: string }[] = [];
  await readTar(Readable.from([tar]), async (h, body) => {
    out.push({ h, body: (await collect(body)).toString() });
  });
  return out;
}

export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function visit(rel: string) {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, r));
      const what = st.isSymbolicLink()
        ? `-> ${await readlink(join(dir, r))}`
        : st.isDirectory()
          ? "dir"
          : (await readFile(join(dir, r), "utf8")).slice(0, 40);
      out.push(`${r} ${what}`);
      if (st.isDirectory()) await visit(r);
    }
  }
  await visit("");
  return out;
}

export async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "dockpack-archive-"));
  try {
    return await fn(dir);
  } finally {
    await chmod(dir, 0o755).catch(() => undefined);
    execFileSync("chmod", ["-R", "u+rwx", dir]);
    await rm(dir, { recursive: true, force: true });
  }
}

export const LONG = `${"deep/".repeat(30)}${"n".repeat(120)}.txt`;
export const UNICODE = "ünïcode/日本語 ファイル.txt";

export async function makeTree(dir: string, variant: number): Promise<void> {
  // Created in a different order per variant; modes and mtimes differ on disk.
  const files: [string, string, number][] = [
    ["b.txt", "bee", variant ? 0o600 : 0o640],
    ["a/run.sh", "#!/bin/sh\n", variant ? 0o700 : 0o750],
    ["a/z/deep.txt", "deep", 0o644],
    [UNICODE, "unicode", 0o644],
    [LONG, "long", 0o644],
    ["devcontainer-feature.json", "{}", 0o644],
  ];
  if (variant) files.reverse();
  for (const [rel, body, mode] of files) {
    await mkdir(join(dir, rel, ".."), { recursive: true });
    await writeFile(join(dir, rel), body);
    await chmod(join(dir, rel), mode);
    const t = variant ? 1_600_000_000 : 1_700_000_000;
    await utimes(join(dir, rel), t, t);
  }
  await symlink("a/run.sh", join(dir, "link"));
  await chmod(join(dir, "a"), variant ? 0o700 : 0o755);
}
