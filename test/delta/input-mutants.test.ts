/**
 * Issue 12 B: mutation test of the image INPUTS of delta — docker-archive and OCI (oci-archive
 * tar and OCI layout directory) files given to `delta create` (the source image and `--base`) and
 * to `delta apply --base-archive`. Byte flips in every member's tar header and body (manifest,
 * index, config, layer blobs), truncations and appended garbage: every mutant gives the identical
 * image (config digest and every layer's diff_id re-hashed from the output) or a named error
 * (never INTERNAL_ERROR), each in bounded time, in bounded memory, with no temp folder left.
 * A sample goes through the real `dockpack` binary: exit ≠ 0, one `error:` line, no stack trace.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta } from "../../src/delta/index.js";
import { indexTar } from "../../src/image/container.js";
import { openImage } from "../../src/image/open.js";
import type { ArchiveLayout } from "../../src/image/write.js";
import { type SynthImage, versionPair, writeSynth } from "../image/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-input-mutants-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const r = silentReporter();
const LIMIT_MS = 30_000;

/** Re-reads an output archive: its config digest and the sha256 of every layer as it streams. */
async function readBack(file: string): Promise<{ id: string; diffIds: string[]; hashed: string[] }> {
  const img = await openImage(`docker-archive:${file}`);
  try {
    const hashed: string[] = [];
    for (let i = 0; i < img.layers.length; i++) {
      const h = createHash("sha256");
      for await (const chunk of await img.openLayer(i)) h.update(chunk as Buffer);
      hashed.push(`sha256:${h.digest("hex")}`);
    }
    return { id: img.configDigest, diffIds: img.configJson.rootfs?.diff_ids ?? [], hashed };
  } finally {
    await img.close();
  }
}

/** Asserts `file` holds exactly `want`: config digest, diff_ids, and layers that hash to them. */
async function assertIdentical(file: string, want: SynthImage, what: string): Promise<void> {
  const got = await readBack(file);
  assert.equal(got.id, want.id, `${what}: config digest`);
  assert.deepEqual(got.diffIds, JSON.parse(want.config.toString()).rootfs.diff_ids, `${what}: diff_ids`);
  assert.deepEqual(got.hashed, got.diffIds, `${what}: layer contents`);
}

let seed = 4242;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};

/** Mutants of an archive file: flips in each member's header and body, truncations, garbage appended. */
async function archiveMutants(file: string, perMember: number): Promise<{ name: string; bytes: Buffer }[]> {
  const good = readFileSync(file);
  const out: { name: string; bytes: Buffer }[] = [];
  for (const e of await indexTar(file)) {
    for (let k = 0; k < perMember; k++) {
      const m = Buffer.from(good);
      const inHeader = k === 0;
      const at = inHeader ? e.offset - 512 + rand(512) : e.offset + rand(Math.max(1, e.size));
      m[at] ^= 1 << rand(8);
      out.push({ name: `${e.path} ${inHeader ? "header" : "body"} @${at}`, bytes: m });
    }
  }
  for (const cut of [0, 100, 512, 2048, good.length / 2, good.length - 1024, good.length - 1])
    out.push({ name: `truncated to ${Math.floor(cut)}`, bytes: good.subarray(0, Math.floor(cut)) });
  out.push({ name: "garbage appended", bytes: Buffer.concat([good, Buffer.alloc(4096, 0x5a)]) });
  return out;
}

type Outcomes = Record<string, number>;

/** Runs one mutant: identical image or a named error, in bounded time. */
async function check(label: string, outcomes: Outcomes, run: () => Promise<void>): Promise<void> {
  const t0 = Date.now();
  try {
    await run();
    outcomes.identical = (outcomes.identical ?? 0) + 1;
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    const e = err as { code?: unknown; stack?: string };
    assert.ok(
      typeof e?.code === "string" && /^[A-Z][A-Z0-9_]+$/.test(e.code) && e.code !== "INTERNAL_ERROR",
      `${label}: not a named error: ${e?.stack ?? e}`,
    );
    const code = e.code as string;
    outcomes[code] = (outcomes[code] ?? 0) + 1;
  }
  assert.ok(Date.now() - t0 < LIMIT_MS, `${label}: ${Date.now() - t0} ms`);
}

const LAYOUTS: { layout: ArchiveLayout; prefix: string }[] = [
  { layout: "docker-archive", prefix: "docker-archive:" },
  { layout: "docker-archive-oci", prefix: "docker-archive:" },
  { layout: "oci-archive", prefix: "oci-archive:" },
];

