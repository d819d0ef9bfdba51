import assert from "node:assert/strict";
import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { extractTarSafe, packDirectory } from "../../src/core/archive.js";
import { makeTree, type RawEntry, rawTar, tree, withTmp } from "./archive-helpers.js";

test("extractTarSafe restores a packed tree (content, modes, symlinks, read-only dirs)", async () => {
  await withTmp(async (base) => {
    await makeTree(join(base, "src"), 0);
    await mkdir(join(base, "src", "ro"));
    await writeFile(join(base, "src", "ro", "f"), "x");
    await chmod(join(base, "src", "ro"), 0o555);
    const res = await extractTarSafe(packDirectory(join(base, "src"), { prefix: "./" }), join(base, "dest"));
    assert.deepEqual(await tree(join(base, "dest")), await tree(join(base, "src")));
    assert.equal((await stat(join(base, "dest", "a", "run.sh"))).mode & 0o777, 0o750);
    assert.equal((await stat(join(base, "dest", "ro"))).mode & 0o777, 0o555);
    assert.equal(res.entries, (await tree(join(base, "src"))).length);
    assert.equal(res.bytes, 3 + 10 + 4 + 7 + 4 + 2 + 1);
  });
});

/** [label, entries, reason, refused entry (default: the last)] */
const REFUSED: [string, RawEntry[], RegExp, string?][] = [
  ["absolute path", [{ name: "/tmp/dockpack-evil-abs", body: "x" }], /absolute/],
  ["'..' component", [{ name: "../outside/evil", body: "x" }], /'\.\.'/],
  ["nested '..'", [{ name: "a/../../outside/evil", body: "x" }], /'\.\.'/],
  ["symlink to ..", [{ name: "lnk", type: "symlink", linkname: "../outside" }], /outside the destination/],
  ["absolute symlink", [{ name: "lnk", type: "symlink", linkname: "/etc" }], /absolute/],
  [
    "symlink escaping via an earlier symlink",
    [
      { name: "a", type: "symlink", linkname: "." },
      { name: "b", type: "symlink", linkname: "a/../outside" },
    ],
    /outside the destination/,
  ],
  [
    "write through an extracted symlink",
    [
      { name: "sub/", type: "directory", mode: 0o755 },
      { name: "d", type: "symlink", linkname: "sub" },
      { name: "d/evil", body: "x" },
    ],
    /parent 'd' is a symlink/,
  ],
  [
    "symlink through a missing path and ..",
    [
      { name: "s", type: "symlink", linkname: "later/../../outside" },
      { name: "later", type: "symlink", linkname: "." },
    ],
    /not a directory, and then '\.\.'/,
    "s",
  ],
  [
    "symlink replacing a validated symlink",
    [
      { name: "c/", type: "directory", mode: 0o755 },
      { name: "l", type: "symlink", linkname: "c" },
      { name: "l", type: "symlink", linkname: "." },
    ],
    /replace an existing symlink/,
  ],
  ["hardlink to ..", [{ name: "h", type: "link", linkname: "../outside/keep" }], /hardlink target/],
  ["hardlink absolute", [{ name: "h", type: "link", linkname: "/etc/passwd" }], /hardlink target/],
  [
    "hardlink to a symlink",
    [
      { name: "f", body: "x" },
      { name: "s", type: "symlink", linkname: "f" },
      { name: "h", type: "link", linkname: "s" },
    ],
    /not a regular file/,
  ],
  [
    "character device",
    [{ name: "null", type: "character-device", devmajor: 1, devminor: 3 }],
    /character device/,
  ],
  ["block device", [{ name: "sda", type: "block-device", devmajor: 8, devminor: 0 }], /block device/],
  ["fifo", [{ name: "pipe", type: "fifo" }], /fifo/],
  ["setuid file", [{ name: "su", body: "x", mode: 0o4755 }], /setuid\/setgid.*4755/],
  ["setgid directory", [{ name: "sg/", type: "directory", mode: 0o2775 }], /setuid\/setgid/],
];

for (const [label, entries, reason, refused] of REFUSED) {
  test(`extractTarSafe refuses: ${label}, naming the entry; nothing written outside`, async () => {
    await withTmp(async (base) => {
      const dest = join(base, "dest");
      await mkdir(join(base, "outside"));
      await writeFile(join(base, "outside", "keep"), "keep");
      const before = await tree(base);
      const last = refused ?? entries[entries.length - 1].name;
      await assert.rejects(
        extractTarSafe(Readable.from([await rawTar(entries)]), dest),
        (e: Error & { code?: string; details?: { entry?: string } }) => {
          assert.equal(e.code, "ARCHIVE_UNSAFE_ENTRY");
          assert.equal(e.details?.entry, last);
          assert.ok(e.message.includes(`'${last}'`), e.message);
          assert.match(e.message, reason);
          return true;
        },
      );
      const after = (await tree(base)).filter((l) => !l.startsWith("dest/") && !l.startsWith("dest "));
      assert.deepEqual(
        after,
        before.filter((l) => !l.startsWith("dest")),
      );
      await assert.rejects(lstat("/tmp/dockpack-evil-abs"));
    });
  });
}

test("extractTarSafe never follows a symlink already in the destination", async () => {
  await withTmp(async (base) => {
    const dest = join(base, "dest");
    await mkdir(join(base, "outside"));
    await writeFile(join(base, "outside", "keep"), "keep");
    await mkdir(dest);
    await symlink("../outside", join(dest, "out"));
    await symlink("../outside/keep", join(dest, "keeplink"));
    await assert.rejects(
      extractTarSafe(Readable.from([await rawTar([{ name: "out/evil", body: "x" }])]), dest),
      {
        code: "ARCHIVE_UNSAFE_ENTRY",
      },
    );
    // A file entry over a symlink replaces the link; the file it pointed to is untouched.
    await extractTarSafe(Readable.from([await rawTar([{ name: "keeplink", body: "new" }])]), dest);
    assert.equal(await readFile(join(base, "outside", "keep"), "utf8"), "keep");
    assert.equal(await readFile(join(dest, "keeplink"), "utf8"), "new");
    assert.deepEqual(await readdir(join(base, "outside")), ["keep"]);
  });
});

test("extractTarSafe keeps setuid/setgid with allowSetuid, and hardlinks inside", async () => {
  await withTmp(async (base) => {
    const tar = await rawTar([
      { name: "su", body: "x", mode: 0o4755 },
      { name: "d/", type: "directory", mode: 0o2775 },
      { name: "d/h", type: "link", linkname: "su" },
    ]);
    await extractTarSafe(Readable.from([tar]), join(base, "dest"), { allowSetuid: true });
    assert.equal((await stat(join(base, "dest", "su"))).mode & 0o7777, 0o4755);
    assert.equal((await stat(join(base, "dest", "d"))).mode & 0o7777, 0o2775);
    assert.equal((await stat(join(base, "dest", "d", "h"))).ino, (await stat(join(base, "dest", "su"))).ino);
  });
});
