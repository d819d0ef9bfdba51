import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import {
  checkEntryPath,
  createTarWriter,
  extractTarSafe,
  packDirectory,
  readTar,
} from "../../src/core/archive.js";
import { collect, entriesOf, LONG, makeTree, rawTar, tree, UNICODE, withTmp } from "./archive-helpers.js";

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
