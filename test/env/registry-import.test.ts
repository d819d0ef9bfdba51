/**
 * Streaming `packages import REF` on the real engine and a real registry (test/helpers/registry.ts):
 * the volumes stream from the registry into the restore, each chunk verified as it streams.
 *
 * - data identical after a streaming import; peak RSS growth and the temporary folder's bytes
 *   (allocated blocks, sampled) stay far below the package size; time against pull-then-import;
 * - kill -9 while a volume streams (through a slowed proxy): the next dockpack run undoes it —
 *   no branch, worktree, volume or temporary folder left;
 * - `--verify-key`: unsigned and wrongly signed packages refused before anything changes;
 * - a registry serving one corrupt chunk of a volume (its blob rewritten in the registry's
 *   storage): `DIGEST_MISMATCH`, everything rolled back.
 *
 * Two volumes of DOCKPACK_OCI_STREAM_MIB MiB each (default 24; half /dev/urandom, half text).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { openRepository } from "../../src/core/oci/client.js";
import type { ImageManifest } from "../../src/core/oci/media-types.js";
import { importPackage } from "../../src/env/import.js";
import { createEnvironment, exportEnvironment, removeEnvironment } from "../../src/env/index.js";
import { pullPackage, pushPackage, readRemotePackage } from "../../src/env/registry.js";
import { importFromRegistry } from "../../src/env/registry-import.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { startProxy, startRegistry, type TestRegistry } from "../helpers/registry.js";
import {
  cleanupPrefix,
  fillHalfRandom,
  initAppRepo,
  sh,
  volumeListing,
  volumesWithPrefix,
} from "./engine-helpers.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const MIB = Number(process.env.DOCKPACK_OCI_STREAM_MIB ?? 24);
const project = `dps${Math.random().toString(36).slice(2, 8)}`;
const vol = (branch: string, v: string) => `${project}-${branch}_${v}`;
let work = "";
let app = "";
let reg: TestRegistry;
let ref = "";
let pkgSize = 0;
let pkgFile = "";
let listing: Record<string, string[]> = {};

before(async () => {
  reg = await startRegistry();
  if (!engineAnswers()) return;
  ({ work, app } = await initAppRepo("dockpack-oci-stream", project));
  await createEnvironment({ cwd: app, branch: "src" });
  for (const v of ["db", "media"]) {
    sh("docker", ["volume", "create", vol("src", v)]);
    fillHalfRandom(vol("src", v), v, MIB);
  }
  listing = { db: volumeListing(vol("src", "db")), media: volumeListing(vol("src", "media")) };
  const exp = await exportEnvironment({ cwd: app, branch: "src", outputDir: join(work, "packages") });
  pkgSize = statSync(exp.package).size;
  pkgFile = exp.package;
  ref = `${reg.host}/${project}/env:1`;
  await pushPackage({ package: exp.package, reference: ref });
});
after(async () => {
  if (work) cleanupPrefix(project, work);
  await reg?.stop();
});

/** Allocated bytes (blocks, so a sparse file's holes count nothing) and apparent bytes under `dir`. */
function diskBytes(dir: string): { allocated: number; apparent: number } {
  let allocated = 0;
  let apparent = 0;
  if (!existsSync(dir)) return { allocated, apparent };
  for (const f of readdirSync(dir, { recursive: true })) {
    try {
      const s = statSync(join(dir, String(f)));
      if (!s.isFile()) continue;
      allocated += s.blocks * 512;
      apparent += s.size;
    } catch {
      // removed meanwhile
    }
  }
  return { allocated, apparent };
}

const branchExists = (b: string) => sh("git", ["branch", "--list", b], app).trim() !== "";

function nothingLeftFor(branch: string, tmp: string): void {
  assert.equal(branchExists(branch), false, `branch ${branch} was removed`);
  assert.ok(!existsSync(join(app, "worktrees", branch)), "no worktree");
  assert.deepEqual(volumesWithPrefix(`${project}-${branch}_`), [], "no volume");
  assert.deepEqual(
    existsSync(tmp) ? readdirSync(tmp).filter((f) => f.startsWith("dockpack-pull-")) : [],
    [],
    "no temporary folder",
  );
}