test("mutated docker-archive / OCI inputs of delta create and apply: identical image or a named error", async () => {
  const pair = await versionPair("dockpack-test-input-mutants");
  const outcomes: Outcomes = {};
  let count = 0;
  const out = join(dir, "out.tar");
  const mutFile = join(dir, "mutant.tar");
  for (const { layout, prefix } of LAYOUTS) {
    const v1 = join(dir, `v1-${layout}.tar`);
    const v2 = join(dir, `v2-${layout}.tar`);
    await writeSynth(pair.v1, v1, layout);
    await writeSynth(pair.v2, v2, layout);
    const pkg = join(dir, `good-${layout}.dpd`);
    await createDelta(
      { image: `${prefix}${v2}`, output: pkg, bases: [`${prefix}${v1}`], measureGzip: false },
      r,
    );

    // apply --base-archive MUTANT (every member of the base, 3 mutants each)
    for (const m of await archiveMutants(v1, 3)) {
      writeFileSync(mutFile, m.bytes);
      rmSync(out, { force: true });
      await check(`${layout} apply --base-archive: ${m.name}`, outcomes, async () => {
        await applyDelta(
          { package: pkg, baseArchives: [`${prefix}${mutFile}`], output: out, noEngine: true },
          r,
        );
        await assertIdentical(out, pair.v2, `${layout} base ${m.name}`);
      });
      count++;
    }
    // create MUTANT-IMAGE --base v1, then apply with the good base
    for (const m of await archiveMutants(v2, 2)) {
      writeFileSync(mutFile, m.bytes);
      const mpkg = join(dir, "mutant.dpd");
      rmSync(mpkg, { force: true });
      rmSync(out, { force: true });
      await check(`${layout} create IMAGE: ${m.name}`, outcomes, async () => {
        await createDelta(
          { image: `${prefix}${mutFile}`, output: mpkg, bases: [`${prefix}${v1}`], measureGzip: false },
          r,
        );
        await applyDelta({ package: mpkg, baseArchives: [`${prefix}${v1}`], output: out, noEngine: true }, r);
        await assertIdentical(out, pair.v2, `${layout} image ${m.name}`);
      });
      count++;
    }
    // create v2 --base MUTANT, then apply with that same (mutated) base
    for (const m of (await archiveMutants(v1, 2)).filter((_, i) => i % 2 === 0)) {
      writeFileSync(mutFile, m.bytes);
      const mpkg = join(dir, "mutant.dpd");
      rmSync(mpkg, { force: true });
      rmSync(out, { force: true });
      await check(`${layout} create --base: ${m.name}`, outcomes, async () => {
        await createDelta(
          { image: `${prefix}${v2}`, output: mpkg, bases: [`${prefix}${mutFile}`], measureGzip: false },
          r,
        );
        await applyDelta(
          { package: mpkg, baseArchives: [`${prefix}${mutFile}`], output: out, noEngine: true },
          r,
        );
        await assertIdentical(out, pair.v2, `${layout} base ${m.name}`);
      });
      count++;
    }
  }

  // OCI layout directories: the oci-archive unpacked, then blobs flipped, truncated or removed,
  // index.json and oci-layout broken.
  const ociTar = join(dir, "v1-oci-archive.tar");
  const pkg = join(dir, "good-oci-archive.dpd");
  const layoutMutations: [string, (d: string) => void][] = [];
  const blobs = (d: string) =>
    readdirSync(join(d, "blobs", "sha256")).map((b) => join(d, "blobs", "sha256", b));
  for (let i = 0; i < 8; i++)
    layoutMutations.push([
      `blob ${i} flipped`,
      (d) => {
        const all = blobs(d);
        const f = all[i % all.length];
        const b = readFileSync(f);
        if (b.length > 0) b[rand(b.length)] ^= 1 << rand(8);
        writeFileSync(f, b);
      },
    ]);
  for (let i = 0; i < 4; i++)
    layoutMutations.push([
      `blob ${i} truncated`,
      (d) => {
        const all = blobs(d);
        const f = all[i % all.length];
        truncateSync(f, Math.floor(readFileSync(f).length / 2));
      },
    ]);
  layoutMutations.push(["blob removed", (d) => rmSync(blobs(d)[0])]);
  layoutMutations.push(["index.json garbage", (d) => writeFileSync(join(d, "index.json"), "{nope")]);
  layoutMutations.push([
    "index.json empty manifests",
    (d) => writeFileSync(join(d, "index.json"), '{"schemaVersion":2,"manifests":[]}'),
  ]);
  layoutMutations.push([
    "index.json deep",
    (d) => writeFileSync(join(d, "index.json"), `${"[".repeat(100_000)}${"]".repeat(100_000)}`),
  ]);
  layoutMutations.push(["oci-layout removed", (d) => rmSync(join(d, "oci-layout"))]);
  layoutMutations.push([
    "blob replaced by a symlink to /etc/passwd",
    (d) => {
      const f = blobs(d)[1];
      rmSync(f);
      spawnSync("ln", ["-s", "/etc/passwd", f]);
    },
  ]);
  for (const [name, mutate] of layoutMutations) {
    const layoutDir = join(dir, "layout");
    rmSync(layoutDir, { recursive: true, force: true });
    mkdirSync(layoutDir);
    spawnSync("tar", ["-xf", ociTar, "-C", layoutDir]);
    mutate(layoutDir);
    rmSync(out, { force: true });
    await check(`oci layout: ${name}`, outcomes, async () => {
      await applyDelta({ package: pkg, baseArchives: [`oci:${layoutDir}`], output: out, noEngine: true }, r);
      await assertIdentical(out, pair.v2, `oci layout ${name}`);
    });
    count++;
  }

  console.log(`input mutants: ${count}`, outcomes);
  assert.ok(count >= 150, `${count} mutants`);
  assert.ok((outcomes.identical ?? 0) > 0 && Object.keys(outcomes).length > 3, JSON.stringify(outcomes));
  const left = readdirSync(tmpdir()).filter(
    (n) => n.startsWith("dockpack-") && n.includes(`-p${process.pid}t`),
  );
  assert.deepEqual(left, [], "no temp folder left");
  assert.ok(process.resourceUsage().maxRSS < 300 * 1024, `RSS ${process.resourceUsage().maxRSS} KiB`);
});

