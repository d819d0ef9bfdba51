/**
 * Issue 12 B (part): mutation test of delta packages. Packages made with every method (xdelta3,
 * bsdiff, zstd, layer) are mutated — byte flips in every member kind (header, metadata, config,
 * full members, patches), truncations, appended garbage — and applied in-process: each gives the
 * identical image (same image ID) or a named error (never INTERNAL_ERROR), in bounded time, with
 * no temp folder left.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta } from "../../src/delta/index.js";
import { indexTar } from "../../src/image/container.js";
import { versionPair, writeSynth } from "../image/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-mutants-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const r = silentReporter();

test("≥150 mutants over every member kind and method: identical image or a named error", async () => {
  const pair = await versionPair("dockpack-test-mutants");
  const v1 = join(dir, "v1.tar");
  const v2 = join(dir, "v2.tar");
  await writeSynth(pair.v1, v1);
  await writeSynth(pair.v2, v2);
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  let count = 0;
  const outcomes: Record<string, number> = {};
  for (const method of ["xdelta3", "bsdiff", "zstd", "layer"] as const) {
    const pkg = join(dir, `${method}.dpd`);
    await createDelta({ image: v2, output: pkg, bases: [v1], method, measureGzip: false }, r);
    const good = readFileSync(pkg);
    const entries = await indexTar(pkg);
    const mutants: Buffer[] = [];
    for (const e of entries) {
      for (let k = 0; k < 9; k++) {
        const m = Buffer.from(good);
        const inHeader = k < 2;
        const at = inHeader ? e.offset - 512 + rand(512) : e.offset + rand(Math.max(1, e.size));
        m[at] ^= 1 << rand(8);
        mutants.push(m);
      }
    }
    for (const cut of [100, 512, 1024, good.length / 2, good.length - 1024, good.length - 1])
      mutants.push(good.subarray(0, Math.floor(cut)));
    mutants.push(Buffer.concat([good, Buffer.alloc(1536, 0x41)]));
    for (const m of mutants) {
      const file = join(dir, "m.dpd");
      writeFileSync(file, m);
      const out = join(dir, "m.tar");
      rmSync(out, { force: true });
      const t0 = Date.now();
      try {
        const res = await applyDelta({ package: file, baseArchives: [v1], output: out, noEngine: true }, r);
        assert.equal(res.imageId, pair.v2.id, "a mutant that applies gives the identical image");
        outcomes.identical = (outcomes.identical ?? 0) + 1;
      } catch (e: any) {
        assert.ok(
          typeof e.code === "string" && e.code !== "INTERNAL_ERROR",
          `${method} mutant ${count}: ${e.stack}`,
        );
        outcomes[e.code] = (outcomes[e.code] ?? 0) + 1;
      }
      assert.ok(Date.now() - t0 < 30_000, "bounded time");
      count++;
    }
  }
  assert.ok(count >= 150, `${count} mutants`);
  assert.deepEqual(
    readdirSync(tmpdir()).filter((n) => n.startsWith(`dockpack-delta-apply-p${process.pid}t`)),
    [],
    "no temp folder left",
  );
  assert.ok(process.resourceUsage().maxRSS < 300 * 1024, `RSS ${process.resourceUsage().maxRSS} KiB`);
  console.log(`mutants: ${count}`, outcomes);
});