test("import REF streams the volumes: data identical, memory and temporary disk far below the package size", async (t) => {
  if (!needsEngine(t)) return;
  // first the old way (which also warms this process up): pull the whole package, import the file
  const t1 = Date.now();
  const pulled = await pullPackage({ reference: ref, outputDir: join(work, "pulled") });
  const t2 = Date.now();
  await importPackage({ cwd: app, package: pulled.package, targetBranch: "pi" });
  const t3 = Date.now();
  assert.deepEqual(volumeListing(vol("pi", "db")), listing.db);

  const tmp = join(work, "tmp-stream");
  mkdirSync(tmp);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  const rss0 = process.memoryUsage().rss;
  let rssPeak = rss0;
  let tmpPeak = { allocated: 0, apparent: 0 };
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    const d = diskBytes(tmp);
    if (d.allocated > tmpPeak.allocated) tmpPeak = d;
  }, 20);
  const t0 = Date.now();
  let res: Awaited<ReturnType<typeof importFromRegistry>>;
  try {
    res = await importFromRegistry({ cwd: app, reference: ref, targetBranch: "st" });
  } finally {
    clearInterval(sampler);
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  const streamSeconds = (Date.now() - t0) / 1000;
  assert.equal(res.environment.composeProject, `${project}-st`);
  assert.deepEqual(volumeListing(vol("st", "db")), listing.db);
  assert.deepEqual(volumeListing(vol("st", "media")), listing.media);
  assert.ok(res.pulled.downloadedBytes >= pkgSize - 64 * 1024, JSON.stringify(res.pulled));
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.startsWith("dockpack-pull-")),
    [],
    "the temporary folder is gone",
  );
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  t.diagnostic(
    `package ${mib(pkgSize)} MiB: streaming import ${streamSeconds.toFixed(1)} s, peak RSS +${mib(rssPeak - rss0)} MiB ` +
      `(from ${mib(rss0)} MiB), temporary folder peak ${mib(tmpPeak.allocated)} MiB allocated ` +
      `(${mib(tmpPeak.apparent)} MiB apparent, sparse), skeleton ${mib(res.pulled.skeletonBytes)} MiB; ` +
      `pull ${((t2 - t1) / 1000).toFixed(1)} s + import ${((t3 - t2) / 1000).toFixed(1)} s = ` +
      `${((t3 - t1) / 1000).toFixed(1)} s with the whole package on disk`,
  );
  // never a full copy on disk: the skeleton holds metadata, environment, code and checksums only
  assert.ok(tmpPeak.allocated < pkgSize / 10, `temporary folder peaked at ${tmpPeak.allocated} B`);
  // never a volume in memory: a fixed bound (the growth measured is 10-17 MiB whatever the size,
  // module loading and buffers), below one volume member from DOCKPACK_OCI_STREAM_MIB=128 on
  assert.ok(rssPeak - rss0 < 64 * 2 ** 20, `RSS grew by ${rssPeak - rss0} B`);
  for (const b of ["st", "pi"])
    await removeEnvironment({ cwd: app, branch: b, force: true, volumes: true, deleteBranch: true });
});

