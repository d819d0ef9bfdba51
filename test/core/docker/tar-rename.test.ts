/**
 * core/docker/tar-rename.ts: the streaming rewriter that readVolumeTar puts behind the engine's
 * archive download. Names (ustar, ustar prefix, pax path, GNU long names) and hardlink targets
 * are renamed, symlink targets and contents are kept, and the output reads strictly, whatever
 * the chunking of the input.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { readTarStrict } from "../../../src/core/archive.js";
import { renameTarEntries } from "../../../src/core/docker/tar-rename.js";

const strip = (n: string) => (n === "./" || n === "." ? "./" : n.startsWith("./") ? n.slice(2) : n);

async function through(
  tar: Buffer,
  chunk: number,
): Promise<Array<{ name: string; type: string; link: string; body: string; size: number }>> {
  const parts: Buffer[] = [];
  for (let i = 0; i < tar.length; i += chunk) parts.push(tar.subarray(i, i + chunk));
  const out: Array<{ name: string; type: string; link: string; body: string; size: number }> = [];
  await readTarStrict(Readable.from(parts).pipe(renameTarEntries(strip)), async (e, body) => {
    const c: Buffer[] = [];
    for await (const x of body) c.push(x as Buffer);
    out.push({
      name: e.name,
      type: e.type,
      link: e.linkname,
      body: Buffer.concat(c).toString(),
      size: e.size,
    });
  });
  return out;
}

for (const format of ["pax", "gnu", "ustar"] as const) {
  test(`renameTarEntries: GNU tar --format=${format} with ./ names, long names, links`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "dp-rename-"));
    try {
      const long = "d".repeat(format === "ustar" ? 60 : 120);
      await mkdir(join(dir, "a", long), { recursive: true });
      await writeFile(join(dir, "a", long, `${"f".repeat(80)}.txt`), "long\n");
      await writeFile(join(dir, "a", "x"), Buffer.alloc(1000, 7));
      await link(join(dir, "a", "x"), join(dir, "hard"));
      await symlink("./a/x", join(dir, "sym"));
      await writeFile(join(dir, "empty"), "");
      const tar = execFileSync("tar", [`--format=${format}`, "--sort=name", "-cf", "-", "-C", dir, "."]);
      for (const chunk of [tar.length, 4096, 700, 513, 1]) {
        const entries = await through(tar, chunk);
        const names = entries.map((e) => e.name);
        assert.equal(names[0], "./");
        assert.ok(
          names.every((n) => n === "./" || !n.startsWith("./")),
          `${chunk}: ${names}`,
        );
        const deep = entries.find((e) => e.name === `a/${long}/${"f".repeat(80)}.txt`);
        assert.equal(deep?.body, "long\n", `${chunk}: ${names}`);
        const x = entries.find((e) => e.name === "a/x");
        const hard = entries.find((e) => e.name === "hard");
        // GNU tar stores the first name met as the file and the other as a link to it
        const [file, other] = x?.type === "file" ? [x, hard] : [hard, x];
        assert.equal(file?.body, Buffer.alloc(1000, 7).toString());
        assert.equal(other?.type, "link");
        assert.equal(other?.link, file?.name);
        assert.equal(entries.find((e) => e.name === "sym")?.link, "./a/x", "symlink targets are kept");
        assert.equal(entries.find((e) => e.name === "empty")?.size, 0);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test("renameTarEntries: a rename that outgrows the ustar fields gets a pax path/linkpath (ustar prefix 155 + name 100, hardlink target 100)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "dp-rename-grow-"));
  try {
    // ustar: prefix ≤ 155 and name ≤ 100 bytes; "data/" in front overflows the prefix
    const parent = `${"p".repeat(100)}/${"q".repeat(53)}`;
    const leaf = "l".repeat(99);
    const target = "t".repeat(99);
    await mkdir(join(dir, parent), { recursive: true });
    await writeFile(join(dir, parent, leaf), "deep\n");
    await writeFile(join(dir, target), "target\n");
    await link(join(dir, target), join(dir, "hard"));
    const tar = execFileSync("tar", [
      "--format=ustar",
      "--sort=name",
      "-cf",
      "-",
      "-C",
      dir,
      parent,
      target,
      "hard",
    ]);
    const grow = (n: string) => `data/${n.replace(/^\.\//, "")}`;
    for (const chunk of [tar.length, 512, 7]) {
      const parts: Buffer[] = [];
      for (let i = 0; i < tar.length; i += chunk) parts.push(tar.subarray(i, i + chunk));
      const seen: Array<{ name: string; link: string; type: string }> = [];
      await readTarStrict(Readable.from(parts).pipe(renameTarEntries(grow)), async (e, body) => {
        seen.push({ name: e.name, link: e.linkname, type: e.type });
        body.resume();
      });
      assert.ok(
        seen.some((e) => e.name === `data/${parent}/${leaf}`),
        `${chunk}: ${seen.map((e) => e.name).join(", ")}`,
      );
      const hard = seen.find((e) => e.name === "data/hard");
      assert.equal(hard?.type, "link");
      assert.equal(hard?.link, `data/${target}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
