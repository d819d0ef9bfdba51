/** Delta bad input: each gets its own error and leaves nothing behind. No engine needed. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import tar from "tar-stream";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta, deltaInfo } from "../../src/delta/index.js";
import { indexTar } from "../../src/image/container.js";
import { runCli } from "../helpers/cli.js";
import { makeImage, makeLayer, type SynthImage, versionPair, writeSynth } from "../image/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-bad-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const r = silentReporter();
const DEAD = { DOCKER_HOST: `unix://${join(dir, "no-engine.sock")}` };

let pair: { v1: SynthImage; v2: SynthImage };
let v1File: string;
let v2File: string;
let pkg: string;
test.before(async () => {
  pair = await versionPair("dockpack-test-bad");
  v1File = join(dir, "v1.tar");
  v2File = join(dir, "v2.tar");
  await writeSynth(pair.v1, v1File);
  await writeSynth(pair.v2, v2File);
  pkg = join(dir, "good.dpd");
  await createDelta({ image: v2File, output: pkg, bases: [v1File] }, r);
});

function copy(name: string): string {
  const p = join(dir, name);
  rmSync(p, { force: true });
  const data = readFileSync(pkg);
  const fd = openSync(p, "w");
  writeSync(fd, data);
  closeSync(fd);
  return p;
}

test("missing base layers: the error lists the diff_ids and the base image; nothing written", async () => {
  const out = join(dir, "missing.tar");
  const res = runCli(["--json", "delta", "apply", pkg, "-o", out], { env: DEAD });
  assert.equal(res.code, 1, res.stderr);
  const err = JSON.parse(res.stdout).error;
  assert.equal(err.code, "DELTA_BASE_MISSING");
  assert.match(err.message, /sha256:[a-f0-9]{64} \(in dockpack-test-bad:1\)/);
  assert.equal(err.details.missing.length, 3, "two reused layers and the delta's base layer");
  assert.match(err.hint, /dockpack-test-bad:1/);
  assert.throws(() => statSync(out));
});

test("a corrupted package member fails with a digest error naming the layer", async () => {
  const bad = copy("corrupt.dpd");
  const entry = (await indexTar(bad)).find((e) => e.path.startsWith("layers/"));
  assert.ok(entry);
  const fd = openSync(bad, "r+");
  writeSync(fd, Buffer.from("XXXX"), 0, 4, entry.offset + Math.floor(entry.size / 2));
  closeSync(fd);
  const out = join(dir, "corrupt.tar");
  await assert.rejects(
    applyDelta({ package: bad, baseArchives: [v1File], output: out }, r),
    (e: any) =>
      e.code === "DIGEST_MISMATCH" && e.message.includes(entry.path) && /layer \d \(sha256:/.test(e.message),
  );
  assert.throws(() => statSync(out));
});

test("a delta applied to the wrong old bytes is caught by the digest checks before anything is written", async () => {
  // A base archive whose config claims v1's diff_ids but whose app layer holds other bytes.
  const other = await makeLayer([{ path: "srv/app/module3.js", content: "something else" }]);
  const fake = makeImage([pair.v1.layers[0], other, pair.v1.layers[2]], ["dockpack-test-bad:fake"]);
  const cfg = JSON.parse(fake.config.toString());
  cfg.rootfs.diff_ids = JSON.parse(pair.v1.config.toString()).rootfs.diff_ids;
  const lying: SynthImage = { ...fake, config: Buffer.from(JSON.stringify(cfg)) };
  const file = join(dir, "lying.tar");
  await writeSynth({ ...lying, layers: fake.layers }, file);
  const out = join(dir, "wrong.tar");
  await assert.rejects(
    applyDelta({ package: pkg, baseArchives: [file], output: out }, r),
    (e: any) => e.code === "DIGEST_MISMATCH" && /base layer sha256:[a-f0-9]{64}/.test(e.message),
  );
  assert.throws(() => statSync(out));
});

test("a truncated package", async () => {
  const bad = copy("trunc.dpd");
  truncateSync(bad, statSync(bad).size - 3000);
  await assert.rejects(
    deltaInfo({ package: bad }),
    (e: any) => e.code === "DELTA_PACKAGE_TRUNCATED" && e.message.includes(bad),
  );
  const res = runCli(["delta", "apply", bad, "--base-archive", v1File, "-o", join(dir, "t.tar")], {
    env: DEAD,
  });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /truncated/);
});

test("an unsupported format version", async () => {
  const file = join(dir, "v99.dpd");
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((res) => pack.on("end", () => res()));
  pack.entry(
    { name: "dockpack-delta.json" },
    JSON.stringify({ format: "dockpack-delta", formatVersion: 99 }),
  );
  pack.finalize();
  await ended;
  const fd = openSync(file, "w");
  writeSync(fd, Buffer.concat(chunks));
  closeSync(fd);
  await assert.rejects(
    deltaInfo({ package: file }),
    (e: any) => e.code === "DELTA_FORMAT_UNSUPPORTED" && /version 99/.test(e.message),
  );
  await assert.rejects(deltaInfo({ package: v1File }), (e: any) => e.code === "DELTA_PACKAGE_INVALID");
});

test("an IMAGE that does not exist; an output that exists without -f", async () => {
  await assert.rejects(
    createDelta({ image: join(dir, "nope.tar"), output: join(dir, "x.dpd") }, r),
    (e: any) => e.code === "IMAGE_NOT_FOUND",
  );
  // A fifo or a directory given as an archive is named as such, never waited on.
  const fifo = join(dir, "fifo.tar");
  execFileSync("mkfifo", [fifo]);
  for (const image of [`docker-archive:${fifo}`, fifo, `docker-archive:${dir}`]) {
    await assert.rejects(
      createDelta({ image, output: join(dir, "x.dpd") }, r),
      (e: any) => e.code === "IMAGE_NOT_FOUND" && /is not a regular file/.test(e.message),
    );
  }
  rmSync(fifo);
  const before = readFileSync(pkg);
  const res = runCli(["--json", "delta", "create", "--base", v1File, v2File, pkg], { env: DEAD });
  assert.equal(res.code, 1);
  assert.equal(JSON.parse(res.stdout).error.code, "DELTA_OUTPUT_EXISTS");
  assert.deepEqual(readFileSync(pkg), before, "the existing package is untouched");
  const out = join(dir, "exists.tar");
  const fd = openSync(out, "w");
  closeSync(fd);
  await assert.rejects(
    applyDelta({ package: pkg, baseArchives: [v1File], output: out }, r),
    (e: any) => e.code === "DELTA_OUTPUT_EXISTS",
  );
  await applyDelta({ package: pkg, baseArchives: [v1File], output: out, force: true }, r);
  assert.ok(statSync(out).size > 0);
  const bsdiff = runCli(["delta", "create", "-l", "99", v2File, join(dir, "lvl.dpd")], { env: DEAD });
  assert.equal(bsdiff.code, 2, "a bad level is a usage error");
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith(".") || f.includes(".tmp")),
    [],
    "no temp files left",
  );
});

test("create and apply from files alone with no engine (CLI, DOCKER_HOST pointing at nothing)", async () => {
  const p = join(dir, "noengine.dpd");
  const c = runCli(
    [
      "--json",
      "delta",
      "create",
      "--base",
      `docker-archive:${v1File}`,
      `docker-archive:${v2File}`,
      p,
      "-m",
      "zstd",
    ],
    { env: DEAD },
  );
  assert.equal(c.code, 0, c.stderr);
  assert.equal(JSON.parse(c.stdout).metadata.source.id, pair.v2.id);
  const out = join(dir, "noengine.tar");
  const a = runCli(["--json", "delta", "apply", p, "--base-archive", v1File, "-o", out], { env: DEAD });
  assert.equal(a.code, 0, a.stderr);
  assert.equal(JSON.parse(a.stdout).imageId, pair.v2.id);
  const l = runCli(["delta", "list", p], { env: DEAD });
  assert.equal(l.code, 0);
  assert.match(l.stdout, /zstd delta against/);
  const i = runCli(["delta", "info", p], { env: DEAD });
  assert.match(i.stdout, /vs docker save/);
});
