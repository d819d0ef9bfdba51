/**
 * Hostile packages against `packages import` on the real engine (issue 10 A1, A2, A4):
 * no git hook runs during an import (planted in the repository, in git's template folder, or
 * shipped in the package's code/.git), a link chain cannot plant a hook or write outside, and
 * device nodes / fifos in a volume tar are refused unless --allow-special-files.
 */
import assert from "node:assert/strict";
import { chmod, lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import { writeVolumeTar } from "../../src/core/docker/volumes.js";
import { toDockpackError } from "../../src/core/errors.js";
import { importPackage, removeEnvironment } from "../../src/env/index.js";
import { runCli } from "../helpers/cli.js";
import { needsEngine } from "../helpers/engine.js";
import { craftPackage, tarBytes } from "./craft.js";
import { cleanupPrefix, inVolume, sh, volumesWithPrefix } from "./engine-helpers.js";
import { makeRealPackage, type RealPackage } from "./real-package.js";

let real: RealPackage | undefined;
let marker = "";
const HOOKS = [
  "post-checkout",
  "reference-transaction",
  "pre-commit",
  "post-commit",
  "post-index-change",
  "pre-auto-gc",
];

async function plantHooks(hooksDir: string): Promise<void> {
  await mkdir(hooksDir, { recursive: true });
  for (const h of HOOKS) {
    await writeFile(join(hooksDir, h), `#!/bin/sh\necho ${h} >> '${marker}'\n`);
    await chmod(join(hooksDir, h), 0o755);
  }
}

async function markerAbsent(): Promise<void> {
  await assert.rejects(lstat(marker), `a hook ran: ${marker} exists`);
}

before(async () => {
  real = await makeRealPackage("dph");
  marker = join(real.work, "HOOK-RAN");
  await plantHooks(join(real.app, ".git/hooks"));
});
after(() => {
  if (real) cleanupPrefix(real.project, real.work);
});

test("import runs no hook of the repository (post-checkout, reference-transaction …)", async (t) => {
  if (!needsEngine(t) || !real) return;
  const r = await importPackage({ cwd: real.app, package: real.pkg, targetBranch: "hooked" });
  assert.equal(r.environment.branch, "hooked");
  await markerAbsent();
  // env remove is no import: the repository's own hooks may run there
  await removeEnvironment({
    cwd: real.app,
    branch: "hooked",
    volumes: true,
    deleteBranch: true,
    force: true,
  });
  await rm(marker, { force: true });
});

test("a link chain that would plant .git/hooks in the main repository is refused, nothing changes", async (t) => {
  if (!needsEngine(t) || !real) return;
  const pkg = join(real.work, "chain.dockpack.tar");
  await craftPackage(pkg, {
    members: [
      { name: "code/l1", type: "2", linkname: ".." },
      { name: "code/l2", type: "2", linkname: "l1/.." },
      { name: "code/l2/.git/hooks/post-checkout", body: `#!/bin/sh\ntouch '${marker}'\n`, mode: 0o755 },
    ],
    meta: { project: real.project },
  });
  const hooksBefore = (await readdir(join(real.app, ".git/hooks"))).sort();
  const branchesBefore = sh("git", ["branch", "--list"], real.app);
  const r = runCli(["--json", "packages", "import", pkg, "--target-branch", "chain"], { cwd: real.app });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(JSON.parse(r.stdout).error.code, "PACKAGE_UNSAFE_PATH");
  assert.deepEqual((await readdir(join(real.app, ".git/hooks"))).sort(), hooksBefore);
  assert.equal(sh("git", ["branch", "--list"], real.app), branchesBefore);
  assert.deepEqual(volumesWithPrefix(`${real.project}-chain_`), []);
  await markerAbsent();
});

test("A1 as reported: code/up -> .. then code/up/<other-branch>/.env cannot overwrite another environment's .env", async (t) => {
  if (!needsEngine(t) || !real) return;
  const victim = join(real.app, "worktrees", "src", ".env");
  const before = await readFile(victim, "utf8");
  const pkg = join(real.work, "up.dockpack.tar");
  await craftPackage(pkg, {
    members: [
      { name: "code/up", type: "2", linkname: ".." },
      { name: "code/up/src/.env", body: "OVERWRITTEN=1\n" },
    ],
    meta: { project: real.project },
  });
  const r = runCli(["--json", "packages", "import", pkg, "--target-branch", "up"], { cwd: real.app });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(JSON.parse(r.stdout).error.code, "PACKAGE_UNSAFE_PATH");
  assert.equal(await readFile(victim, "utf8"), before);
  assert.deepEqual(volumesWithPrefix(`${real.project}-up_`), []);
});

test("--standalone: a package with code/.git/hooks is refused; hooks from git's templates never run", async (t) => {
  if (!needsEngine(t) || !real) return;
  const evil = join(real.work, "githooks.dockpack.tar");
  await craftPackage(evil, {
    members: [
      { name: "code/README.md", body: "hi\n" },
      { name: "code/.git/hooks/pre-commit", body: `#!/bin/sh\ntouch '${marker}'\n`, mode: 0o755 },
      { name: "code/.git/hooks/post-commit", body: `#!/bin/sh\ntouch '${marker}'\n`, mode: 0o755 },
    ],
  });
  const dir = join(real.work, "standalone-evil");
  const r = runCli(["--json", "packages", "import", evil, "--standalone", dir], { cwd: real.work });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(JSON.parse(r.stdout).error.code, "PACKAGE_UNSAFE_PATH");
  await assert.rejects(lstat(dir), "standalone folder not created");
  await markerAbsent();

  // a real package, with hooks installed through git's template folder: none runs
  const templates = join(real.work, "templates");
  await plantHooks(join(templates, "hooks"));
  const ok = join(real.work, "standalone-ok");
  const prev = process.env.GIT_TEMPLATE_DIR;
  process.env.GIT_TEMPLATE_DIR = templates;
  try {
    // its own compose project (a --standalone import never shares the source's), named for cleanup
    const res = await importPackage({
      package: real.pkg,
      standalone: ok,
      targetBranch: "alone",
      project: `${real.project}-sa`,
    });
    assert.equal(res.environment.branch, "alone");
  } finally {
    if (prev === undefined) delete process.env.GIT_TEMPLATE_DIR;
    else process.env.GIT_TEMPLATE_DIR = prev;
  }
  await markerAbsent();
  assert.throws(
    () => sh("git", ["config", "--get", "core.hooksPath"], ok),
    "no core.hooksPath left in the new repository's config",
  );
});

test("volume tars: device nodes and fifos refused by default, restored with --allow-special-files", async (t) => {
  if (!needsEngine(t) || !real) return;
  const specials = tarBytes([
    { name: "./", type: "5", mode: 0o755 },
    { name: "null", type: "3", devmajor: 1, devminor: 3 },
    { name: "loop0", type: "4", devmajor: 7, devminor: 0 },
    { name: "fifo", type: "6" },
    { name: "plain", body: "x\n" },
  ]);
  const pkg = join(real.work, "specials.dockpack.tar");
  await craftPackage(pkg, {
    members: [],
    volumes: [{ name: "db", tar: specials }],
    meta: { include_code: false, project: real.project },
  });
  const v = runCli(["--json", "packages", "validate", pkg]);
  assert.equal(v.code, 1);
  assert.ok(JSON.parse(v.stdout).problems.some((p: { code: string }) => p.code === "PACKAGE_SPECIAL_FILE"));
  const r = runCli(["--json", "packages", "import", pkg, "--target-branch", "dev"], { cwd: real.app });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(JSON.parse(r.stdout).error.code, "PACKAGE_SPECIAL_FILE");
  assert.deepEqual(volumesWithPrefix(`${real.project}-dev_`), []);

  // the restore itself refuses them too (validation bypassed)
  const volume = `${real.project}-rawdev_db`;
  sh("docker", ["volume", "create", volume]);
  const err = await writeVolumeTar(volume, Readable.from([specials]), { untrusted: true }).catch(
    toDockpackError,
  );
  assert.equal((err as { code?: string })?.code, "VOLUME_SPECIAL_FILE");
  assert.equal(inVolume(volume, "ls -A /data", true).trim(), "", "nothing of it reached the volume");

  const allowed = runCli(
    ["--json", "packages", "import", pkg, "--target-branch", "dev", "--allow-special-files"],
    {
      cwd: real.app,
    },
  );
  assert.equal(allowed.code, 0, allowed.stderr);
  const listing = inVolume(`${real.project}-dev_db`, "ls -l /data", true);
  assert.match(listing, /^p.* fifo$/m);
  assert.match(listing, /^c.* 1,\s+3 .*null$/m);
  await removeEnvironment({ cwd: real.app, branch: "dev", volumes: true, deleteBranch: true, force: true });
  await rm(marker, { force: true });
});
