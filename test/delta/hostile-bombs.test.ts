/**
 * Issue 12 A6: decompression and patch bombs. A layer member or patch that expands past the size
 * the metadata declares fails at the first byte over (`CODEC_OUTPUT_TOO_LARGE`), a bsdiff header
 * that declares another size fails before bspatch allocates it, and forged method windows are
 * refused — in bounded time, memory and disk, with no temp folder left.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta } from "../../src/delta/index.js";
import { versionPair, writeSynth } from "../image/synthetic.js";
import { forgePackage } from "./tar-surgery.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-bombs-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const r = silentReporter();

let v1File: string;
let v2File: string;
const pkgs: Record<string, string> = {};
test.before(async () => {
  const pair = await versionPair("dockpack-test-bombs");
  v1File = join(dir, "v1.tar");
  v2File = join(dir, "v2.tar");
  await writeSynth(pair.v1, v1File);
  await writeSynth(pair.v2, v2File);
  for (const method of ["xdelta3", "bsdiff", "zstd"] as const) {
    pkgs[method] = join(dir, `${method}.dpd`);
    await createDelta({ image: v2File, output: pkgs[method], bases: [v1File], method }, r);
  }
});

/** `bytes` zero bytes compressed with zstd (a tiny member that expands hugely). */
function zeroBomb(bytes: number): Buffer {
  return execFileSync("bash", ["-c", `head -c ${bytes} /dev/zero | zstd -q -1 -c`], { maxBuffer: 1 << 26 });
}

function applyTempDirs(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(`dockpack-delta-apply-p${process.pid}t`));
}

async function expectFailure(pkg: string, code: string, pattern?: RegExp): Promise<void> {
  const out = join(dir, "out.tar");
  const t0 = Date.now();
  await assert.rejects(applyDelta({ package: pkg, baseArchives: [v1File], output: out }, r), (e: any) => {
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
  assert.ok(Date.now() - t0 < 30_000, "bounded time");
  assert.equal(existsSync(out), false, "nothing written");
  assert.deepEqual(applyTempDirs(), [], "no temp folder left");
  assert.ok(process.resourceUsage().maxRSS < 300 * 1024, `RSS ${process.resourceUsage().maxRSS} KiB`);
}

test("A6: a full layer member that expands to 1 GiB stops at the declared layer size", async () => {
  const bad = join(dir, "full-bomb.dpd");
  await forgePackage(pkgs.xdelta3, bad, (p) => {
    const l = p.md.layers.find((x: any) => x.ship === "full");
    assert.ok(l, "the synthetic pair has a full layer");
    p.members.find((m) => m.name === l.member)!.body = zeroBomb(1024 ** 3);
  });
  await expectFailure(bad, "CODEC_OUTPUT_TOO_LARGE", /layers\/.*expands past the \d+ bytes/);
});

test("A6: an xdelta3 / zstd patch member that expands to 1 GiB stops at the patch limit", async () => {
  for (const method of ["xdelta3", "zstd"]) {
    const bad = join(dir, `${method}-patch-bomb.dpd`);
    await forgePackage(pkgs[method], bad, (p) => {
      const l = p.md.layers.find((x: any) => x.ship === "delta");
      assert.ok(l);
      // zstd patches are stored as written (codec none): then the patch itself decodes to 1 GiB
      // of zeros and is stopped at the layer size while being applied.
      p.members.find((x) => x.name === l.member)!.body = zeroBomb(1024 ** 3);
    });
    await expectFailure(bad, "CODEC_OUTPUT_TOO_LARGE");
  }
});

test("A6: a bsdiff header that declares 1.5 GiB fails before bspatch allocates it", async () => {
  const bad = join(dir, "bsdiff-header.dpd");
  await forgePackage(pkgs.bsdiff, bad, (p) => {
    const l = p.md.layers.find((x: any) => x.ship === "delta");
    const m = p.members.find((x) => x.name === l.member)!;
    const body = Buffer.from(m.body);
    body.writeUInt32LE(0x60000000, 24);
    body.writeUInt32LE(0, 28);
    m.body = body;
  });
  await expectFailure(bad, "DELTA_PATCH_INVALID", /declares 1610612736 bytes/);
});

test("A6: a forged xdelta3 window or zstd windowLog is refused", async () => {
  const w = join(dir, "window.dpd");
  await forgePackage(pkgs.xdelta3, w, (p) => {
    p.md.layers.find((x: any) => x.ship === "delta").params = { window: 2 ** 31 };
  });
  await expectFailure(w, "DELTA_PACKAGE_INVALID", /xdelta3 window 2147483648/);
  const z = join(dir, "windowlog.dpd");
  await forgePackage(pkgs.zstd, z, (p) => {
    p.md.layers.find((x: any) => x.ship === "delta").params = { windowLog: 31 };
  });
  await expectFailure(z, "DELTA_PACKAGE_INVALID", /zstd windowLog 31/);
});

test("an empty member or a patch its program refuses (digests forged to match) is a named error, not INTERNAL_ERROR", async () => {
  for (const [name, body] of [
    ["empty", Buffer.alloc(0)],
    ["garbage", Buffer.from("garbage garbage garbage")],
  ] as const) {
    for (const method of ["xdelta3", "bsdiff", "zstd"] as const) {
      const bad = join(dir, `${method}-${name}.dpd`);
      let member = "";
      await forgePackage(pkgs[method], bad, (p) => {
        const l = p.md.layers.find((x: any) => x.member && (name === "garbage" ? x.ship === "delta" : true));
        member = l.member;
        // zstd-compressed members get garbage inside valid zstd: the patch program itself fails
        const inner = name === "garbage" && l.codec === "zstd";
        p.members.find((m) => m.name === l.member)!.body = inner
          ? execFileSync("zstd", ["-q", "-c"], { input: body })
          : body;
      });
      const out = join(dir, "out.tar");
      await assert.rejects(applyDelta({ package: bad, baseArchives: [v1File], output: out }, r), (e: any) => {
        assert.notEqual(e.code, "INTERNAL_ERROR", e.message);
        assert.ok(e.message.includes(bad), `${name}/${method}: ${e.message}`);
        assert.ok(e.message.includes(member) || e.message.includes("layer "), e.message);
        return true;
      });
      assert.equal(existsSync(out), false, "nothing written");
      assert.deepEqual(applyTempDirs(), [], "no temp folder left");
    }
  }
});

test("A6: the unforged packages still apply", async () => {
  for (const method of ["xdelta3", "bsdiff", "zstd"]) {
    const res = await applyDelta(
      { package: pkgs[method], baseArchives: [v1File], output: join(dir, `${method}.tar`) },
      r,
    );
    assert.match(res.imageId, /^sha256:/);
  }
});
