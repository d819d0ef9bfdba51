/**
 * src/image/save-unpack.ts with `pack` (delta create -m layer): tar's `--to-command` script
 * compresses each `<id>/layer.tar` with zstd as the save streams (and hashes it as zstd finishes
 * it), except layers at a position the caller does not read, which are dropped (not written, size
 * kept) when the `json` parent chain tells that position before the layer arrives; names other
 * than plain relative paths are refused and nothing is written outside the folder. No engine: a
 * stand-in `docker` on PATH writes a crafted save.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import tar from "tar-stream";
import { DockpackError } from "../../src/core/errors.js";
import { unpackSave } from "../../src/image/save-unpack.js";

const work = mkdtempSync(join(tmpdir(), "dockpack-pack-save-"));
const bin = join(work, "bin");
mkdirSync(bin);
writeFileSync(join(bin, "docker"), '#!/bin/sh\n[ "$1" = save ] || exit 9\nexec cat "$DOCKPACK_TEST_SAVE"\n');
chmodSync(join(bin, "docker"), 0o755);
process.env.PATH = `${bin}:${process.env.PATH}`;

const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A save as `tar` members in the given order. */
async function saveFile(name: string, members: { name: string; body: Buffer | string }[]): Promise<string> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve) => pack.on("end", () => resolve()));
  for (const m of members) pack.entry({ name: m.name }, m.body);
  pack.finalize();
  await ended;
  const file = join(work, name);
  writeFileSync(file, Buffer.concat(chunks));
  return file;
}

/** Layer directory `id` of a Docker < 25 save: VERSION, json (with its parent), layer.tar. */
function layerDir(id: string, parent: string | undefined, body: Buffer) {
  const json = JSON.stringify({ id, ...(parent ? { parent } : {}), created: "1970-01-01T00:00:00Z" });
  return [
    { name: `${id}/VERSION`, body: "1.0" },
    { name: `${id}/json`, body: json },
    { name: `${id}/layer.tar`, body },
  ];
}

test("layers compressed and hashed on the way; a layer the caller does not read is dropped when its position is known", async () => {
  const [a, b, c] = ["a", "b", "c"].map(hex);
  const bodies = [0, 1, 2].map((i) => Buffer.from(`layer ${i} `.repeat(20000 + i)));
  // c (top) first, then a (bottom, no parent: position 0), then b (its parent a came first: 1).
  const file = await saveFile("good.tar", [
    ...layerDir(c, b, bodies[2]),
    ...layerDir(a, undefined, bodies[0]),
    ...layerDir(b, a, bodies[1]),
    { name: "manifest.json", body: "[]" },
  ]);
  process.env.DOCKPACK_TEST_SAVE = file;
  const dir = join(work, "good");
  mkdirSync(dir);
  const container = await unpackSave(["x"], dir, "test save", undefined, undefined, {
    level: 3,
    longAbove: 1 << 30,
    drop: [0, 2],
  });
  // Position 0 is known (no parent): dropped, its size kept. Position 2 (c) came before its parent: compressed.
  assert.equal(container.packed(`${a}/layer.tar`), undefined);
  assert.ok(container.dropped(`${a}/layer.tar`));
  assert.equal(container.storedCodec(`${a}/layer.tar`), "none");
  assert.equal(await container.size(`${a}/layer.tar`), bodies[0].length);
  assert.ok(!existsSync(join(dir, a, "layer.tar")), "a dropped layer is not written");
  await assert.rejects(container.open(`${a}/layer.tar`), { code: "IMAGE_MEMBER_DROPPED" });
  assert.ok(
    (await container.members()).some((m) => m.path === `${a}/layer.tar` && m.size === bodies[0].length),
  );
  for (const [id, body] of [
    [b, bodies[1]],
    [c, bodies[2]],
  ] as const) {
    const file = join(dir, id, "layer.tar");
    const stored = readFileSync(file);
    assert.deepEqual(container.packed(`${id}/layer.tar`), {
      codec: "zstd",
      level: 3,
      long: false,
      size: body.length,
      stored: { digest: `sha256:${sha(stored)}`, size: stored.length },
    });
    assert.equal(container.dropped(`${id}/layer.tar`), false);
    const out = execFileSync("zstd", ["-d", "-c", "-q", file]);
    assert.equal(sha(out), sha(body), `${id}: decompresses to the layer's bytes`);
  }
  assert.equal(readFileSync(join(dir, "manifest.json"), "utf8"), "[]");
  assert.ok(!readdirSync(dir).some((n) => n.startsWith(".dockpack")), "the script's notes are removed");
  assert.ok((await container.members()).some((m) => m.path === "manifest.json"));
});

test("a member name that is not a plain relative path fails the unpack; nothing lands outside the folder", async () => {
  for (const bad of ["sp ace/layer.tar", "../escape.txt", "x/../../escape2.txt", "/abs/layer.tar", "a;b"]) {
    const file = await saveFile("bad.tar", [
      { name: "ok/VERSION", body: "1.0" },
      { name: bad, body: "payload" },
    ]);
    process.env.DOCKPACK_TEST_SAVE = file;
    const parent = mkdtempSync(join(work, "bad-"));
    const dir = join(parent, "d");
    mkdirSync(dir);
    const res = await unpackSave(["x"], dir, "test save", undefined, undefined, {
      level: 3,
      longAbove: 1 << 30,
    }).then(
      (c) => c,
      (e: unknown) => e,
    );
    assert.deepEqual(readdirSync(parent), ["d"], `${bad}: nothing written beside the folder`);
    assert.deepEqual(
      readdirSync(work).filter((n) => n.startsWith("escape")),
      [],
      bad,
    );
    if (/[^A-Za-z0-9._/-]/.test(bad)) {
      assert.ok(res instanceof DockpackError && /unexpected member name/.test(res.message), `${bad}: ${res}`);
    }
    if (res instanceof DockpackError) {
      assert.equal(res.code, "IMAGE_FAILED", bad);
    } else {
      // GNU tar itself strips a leading `/` or `../`: the member then lands inside, by its plain name.
      const paths = (await (res as Awaited<ReturnType<typeof unpackSave>>).members()).map((m) => m.path);
      assert.ok(
        paths.every((p) => !p.includes("..") && !p.startsWith("/")),
        `${bad}: ${paths.join(", ")}`,
      );
    }
  }
});

test.after(() => rmSync(work, { recursive: true, force: true }));
