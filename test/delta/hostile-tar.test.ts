/**
 * Issue 12 A1: a tar header whose numeric fields are not octal (size `zzzzzzzzzzz\0`, checksum
 * fixed) used to loop forever with growing memory in `delta info/list/apply` and in the
 * docker-archive reader. Now every reader fails at once with a named error.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta, deltaInfo, deltaList } from "../../src/delta/index.js";
import { indexTar, parseTarNumber } from "../../src/image/container.js";
import { runCli } from "../helpers/cli.js";
import { versionPair, writeSynth } from "../image/synthetic.js";
import { type Member, readMembers, setHeaderField, writeMembers } from "./tar-surgery.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-hostile-tar-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const r = silentReporter();
const DEAD = { DOCKER_HOST: `unix://${join(dir, "no-engine.sock")}` };
const ZZZ = Buffer.from("zzzzzzzzzzz\0", "latin1");

let v1File: string;
let v2File: string;
let pkg: string;
test.before(async () => {
  const pair = await versionPair("dockpack-test-hostile-tar");
  v1File = join(dir, "v1.tar");
  v2File = join(dir, "v2.tar");
  await writeSynth(pair.v1, v1File);
  await writeSynth(pair.v2, v2File);
  pkg = join(dir, "good.dpd");
  await createDelta({ image: v2File, output: pkg, bases: [v1File] }, r);
});

function copy(from: string, name: string): string {
  const p = join(dir, name);
  copyFileSync(from, p);
  return p;
}

test("parseTarNumber: octal digits between spaces/NULs, base-256, nothing else", () => {
  const f = (s: string) => parseTarNumber(Buffer.from(s, "latin1"), 0, s.length);
  assert.equal(f("00000001750\0"), 1000);
  assert.equal(f("     1750 \0\0"), 1000);
  assert.equal(f("\0\0\0\0\0\0\0\0\0\0\0\0"), 0);
  assert.equal(f("zzzzzzzzzzz\0"), undefined);
  assert.equal(f("0000001750z\0"), undefined);
  assert.equal(f("00000008\0"), undefined);
  assert.equal(f("-0000001\0"), undefined);
  const b = Buffer.alloc(12);
  b[0] = 0x80;
  b.writeUInt32BE(123456, 8);
  assert.equal(parseTarNumber(b, 0, 12), 123456);
  b[0] = 0xff;
  assert.equal(parseTarNumber(b, 0, 12), undefined);
});

test("A1: a non-octal size in the metadata member's header: info, list, apply fail at once", async () => {
  const bad = copy(pkg, "zzz-meta.dpd");
  await setHeaderField(bad, "dockpack-delta.json", 124, ZZZ);
  const named = (e: any) => e.code === "DELTA_PACKAGE_INVALID" && /invalid size field/.test(e.message);
  const t0 = Date.now();
  await assert.rejects(deltaInfo({ package: bad }), named);
  await assert.rejects(deltaList({ package: bad }), named);
  await assert.rejects(
    applyDelta({ package: bad, baseArchives: [v1File], output: join(dir, "o.tar") }, r),
    named,
  );
  assert.ok(Date.now() - t0 < 5000);
  const res = runCli(["--json", "delta", "info", bad], { env: DEAD });
  assert.equal(res.code, 1, res.stderr);
  assert.equal(JSON.parse(res.stdout).error.code, "DELTA_PACKAGE_INVALID");
});

test("A1: a non-octal size in a layer member of a docker-archive given as --base or --base-archive", async () => {
  const members = await indexTar(v1File);
  const layer = members.find((e) => e.type === "file" && e.path.endsWith(".tar"));
  assert.ok(layer);
  const bad = copy(v1File, "zzz-base.tar");
  await setHeaderField(bad, layer.path, 124, ZZZ);
  const named = (e: any) => e.code === "ARCHIVE_INVALID" && e.message.includes(bad);
  await assert.rejects(createDelta({ image: v2File, output: join(dir, "x.dpd"), bases: [bad] }, r), named);
  await assert.rejects(
    applyDelta({ package: pkg, baseArchives: [bad], output: join(dir, "y.tar") }, r),
    named,
  );
  const res = runCli(["--json", "delta", "apply", pkg, "--base-archive", bad, "-o", join(dir, "z.tar")], {
    env: DEAD,
  });
  assert.equal(res.code, 1, res.stderr);
  assert.equal(JSON.parse(res.stdout).error.code, "ARCHIVE_INVALID");
});

test("A1: a huge pax header and a non-numeric pax size are refused", async () => {
  const bad = copy(pkg, "zzz-pax.dpd");
  await setHeaderField(bad, "config.json", 124, Buffer.from("77777777777\0", "latin1"));
  await assert.rejects(deltaInfo({ package: bad }), (e: any) =>
    /DELTA_PACKAGE_(TRUNCATED|INVALID)/.test(e.code),
  );
});

test("members the metadata does not list, and link/device entries, are refused by info, list and apply", async () => {
  const members = await readMembers(pkg);
  const cases: [string, Member[]][] = [
    ["extra-file", [...members, { name: "../../escape.txt", body: Buffer.from("x") }]],
    ["extra-layer", [...members, { name: "layers/999-unlisted.full.zst", body: Buffer.from("x") }]],
    [
      "symlink",
      [...members, { name: "layers/link", body: Buffer.alloc(0), type: "symlink", linkname: "/etc/passwd" }],
    ],
    ["directory-first", [{ name: "layers/", body: Buffer.alloc(0), type: "directory" }, ...members]],
  ];
  for (const [name, list] of cases) {
    const bad = join(dir, `${name}.dpd`);
    await writeMembers(bad, list);
    const check = (e: any) => {
      assert.equal(e.code, "DELTA_PACKAGE_INVALID", `${name}: ${e.message}`);
      assert.ok(e.message.includes(bad), e.message);
      return true;
    };
    await assert.rejects(deltaInfo({ package: bad }), check);
    await assert.rejects(deltaList({ package: bad }), check);
    await assert.rejects(
      applyDelta({ package: bad, baseArchives: [v1File], output: join(dir, "x.tar") }, r),
      check,
    );
  }
});

test("a fifo or device given as the package is refused at once (delta info used to wait forever for a writer)", async () => {
  const fifo = join(dir, "fifo.dpd");
  execFileSync("mkfifo", [fifo]);
  for (const p of [fifo, "/dev/zero", dir]) {
    const check = (e: any) => {
      assert.equal(e.code, "DELTA_PACKAGE_INVALID", e.message);
      assert.ok(e.message.includes(p) && /not a regular file/.test(e.message), e.message);
      return true;
    };
    await assert.rejects(deltaInfo({ package: p }), check);
    await assert.rejects(
      applyDelta({ package: p, baseArchives: [v1File], output: join(dir, "x.tar") }, r),
      check,
    );
  }
});