const DIST = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

test("CLI sample: mutated inputs through the dockpack binary exit non-zero with one named error line", async () => {
  assert.ok(existsSync(DIST), "dist/cli/main.js is built by scripts/setup.sh");
  const pair = await versionPair("dockpack-test-input-mutants-cli");
  const v1 = join(dir, "cli-v1.tar");
  const v2 = join(dir, "cli-v2.tar");
  await writeSynth(pair.v1, v1);
  await writeSynth(pair.v2, v2);
  const pkg = join(dir, "cli.dpd");
  await createDelta({ image: v2, output: pkg, bases: [v1], measureGzip: false }, r);
  const entries = await indexTar(v1);
  const good = readFileSync(v1);
  const samples: Buffer[] = [good.subarray(0, 1000), good.subarray(0, good.length / 2)];
  for (const e of entries.slice(0, 3)) {
    const m = Buffer.from(good);
    m[e.offset + Math.floor(e.size / 2)] ^= 0x10;
    samples.push(m);
  }
  const work = join(dir, "cli-tmp");
  mkdirSync(work, { recursive: true });
  const env = {
    ...process.env,
    NO_COLOR: "1",
    TMPDIR: work,
    DOCKER_HOST: `unix://${join(dir, "none.sock")}`,
  };
  let failures = 0;
  for (const [i, bytes] of samples.entries()) {
    const bad = join(dir, `cli-bad-${i}.tar`);
    writeFileSync(bad, bytes);
    for (const args of [
      ["delta", "apply", pkg, "--base-archive", bad, "-o", join(dir, `cli-out-${i}.tar`), "--no-engine"],
      ["delta", "create", "--base", bad, v2, join(dir, `cli-${i}.dpd`)],
      ["delta", "create", "--base", v1, bad, join(dir, `cli-img-${i}.dpd`)],
    ]) {
      const res = spawnSync(process.execPath, [DIST, ...args], { env, encoding: "utf8", timeout: LIMIT_MS });
      const what = `${args.slice(0, 2).join(" ")} sample ${i}: ${res.stderr}`;
      if (res.status === 0) continue; // a flip that changes nothing read (tar padding)
      failures++;
      assert.notEqual(res.status, null, `${what}: killed after ${LIMIT_MS} ms`);
      assert.doesNotMatch(res.stderr, /^\s+at /m, `${what}: stack trace`);
      assert.doesNotMatch(res.stderr, /INTERNAL_ERROR|internal error/i, what);
      const lines = res.stderr.split("\n").filter((l) => l.startsWith("error:"));
      assert.equal(lines.length, 1, `${what}: one error line`);
      if (i > 0) continue;
      const json = spawnSync(process.execPath, [DIST, ...args, "--json"], {
        env,
        encoding: "utf8",
        timeout: LIMIT_MS,
      });
      const doc = JSON.parse(json.stdout);
      assert.match(doc.error?.code ?? doc.code, /^[A-Z][A-Z0-9_]+$/, json.stdout);
    }
  }
  assert.ok(failures >= 8, `${failures} refusals`);
  assert.deepEqual(readdirSync(work), [], "no temp folder left");
});
