/**
 * kill -9 during `packages push` and `packages pull` (through a slowed proxy so the kill lands
 * mid-transfer), then rerun: the push sends only the blobs the registry lacks and nothing was
 * tagged before; the pull resumes its partial download and no package appeared before it completed.
 * (distribution 2.8 invalidates an upload session whose PATCH was cut mid-body, so after a kill the
 * interrupted blob starts over; a chunked upload interrupted between chunks resumes, see client.test.ts.)
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { openRepository } from "../../../src/core/oci/client.js";
import { pullPackage, pushPackage } from "../../../src/env/registry.js";
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from "../../helpers/registry.js";
import { writeTwoVolumePackage } from "./synthetic-package.js";

const MAIN = fileURLToPath(new URL("../../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");

let reg: TestRegistry;
let proxy: TestProxy;
let dir: string;
let pkg: string;
const savedCache = process.env.XDG_CACHE_HOME;
before(async () => {
  reg = await startRegistry();
  proxy = await startProxy(reg, { slowMs: 120 });
  dir = await mkdtemp(join(tmpdir(), "dockpack-oci-kill-"));
  process.env.XDG_CACHE_HOME = join(dir, "cache");
  pkg = join(dir, "synth-main-k.dockpack.tar");
  await writeTwoVolumePackage(pkg, { db: randomBytes(6 * 1024 * 1024), cache: randomBytes(6 * 1024 * 1024) });
});
after(async () => {
  if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCache;
  await proxy?.stop();
  await rm(dir, { recursive: true, force: true });
  await reg?.stop();
});

/** Starts the CLI and SIGKILLs it once `ready()` is true; resolves when it is dead. */
async function killWhen(args: string[], ready: () => boolean): Promise<void> {
  const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], {
    env: { ...process.env, NO_COLOR: "1" },
    stdio: "ignore",
  });
  const dead = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (ready()) break;
    if (child.exitCode !== null) throw new Error(`the CLI ended (${child.exitCode}) before the kill`);
    if (Date.now() > deadline) throw new Error("the CLI never reached the kill point");
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  await dead;
}

/** Bytes of blobs the registry has completed (its storage's blob data files). */
function storedBlobBytes(): number {
  const root = join(reg.dir, "storage/docker/registry/v2/blobs/sha256");
  if (!existsSync(root)) return 0;
  let n = 0;
  for (const a of readdirSync(root))
    for (const h of readdirSync(join(root, a))) {
      const f = join(root, a, h, "data");
      if (existsSync(f)) n += statSync(f).size;
    }
  return n;
}

test("kill -9 mid-push: no tag; the rerun sends only the missing blobs", async () => {
  const ref = `${proxy.host}/kill/env:v1`;
  await killWhen(
    ["packages", "push", pkg, ref, "--chunk-size", "1"],
    () => storedBlobBytes() >= 6 * 1024 * 1024,
  );
  const { repo } = await openRepository(`${reg.host}/kill/env`, { credentials: null });
  assert.deepEqual(await repo.listTags(), []);
  await repo.transport.close();
  const res = await pushPackage({ package: pkg, reference: ref, chunkSize: 1024 * 1024 });
  assert.ok(res.uploadedBytes <= res.totalBytes - 6 * 1024 * 1024, `resumed: ${JSON.stringify(res)}`);
  assert.ok(res.existing >= 1);
});

test("kill -9 mid-pull: no package appears; the rerun resumes and gives the same bytes", async () => {
  const out = join(dir, "pulled");
  const partial = () => {
    if (!existsSync(out)) return false;
    const work = readdirSync(out).find((f) => f.startsWith(".dockpack-pull-"));
    if (!work) return false;
    return readdirSync(join(out, work)).some((f) => statSync(join(out, work, f)).size >= 2 * 1024 * 1024);
  };
  await killWhen(["packages", "pull", `${proxy.host}/kill/env:v1`, "-o", out], partial);
  assert.equal((await readdir(out)).filter((f) => f.endsWith(".dockpack.tar")).length, 0);
  const res = await pullPackage({ reference: `${proxy.host}/kill/env:v1`, outputDir: out });
  assert.ok(res.downloadedBytes <= res.size - 2 * 1024 * 1024, `resumed: ${JSON.stringify(res)}`);
  assert.ok((await readFile(res.package)).equals(await readFile(pkg)));
  assert.deepEqual(await readdir(out), ["synth-main-k.dockpack.tar"]);
});

test("kill -9 mid 'packages import REF': nothing imported; the next dockpack run sweeps the partial download", async () => {
  // import REF streams the volumes into the restore; what it downloads first (the skeleton of the
  // package: everything but volume data) is made big here, so that the kill lands in it
  const big = join(dir, "synth-main-big.dockpack.tar");
  await writeTwoVolumePackage(
    big,
    { db: randomBytes(1024 * 1024), cache: randomBytes(1024) },
    { env: `BLOB=${randomBytes(6 * 1024 * 1024).toString("base64")}\n` },
  );
  await pushPackage({ package: big, reference: `${proxy.host}/kill/imp:v1`, chunkSize: 1024 * 1024 });
  const tmp = join(dir, "tmp");
  const repo = join(dir, "repo");
  mkdirSync(tmp);
  mkdirSync(repo);
  const git = (...a: string[]) => execFileSync("git", a, { cwd: repo, stdio: "pipe" }).toString();
  git("init", "-q", "-b", "main");
  const pulls = () => readdirSync(tmp).filter((f) => f.startsWith("dockpack-pull-"));
  const partial = () =>
    pulls().some((p) => {
      const work = join(tmp, p);
      return readdirSync(work, { recursive: true }).some((f) => {
        const s = statSync(join(work, String(f)));
        // allocated blocks: the skeleton is a sparse file of the package's size from the start
        return s.isFile() && s.blocks * 512 >= 2 * 1024 * 1024;
      });
    });
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    await killWhen(
      ["-C", repo, "packages", "import", `${proxy.host}/kill/imp:v1`, "--target-branch", "imported"],
      partial,
    );
    assert.equal(pulls().length, 1, "the killed run left its partial download");
    assert.equal(git("branch", "--list", "imported").trim(), "", "no branch created");
    assert.ok(!existsSync(join(repo, "worktrees")), "no worktree created");
    // any later dockpack run removes the dead run's temporary folder
    const next = spawnSync(
      process.execPath,
      ["--import", TSX, MAIN, "--json", "packages", "list", "--package-dir", repo],
      {
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
    assert.equal(next.status, 0, String(next.stderr));
    assert.deepEqual(pulls(), []);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
});