test("kill -9 while a volume streams: the next dockpack run rolls the import back", async (t) => {
  if (!needsEngine(t)) return;
  const proxy = await startProxy(reg, { slowMs: 400 });
  const tmp = join(work, "tmp-kill");
  const state = join(work, "state");
  mkdirSync(tmp);
  const env = { ...process.env, NO_COLOR: "1", TMPDIR: tmp, DOCKPACK_STATE_DIR: state };
  try {
    const child = spawn(
      process.execPath,
      [
        "--import",
        TSX,
        MAIN,
        "packages",
        "import",
        `${proxy.host}/${project}/env:1`,
        "--target-branch",
        "kk",
      ],
      { cwd: app, env, stdio: "ignore" },
    );
    const dead = new Promise<void>((r) => child.on("exit", () => r()));
    const deadline = Date.now() + 120_000;
    // a volume of the import exists and blob bytes are flowing: it is restoring. Volume restores
    // start before `git worktree add` ends (they overlap), so wait for the branch too: the kill
    // must land after both, to show that the rollback removes each.
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the import ended (${child.exitCode}) before the kill`);
      if (Date.now() > deadline) throw new Error("the import never reached its volumes");
      if (volumesWithPrefix(`${project}-kk_`).length > 0 && branchExists("kk")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(child.exitCode, null, "still restoring when killed");
    child.kill("SIGKILL");
    await dead;
    assert.ok(branchExists("kk"), "the killed run had created its branch");
    const next = runCli(["--json", "env", "list"], { cwd: app, env });
    assert.equal(next.code, 0, next.stderr);
    nothingLeftFor("kk", tmp);
  } finally {
    await proxy.stop();
  }
});

test("--verify-key: import REF refuses an unsigned or wrongly signed package before anything changes", async (t) => {
  if (!needsEngine(t)) return;
  const keys = join(work, "keys");
  mkdirSync(keys);
  for (const k of ["alice", "mallory"])
    sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", k, "-f", join(keys, k)]);
  // another repository: the same manifest signed in this one would sign `ref` too (referrers
  // attach to the manifest digest)
  const signed = `${reg.host}/${project}/signed:1`;
  await pushPackage({ package: pkgFile, reference: signed, sign: join(keys, "alice") });
  const tmp = join(work, "tmp-sig");
  mkdirSync(tmp);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    await assert.rejects(
      importFromRegistry({
        cwd: app,
        reference: ref,
        targetBranch: "sg",
        verifyKey: join(keys, "alice.pub"),
      }),
      (e: { code: string }) => e.code === "PACKAGE_SIGNATURE_MISSING",
    );
    nothingLeftFor("sg", tmp);
    await assert.rejects(
      importFromRegistry({
        cwd: app,
        reference: signed,
        targetBranch: "sg",
        verifyKey: join(keys, "mallory.pub"),
      }),
      (e: { code: string }) => e.code === "PACKAGE_SIGNATURE_INVALID",
    );
    nothingLeftFor("sg", tmp);
    const ok = await importFromRegistry({
      cwd: app,
      reference: signed,
      targetBranch: "sg",
      verifyKey: join(keys, "alice.pub"),
    });
    assert.equal(ok.environment.branch, "sg");
    assert.deepEqual(volumeListing(vol("sg", "db")), listing.db);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  await removeEnvironment({ cwd: app, branch: "sg", force: true, volumes: true, deleteBranch: true });
});

test("a corrupt chunk of a volume in the registry: DIGEST_MISMATCH mid-stream, everything rolled back", async (t) => {
  if (!needsEngine(t)) return;
  const { repo } = await openRepository(ref, { credentials: null });
  let manifest: ImageManifest;
  try {
    manifest = (await readRemotePackage(repo, "1")).manifest;
  } finally {
    await repo.transport.close();
  }
  // a chunk in the middle of the second volume: the first volume restores, then this one fails
  const chunks = manifest.layers.filter((l) => l.annotations?.["dev.dockpack.volume"] === "media");
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  const bad = chunks[Math.floor(chunks.length / 2)];
  const hex = bad.digest.slice(7);
  const data = join(reg.dir, "storage/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
  writeFileSync(data, randomBytes(bad.size));
  const tmp = join(work, "tmp-bad");
  mkdirSync(tmp);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    await assert.rejects(
      importFromRegistry({ cwd: app, reference: ref, targetBranch: "bd" }),
      (e: { code: string; message: string }) => {
        assert.equal(e.code, "DIGEST_MISMATCH", e.message);
        assert.match(e.message, new RegExp(`${bad.digest}.*rolled back`));
        return true;
      },
    );
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  nothingLeftFor("bd", tmp);
});
