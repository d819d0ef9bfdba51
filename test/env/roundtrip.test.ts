/**
 * Environments and packages end to end on the real engine (fixture busybox image, no pulls):
 * a 200 MB round trip with owners, modes, symlinks, hardlinks and empty folders; code with
 * uncommitted and untracked files; two environments of one project up at the same time;
 * --no-data; --standalone; conflicts; --force with a failing import; a failure injected at every
 * import step; damaged packages; an interrupted export.
 * Budget: ~90 s (the 200 MB export/import dominate).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, open, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { toDockpackError } from "../../src/core/errors.js";
import {
  createEnvironment,
  environmentDown,
  environmentUp,
  exportEnvironment,
  importPackage,
  listEnvironments,
  removeEnvironment,
} from "../../src/env/index.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import {
  cleanupPrefix,
  initAppRepo,
  inVolume,
  sh,
  volumeListing,
  volumesWithPrefix,
} from "./engine-helpers.js";
import { writeSyntheticPackage } from "./synthetic.js";

const TSX = import.meta.resolve("tsx");
const project = `dpt${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";
let bigPackage = "";
let smallPackage = "";
const big = { a: "" as string, b: "" as string };

const vol = (branch: string, v: string) => `${project}-${branch}_${v}`;

async function expectNothingFor(branch: string): Promise<void> {
  assert.equal(sh("git", ["branch", "--list", branch], app).trim(), "", `branch ${branch} left behind`);
  assert.ok(
    !sh("git", ["worktree", "list"], app).includes(`/worktrees/${branch}`),
    `worktree ${branch} left behind`,
  );
  assert.deepEqual(volumesWithPrefix(`${project}-${branch}_`), [], `volumes of ${branch} left behind`);
  const wt: string[] = await readdir(join(app, "worktrees")).catch(() => []);
  assert.ok(!wt.includes(branch), `folder worktrees/${branch} left behind`);
}

before(async () => {
  if (!engineAnswers()) return;
  ({ work, app } = await initAppRepo("dockpack-rt", project));
});

after(() => {
  if (work) cleanupPrefix(project, work);
});

test("round trip: 200 MB, owners, modes, symlinks, hardlinks, empty dirs, code changes; two environments up at once", async (t) => {
  if (!needsEngine(t)) return;
  const a = await createEnvironment({ cwd: app, branch: "big-a" });
  assert.equal(a.composeProject, `${project}-big-a`);
  await environmentUp({ cwd: app, branch: "big-a" });
  inVolume(
    vol("big-a", "media"),
    "cd /data && mkdir -p a/b/c empty 'sp ace' && dd if=/dev/urandom of=a/big.bin bs=1M count=200 2>/dev/null && " +
      "echo hi > a/b/c/f.txt && chown 1000:1000 a/b/c/f.txt && chmod 640 a/b/c/f.txt && " +
      "echo x > 'sp ace/n' && chown 2000:3000 'sp ace/n' && chmod 600 'sp ace/n' && chmod 2775 a/b && chmod 1777 empty && " +
      "ln -s a/b/c/f.txt sym && ln -s /nonexistent dangling && ln a/b/c/f.txt hard && echo run > run.sh && chmod 4755 run.sh",
  );
  inVolume(
    vol("big-a", "db"),
    "mkdir -p /data/demo && printf '1\\tone\\n2\\ttwo\\n' > /data/demo/records.log && chown -R 999:999 /data/demo",
  );
  // code: an uncommitted change and an untracked file
  const wt = a.path;
  await writeFile(join(wt, "www/index.html"), "<h1>changed, not committed</h1>\n");
  await writeFile(join(wt, "untracked.txt"), "new file\n");
  const before = { media: volumeListing(vol("big-a", "media")), db: volumeListing(vol("big-a", "db")) };
  assert.ok(before.media.some((l) => l.startsWith("./a/big.bin|regular file|0:0|644|209715200|")));

  const exp = await exportEnvironment({ cwd: app, branch: "big-a", outputDir: join(work, "packages") });
  bigPackage = exp.package;
  assert.match(exp.package, new RegExp(`${project}-big-a-\\d{8}T\\d{6}Z\\.dockpack\\.tar$`));
  assert.equal(exp.metadata.dirty, true);
  assert.equal(exp.metadata.volumes.length, 2);
  const running = sh("docker", ["ps", "--filter", `label=com.docker.compose.project=${project}-big-a`, "-q"])
    .trim()
    .split("\n")
    .filter(Boolean);
  assert.equal(running.length, 2, "containers started again after export");

  const imp = await importPackage({ cwd: app, package: bigPackage, targetBranch: "big-b" });
  assert.equal(imp.environment.composeProject, `${project}-big-b`);
  assert.deepEqual(volumeListing(vol("big-b", "media")), before.media);
  assert.deepEqual(volumeListing(vol("big-b", "db")), before.db);
  const wtB = imp.environment.path;
  assert.equal(await readFile(join(wtB, "www/index.html"), "utf8"), "<h1>changed, not committed</h1>\n");
  assert.equal(await readFile(join(wtB, "untracked.txt"), "utf8"), "new file\n");
  assert.equal(await readFile(join(wtB, ".env"), "utf8"), await readFile(join(app, ".env"), "utf8"));
  const envYml = await readFile(join(wtB, ".dockpack/env.yml"), "utf8");
  assert.match(envYml, new RegExp(`compose_project: ${project}-big-b`));
  assert.ok(!envYml.includes(`${project}-big-a`), "settings are the target's, not the source's");

  // two environments of one project up at the same time
  const b = await environmentUp({ cwd: app, branch: "big-b" });
  const list = await listEnvironments({ cwd: app });
  const urls = list.environments.map((e) => e.url);
  assert.equal(new Set(urls).size, 2, "different URLs");
  for (const e of list.environments) {
    assert.equal(e.status, "running", e.branch);
    const res = await fetch(e.url as string);
    assert.equal(res.status, 200);
  }
  assert.notDeepEqual(b.ports, a.ports);
  big.a = a.path;
  big.b = b.path;
  await environmentDown({ cwd: app, branch: "big-b" });
});

test("small environment: export with --no-code over the CLI, list, validate", async (t) => {
  if (!needsEngine(t)) return;
  await createEnvironment({ cwd: app, branch: "small" });
  for (const v of ["db", "media"]) sh("docker", ["volume", "create", vol("small", v)]);
  inVolume(
    vol("small", "db"),
    "echo 'record 1' > /data/records.log && mkdir /data/empty && chown 5:6 /data/records.log",
  );
  inVolume(vol("small", "media"), "echo pic > /data/p.jpg && ln -s p.jpg /data/latest");
  const r = runCli(
    [
      "--json",
      "packages",
      "export",
      "small",
      "--output-dir",
      join(work, "small-packages"),
      "--no-code",
      "--codec",
      "gzip",
    ],
    { cwd: app },
  );
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  smallPackage = doc.package;
  assert.equal(doc.metadata.include_code, false);
  assert.equal(doc.metadata.volumes[0].codec, "gzip");
  const v = runCli(["packages", "validate", smallPackage], { cwd: app });
  assert.equal(v.code, 0, v.stderr);
  const l = runCli(["--json", "packages", "list", "--package-dir", join(work, "small-packages")], {
    cwd: app,
  });
  assert.equal(JSON.parse(l.stdout).packages[0].branch, "small");
});

test("import --no-data creates empty volumes", async (t) => {
  if (!needsEngine(t)) return;
  const r = await importPackage({
    cwd: app,
    package: smallPackage,
    targetBranch: "nodata",
    restoreData: false,
  });
  assert.deepEqual(volumeListing(vol("nodata", "db")), volumeListing(vol("nodata", "media")));
  assert.equal(volumeListing(vol("nodata", "db")).length, 1, "only the root");
  await removeEnvironment({
    cwd: app,
    branch: r.environment.branch,
    volumes: true,
    deleteBranch: true,
    force: true,
  });
  await expectNothingFor("nodata");
});

test("conflict: refused without --force and nothing touched; with --force a failing import puts the replaced data back", async (t) => {
  if (!needsEngine(t)) return;
  const before = volumeListing(vol("small", "db"));
  const head = sh("git", ["rev-parse", "small"], app).trim();
  const r = runCli(["packages", "import", smallPackage], { cwd: app });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /IMPORT_CONFLICT|conflicts with/);
  assert.match(r.stderr, /branch small/);
  assert.match(r.stderr, new RegExp(`volume ${vol("small", "db")}`));
  assert.deepEqual(volumeListing(vol("small", "db")), before);

  // change the data, so the package's data differs from what is replaced
  inVolume(vol("small", "db"), "echo 'record 2 (newer)' >> /data/records.log");
  const changed = volumeListing(vol("small", "db"));
  process.env.DOCKPACK_FAIL_AT = "import:volumes";
  try {
    await assert.rejects(importPackage({ cwd: app, package: smallPackage, force: true }), (e) => {
      const err = toDockpackError(e);
      return err.code === "IMPORT_FAILED" && /step 'volumes'/.test(err.message);
    });
  } finally {
    delete process.env.DOCKPACK_FAIL_AT;
  }
  assert.deepEqual(volumeListing(vol("small", "db")), changed, "replaced data is back");
  assert.equal(sh("git", ["rev-parse", "small"], app).trim(), head, "branch is back");
  assert.ok(sh("git", ["worktree", "list"], app).includes("/worktrees/small "), "worktree is back");
  assert.deepEqual(volumesWithPrefix(`${vol("small", "db")}-aside`), []);

  const ok = await importPackage({ cwd: app, package: smallPackage, force: true });
  assert.deepEqual(
    ok.replaced.sort(),
    [
      `branch small`,
      `volume ${vol("small", "db")}`,
      `volume ${vol("small", "media")}`,
      `worktree ${join(app, "worktrees", "small")}`,
    ].sort(),
  );
  assert.match(inVolume(vol("small", "db"), "cat /data/records.log", true), /^record 1\n$/);
  assert.deepEqual(volumesWithPrefix(`${vol("small", "db")}-aside`), []);
  assert.equal(sh("git", ["branch", "--list", "dockpack-aside/*"], app).trim(), "");
});

test("a failure injected at each import step leaves no worktree, branch, volume or temp folder", async (t) => {
  if (!needsEngine(t)) return;
  const steps = [
    "verify",
    "conflicts",
    "space",
    "aside",
    "worktree",
    "code",
    "environment",
    "settings",
    "volumes",
    "finish",
  ];
  for (const step of steps) {
    const r = runCli(["packages", "import", smallPackage, "--target-branch", "failing"], {
      cwd: app,
      env: { DOCKPACK_FAIL_AT: `import:${step}` },
    });
    assert.equal(r.code, 1, `${step}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`step '${step}'|after step 'import:${step}'`), r.stderr);
    await expectNothingFor("failing");
  }
});

test("damaged packages are rejected with their own error and nothing is created", async (t) => {
  if (!needsEngine(t)) return;
  const flipped = join(work, "flipped.dockpack.tar");
  await copyFile(smallPackage, flipped);
  const buf = await readFile(flipped);
  let at = buf.indexOf("volumes/db.tar.gz");
  while (at % 512 !== 0) at = buf.indexOf("volumes/db.tar.gz", at + 1);
  const fh = await open(flipped, "r+");
  await fh.write(Buffer.from([buf[at + 512 + 30] ^ 0xff]), 0, 1, at + 512 + 30);
  await fh.close();
  const truncated = join(work, "truncated.dockpack.tar");
  await writeFile(truncated, buf.subarray(0, Math.floor(buf.length / 2)));
  const junk = join(work, "junk.dockpack.tar");
  await writeFile(junk, "hello");
  const edited = join(work, "edited.dockpack.tar");
  await copyFile(smallPackage, edited);
  const metaAt = buf.indexOf('"branch": "small"');
  const fh2 = await open(edited, "r+");
  await fh2.write(Buffer.from('"branch": "smalx"'), 0, 17, metaAt);
  await fh2.close();
  const v9 = join(work, "v9.dockpack.tar");
  await writeSyntheticPackage(v9, { formatVersion: "9.0" });
  const escaping = join(work, "escaping.dockpack.tar");
  await writeSyntheticPackage(escaping, {
    extraMember: { name: "code/../../escape.sh", content: "x" },
    project,
  });
  for (const [file, code] of [
    [flipped, "PACKAGE_CHECKSUM_MISMATCH"],
    [truncated, "PACKAGE_TRUNCATED"],
    [junk, "PACKAGE_NOT_A_PACKAGE"],
    [edited, "PACKAGE_CHECKSUM_MISMATCH"],
    [v9, "PACKAGE_VERSION_UNSUPPORTED"],
    [escaping, "PACKAGE_UNSAFE_PATH"],
  ]) {
    const r = runCli(["--json", "packages", "import", file, "--target-branch", "damaged"], { cwd: app });
    assert.equal(r.code, 1, file);
    assert.equal(JSON.parse(r.stdout).error.code, code, r.stdout);
    await expectNothingFor("damaged");
  }
});

test("--standalone builds a fresh repository from the code snapshot and imports there", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(bigPackage, "needs the package made by the round-trip test above");
  // the small package has no code: refused
  const dir = join(work, "alone");
  const r = runCli(["packages", "import", smallPackage, "--standalone", dir], { cwd: work });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no code snapshot/);
  await assert.rejects(stat(dir));
  const res = await importPackage({
    package: bigPackage,
    standalone: dir,
    targetBranch: "alone",
    restoreData: false,
  });
  assert.equal(res.repository, dir);
  assert.equal(await readFile(join(res.environment.path, "untracked.txt"), "utf8"), "new file\n");
  assert.equal(sh("git", ["status", "--porcelain"], res.environment.path).trim(), "");
  await removeEnvironment({ cwd: dir, branch: "alone", volumes: true, deleteBranch: true, force: true });
});

test("an export killed midway leaves no package and starts the containers again", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(big.a, "needs the environment made by the round-trip test above");
  const out = join(work, "killed");
  const r = runCli(["packages", "export", "big-a", "--output-dir", out], {
    cwd: app,
    env: { DOCKPACK_FAIL_AT: "export:volume" },
  });
  assert.equal(r.code, 1);
  assert.deepEqual(await readdir(out), []);
  // a real interruption: run from inside the repo and send SIGINT while volumes stream
  const c2 = spawn(
    process.execPath,
    [
      "--import",
      TSX,
      join(import.meta.dirname, "../../src/cli/main.ts"),
      "packages",
      "export",
      "big-a",
      "--output-dir",
      out,
    ],
    {
      cwd: app,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  let err = "";
  let sent = false;
  c2.stderr.on("data", (d) => {
    err += d;
    if (/exporting volume/.test(err) && !sent) {
      sent = true;
      setTimeout(() => c2.kill("SIGINT"), 300);
    }
  });
  const code = await new Promise<number | null>((res) => c2.on("exit", (c, s) => res(c ?? (s ? 130 : null))));
  assert.notEqual(code, 0, err);
  assert.deepEqual(await readdir(out), [], `no partial package or temp folder; stderr: ${err}`);
  const running = sh("docker", ["ps", "--filter", `label=com.docker.compose.project=${project}-big-a`, "-q"])
    .trim()
    .split("\n")
    .filter(Boolean);
  assert.equal(running.length, 2, `containers running again; stderr: ${err}`);
});

test("export refuses with both numbers when the output folder lacks space, and writes nothing", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(big.a, "needs the environment made by the round-trip test above");
  const small = join(work, "tiny-fs");
  await mkdir(small);
  try {
    sh("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", small]);
  } catch {
    // like needsEngine: CI (DOCKPACK_REQUIRE_DOCKER=1) runs as root and must run this check
    if (process.env.DOCKPACK_REQUIRE_DOCKER === "1")
      throw new Error("cannot mount a small tmpfs (needs root)");
    t.skip("cannot mount a small tmpfs here (needs root)");
    return;
  }
  try {
    const r = runCli(["--json", "packages", "export", "big-a", "--output-dir", small], { cwd: app });
    assert.equal(r.code, 1);
    const err = JSON.parse(r.stdout).error;
    assert.equal(err.code, "NO_SPACE");
    assert.match(err.message, /\d/);
    assert.ok(
      err.details.needed > 200 * 1024 * 1024 && err.details.available < 5 * 1024 * 1024,
      JSON.stringify(err.details),
    );
    assert.deepEqual(await readdir(small), []);
  } finally {
    sh("umount", [small]);
  }
});

test("env create --copy-data-from copies another environment's volumes; env remove refuses a dirty worktree", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(smallPackage, "needs the package made by the small-environment test above");
  const copy = await createEnvironment({ cwd: app, branch: "copy", copyDataFrom: "small" });
  for (const v of ["db", "media"])
    assert.deepEqual(volumeListing(vol("copy", v)), volumeListing(vol("small", v)));
  await writeFile(join(copy.path, "scratch.txt"), "uncommitted\n");
  await assert.rejects(removeEnvironment({ cwd: app, branch: "copy", volumes: true }), (e) => {
    const err = toDockpackError(e);
    return err.code === "ENV_DIRTY" && /scratch\.txt/.test(err.message);
  });
  assert.ok((await stat(copy.path)).isDirectory(), "worktree kept");
  const res = await removeEnvironment({
    cwd: app,
    branch: "copy",
    volumes: true,
    deleteBranch: true,
    force: true,
  });
  assert.deepEqual(res.removedVolumes.sort(), [vol("copy", "db"), vol("copy", "media")]);
  await expectNothingFor("copy");
});

test("an import interrupted while restoring a volume rolls everything back", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(bigPackage, "needs the package made by the round-trip test above");
  const child = spawn(
    process.execPath,
    [
      "--import",
      TSX,
      join(import.meta.dirname, "../../src/cli/main.ts"),
      "packages",
      "import",
      bigPackage,
      "--target-branch",
      "sig",
    ],
    {
      cwd: app,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  let err = "";
  let sent = false;
  child.stderr.on("data", (d) => {
    err += d;
    if (/restoring volume .*_media/.test(err) && !sent) {
      sent = true;
      setTimeout(() => child.kill("SIGINT"), 200);
    }
  });
  const code = await new Promise<number | null>((res) =>
    child.on("exit", (c, s) => res(c ?? (s ? 130 : null))),
  );
  assert.equal(code, 130, err);
  await expectNothingFor("sig").catch((e) => {
    throw new Error(`${(e as Error).message}\nimport stderr:\n${err}`);
  });
});

test("two env create at the same time get different host ports", async (t) => {
  if (!needsEngine(t)) return;
  const run = (branch: string) =>
    new Promise<{ code: number | null; out: string; err: string }>((res) => {
      const c = spawn(
        process.execPath,
        [
          "--import",
          TSX,
          join(import.meta.dirname, "../../src/cli/main.ts"),
          "--json",
          "env",
          "create",
          branch,
        ],
        {
          cwd: app,
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, NO_COLOR: "1" },
        },
      );
      let out = "";
      let err = "";
      c.stdout.on("data", (d) => {
        out += d;
      });
      c.stderr.on("data", (d) => {
        err += d;
      });
      c.on("exit", (code) => res({ code, out, err }));
    });
  const [x, y] = await Promise.all([run("par-x"), run("par-y")]);
  assert.equal(x.code, 0, x.err);
  assert.equal(y.code, 0, y.err);
  const px = Object.values(JSON.parse(x.out).ports);
  const py = Object.values(JSON.parse(y.out).ports);
  assert.equal(px.length, 1);
  assert.notDeepEqual(px, py);
  for (const b of ["par-x", "par-y"])
    await removeEnvironment({ cwd: app, branch: b, deleteBranch: true, force: true });
});
