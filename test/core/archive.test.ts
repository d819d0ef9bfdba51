import assert from "node:assert/strict";
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
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import tarStream from "tar-stream";
import {
  checkEntryPath,
  createTarWriter,
  extractTarSafe,
  packDirectory,
  readTar,
  type TarHeader,
} from "../../src/core/archive.js";

type RawEntry = Partial<TarHeader> & { name: string; body?: string };

/** A tar built with tar-stream directly, so that unsafe entries can be made. */
async function rawTar(entries: RawEntry[]): Promise<Buffer> {
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

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function entriesOf(tar: Buffer): Promise<{ h: TarHeader; body: string }[]> {
  const out: { h: TarHeader; body: string }[] = [];
  await readTar(Readable.from([tar]), async (h, body) => {
    out.push({ h, body: (await collect(body)).toString() });
  });
  return out;
}

async function tree(dir: string): Promise<string[]> {
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

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "dockpack-archive-"));
  try {
    return await fn(dir);
  } finally {
    await chmod(dir, 0o755).catch(() => undefined);
    execFileSync("chmod", ["-R", "u+rwx", dir]);
    await rm(dir, { recursive: true, force: true });
  }
}

const LONG = `${"deep/".repeat(30)}${"n".repeat(120)}.txt`;
const UNICODE = "ünïcode/日本語 ファイル.txt";

async function makeTree(dir: string, variant: number): Promise<void> {
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

test("checkEntryPath names the problem", () => {
  assert.equal(checkEntryPath("a/b"), null);
  assert.equal(checkEntryPath("./a/./b/"), null);
  assert.equal(checkEntryPath("a..b/c"), null);
  assert.match(checkEntryPath("/etc/passwd") ?? "", /absolute/);
  assert.match(checkEntryPath("../x") ?? "", /'\.\.'/);
  assert.match(checkEntryPath("a/../../x") ?? "", /'\.\.'/);
  assert.match(checkEntryPath("") ?? "", /empty/);
  assert.match(checkEntryPath("a\0b") ?? "", /NUL/);
});

test("createTarWriter writes files (buffer and stream), dirs, symlinks, long and non-ASCII names", async () => {
  const w = createTarWriter({ deterministic: true, mtime: 1234 });
  const out = collect(w.stream);
  await w.addDirectory("dir");
  await w.addFile("dir/a.txt", Buffer.from("hello"), { mode: 0o600 });
  await w.addFile(
    "dir/run",
    { stream: Readable.from([Buffer.from("ab"), Buffer.from("c")]), size: 3 },
    { mode: 0o700 },
  );
  await w.addFile(LONG, Buffer.from("long"));
  await w.addFile(UNICODE, Buffer.from("u"));
  await w.addSymlink("dir/l", `${"t".repeat(150)}/target`);
  await w.finish();
  const got = await entriesOf(await out);
  assert.deepEqual(
    got.map(({ h, body }) => [
      h.name,
      h.type,
      h.mode,
      h.uid,
      h.gid,
      h.uname,
      h.gname,
      h.mtime?.getTime(),
      body,
    ]),
    [
      ["dir/", "directory", 0o755, 0, 0, "", "", 1234000, ""],
      ["dir/a.txt", "file", 0o644, 0, 0, "", "", 1234000, "hello"],
      ["dir/run", "file", 0o755, 0, 0, "", "", 1234000, "abc"],
      [LONG, "file", 0o644, 0, 0, "", "", 1234000, "long"],
      [UNICODE, "file", 0o644, 0, 0, "", "", 1234000, "u"],
      ["dir/l", "symlink", 0o777, 0, 0, "", "", 1234000, ""],
    ],
  );
  assert.equal(got[5].h.linkname, `${"t".repeat(150)}/target`);
});

test("createTarWriter fails with ARCHIVE_SIZE_MISMATCH when a stream is not its declared size", async () => {
  const w = createTarWriter();
  const out = collect(w.stream).catch((e: unknown) => e);
  await assert.rejects(w.addFile("f", { stream: Readable.from([Buffer.from("abcd")]), size: 3 }), {
    code: "ARCHIVE_SIZE_MISMATCH",
  });
  assert.ok((await out) instanceof Error);
});

test("packDirectory deterministic: byte-identical for the same tree (other order, modes, mtimes), sorted, normalised", async () => {
  await withTmp(async (base) => {
    await makeTree(join(base, "one"), 0);
    await makeTree(join(base, "two"), 1);
    const opts = { deterministic: true, prefix: "./" as const, mtime: 0 };
    const a = await collect(packDirectory(join(base, "one"), opts));
    const a2 = await collect(packDirectory(join(base, "one"), opts));
    const b = await collect(packDirectory(join(base, "two"), opts));
    assert.ok(a.equals(a2), "two runs on the same tree differ");
    assert.ok(a.equals(b), "same tree with other mtimes/creation order differs");
    const got = await entriesOf(a);
    const names = got.map((e) => e.h.name);
    assert.deepEqual(
      names,
      [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
    );
    assert.ok(names.includes("./a/") && names.includes(`./${LONG}`) && names.includes(`./${UNICODE}`));
    for (const { h } of got) {
      assert.equal(h.mtime?.getTime(), 0);
      assert.equal(h.uid, 0);
      assert.equal(h.uname, "");
    }
    const mode = (n: string) => got.find((e) => e.h.name === n)?.h.mode;
    assert.equal(mode("./a/"), 0o755);
    assert.equal(mode("./a/run.sh"), 0o755);
    assert.equal(mode("./b.txt"), 0o644);
    assert.equal(got.find((e) => e.h.name === "./link")?.h.linkname, "a/run.sh");
    // GNU tar reads it (PAX names included).
    const listed = execFileSync("tar", ["-tf", "-"], { input: a }).toString().trim().split("\n");
    assert.deepEqual(listed, names);
  });
});

test("packDirectory: first entries, mtime option, filter", async () => {
  await withTmp(async (base) => {
    await makeTree(base, 0);
    const tar = await collect(
      packDirectory(base, {
        deterministic: true,
        prefix: "./",
        mtime: 1_700_000_000,
        first: ["./devcontainer-feature.json", "b.txt"],
        filter: (rel) => !rel.startsWith("ünïcode"),
      }),
    );
    const got = await entriesOf(tar);
    assert.deepEqual(
      got.slice(0, 3).map((e) => e.h.name),
      ["./devcontainer-feature.json", "./b.txt", "./a/"],
    );
    assert.ok(!got.some((e) => e.h.name.includes("ünïcode")));
    assert.equal(got[0].h.mtime?.getTime(), 1_700_000_000_000);
  });
});

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

test("readTar drains unread bodies, passes caller errors, and fails ARCHIVE_INVALID on garbage", async () => {
  const tar = await rawTar([
    { name: "a", body: "x".repeat(100_000) },
    { name: "b", body: "bee" },
  ]);
  const seen: string[] = [];
  await readTar(Readable.from([tar]), async (h) => {
    seen.push(h.name);
  });
  assert.deepEqual(seen, ["a", "b"]);
  await assert.rejects(
    readTar(Readable.from([tar]), async () => {
      throw new Error("stop here");
    }),
    /stop here/,
  );
  await assert.rejects(
    readTar(Readable.from([Buffer.alloc(1024, 0x41)]), async () => undefined),
    { code: "ARCHIVE_INVALID" },
  );
  await assert.rejects(
    readTar(Readable.from([tar.subarray(0, 700)]), async () => undefined),
    {
      code: "ARCHIVE_INVALID",
    },
  );
});

test("a large entry streams through writer and reader with bounded buffering", async () => {
  const size = 64 * 1024 * 1024;
  let produced = 0;
  let consumed = 0;
  let maxLag = 0;
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  const body = new Readable({
    read() {
      if (produced >= size) this.push(null);
      else {
        produced += chunk.length;
        this.push(chunk);
      }
    },
  });
  const w = createTarWriter({ deterministic: true });
  const written = (async () => {
    await w.addFile("big.bin", { stream: body, size });
    await w.addFile("after", Buffer.from("x"));
    await w.finish();
  })();
  const names: string[] = [];
  await readTar(w.stream, async (h, entry) => {
    names.push(h.name);
    for await (const c of entry) {
      consumed += (c as Buffer).length;
      maxLag = Math.max(maxLag, produced - consumed);
    }
  });
  await written;
  assert.deepEqual(names, ["big.bin", "after"]);
  assert.equal(consumed, size + 1);
  assert.ok(maxLag < 8 * 1024 * 1024, `the writer ran ${maxLag} bytes ahead of the reader`);
});

test("GNU tar output is read and extracted (hardlinks, symlinks, long names)", async () => {
  await withTmp(async (base) => {
    await makeTree(join(base, "src"), 0);
    execFileSync("ln", [join(base, "src", "b.txt"), join(base, "src", "hard")]);
    const tar = execFileSync("tar", ["-C", join(base, "src"), "-cf", "-", "."], { maxBuffer: 1 << 26 });
    const res = await extractTarSafe(Readable.from([tar]), join(base, "dest"));
    assert.deepEqual(await tree(join(base, "dest")), await tree(join(base, "src")));
    assert.equal((await stat(join(base, "dest", "hard"))).ino, (await stat(join(base, "dest", "b.txt"))).ino);
    assert.ok(res.entries >= 10);
  });
});
