/**
 * The image section of environment packages (issue 16), on the real engine: an environment with
 * two images — one built from a Dockerfile, one a re-tagged fixture — is exported with
 * `--images`; its test tags are removed from the engine (only those); `packages import` and
 * `env up --offline` start it with identical image IDs and no pull. A damaged image section
 * (a flipped byte in a layer, a layer forged consistently, a wrong config) is refused before
 * anything is created, with `delta apply`'s codes.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { toDockpackError } from "../../src/core/errors.js";
import { silentReporter } from "../../src/core/output.js";
import { createInventory } from "../../src/delta/inventory.js";
import {
  createEnvironment,
  environmentBuild,
  environmentUp,
  exportEnvironment,
  importPackage,
  validatePackage,
} from "../../src/env/index.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { cleanupPrefix, sh } from "./engine-helpers.js";
import { assertStartedWithoutPull, imageId, rmTag, writeImagesApp } from "./images-app.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const project = `dpimg${Math.random().toString(36).slice(2, 7)}`;
const SIDE = `${project}/side:1`;
let work = "";
let app = "";
let pkg = "";
const ids: Record<string, string> = {};
let allSection = 0;
/** Bytes of the built image's member in the `--images all` package of the first test. */
const images0Size = () => allSection;

before(async () => {
  if (!engineAnswers()) return;
  const busybox = await ensureFixture("busybox");
  sh("docker", ["tag", busybox, SIDE]);
  work = sh("mktemp", ["-d", "/tmp/dockpack-images-XXXXXX"]).trim();
  app = join(work, "app");
  await writeImagesApp(app, project, SIDE, {
    Dockerfile: `FROM ${busybox}\nCOPY hello.txt /hello.txt\nLABEL io.dockpack.test=${project}\n`,
    "hello.txt": `hello from ${project}\n`,
  });
});

after(() => {
  if (!engineAnswers() || !work) return;
  cleanupPrefix(project, work);
  for (const b of ["src", "dst", "bad", "rb", "kill"]) rmTag(`${project}-${b}_app:latest`);
  rmTag(SIDE);
});

test("export --images, tags removed, import + env up --offline: same image IDs, no pull", async (t) => {
  if (!needsEngine(t)) return;
  await createEnvironment({ cwd: app, branch: "src" });
  await environmentBuild({ cwd: app, branch: "src" });
  ids.app = imageId(`${project}-src_app:latest`) as string;
  ids.side = imageId(SIDE) as string;
  assert.ok(ids.app && ids.side);

  const exp = await exportEnvironment({
    cwd: app,
    branch: "src",
    outputDir: join(work, "packages"),
    images: { mode: "all" },
  });
  pkg = exp.package;
  allSection = exp.metadata.images?.[0]?.size ?? 0;
  const images = exp.metadata.images ?? [];
  assert.deepEqual(images.map((i) => i.id).sort(), [ids.app, ids.side].sort());
  // the fixture layer both images share is stored once: the second image ships no layer
  assert.equal(images[1].layers.full + images[1].layers.delta, 0);
  const v = await validatePackage({ package: pkg });
  assert.equal(v.valid, true, JSON.stringify(v.problems));
  const cli = runCli(["packages", "inspect", pkg]);
  assert.match(cli.stdout, /image .*\(built: app\).* shipped of /);

  // only this test's tags leave the engine
  rmTag(`${project}-src_app:latest`);
  rmTag(SIDE);
  assert.equal(imageId(ids.app), null, "the built image is gone from the engine");

  const since = Math.floor(Date.now() / 1000) - 1;
  const res = await importPackage({ cwd: app, package: pkg, targetBranch: "dst" });
  assert.deepEqual(
    (res.images ?? []).map((i) => [i.id, i.loaded]),
    images.map((i) => [i.id, i.id === ids.app]),
  );
  assert.equal(imageId(`${project}-dst_app:latest`), ids.app);
  assert.equal(imageId(SIDE), ids.side);
  await environmentUp({ cwd: app, branch: "dst", offline: true });
  assertStartedWithoutPull(`${project}-dst`, ids, project, since);
  // its containers go (faster than compose down): later tests need the image unused
  cleanupPrefix(`${project}-dst`);
});

test("env up --offline names a missing image instead of pulling", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg, "needs the first test's package");
  const saved = imageId(SIDE) as string;
  rmTag(SIDE);
  try {
    await assert.rejects(environmentUp({ cwd: app, branch: "dst", offline: true }), (e) => {
      const err = toDockpackError(e);
      assert.equal(err.code, "ENV_IMAGE_MISSING");
      assert.match(err.message, new RegExp(SIDE.replace("/", "\\/")));
      return true;
    });
  } finally {
    sh("docker", ["tag", saved, SIDE]);
  }
});

/** Offsets of the members of a tar written by dockpack (ustar, pax `x` names). */
function members(buf: Buffer): { name: string; data: number; size: number }[] {
  const out: { name: string; data: number; size: number }[] = [];
  let at = 0;
  let pax: string | null = null;
  while (at + 512 <= buf.length && !buf.subarray(at, at + 512).every((x) => x === 0)) {
    const type = String.fromCharCode(buf[at + 156]);
    const size = Number.parseInt(buf.toString("latin1", at + 124, at + 136).replace(/\0.*$/s, ""), 8);
    if (type === "x") {
      pax = /\d+ path=([^\n]*)\n/.exec(buf.toString("utf8", at + 512, at + 512 + size))?.[1] ?? null;
    } else {
      out.push({
        name: pax ?? buf.toString("utf8", at, at + 100).replace(/\0.*$/s, ""),
        data: at + 512,
        size,
      });
      pax = null;
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Replaces every occurrence of `from` by `to` (same length) in `buf`'s byte range. */
function replaceIn(buf: Buffer, start: number, end: number, from: string, to: string): void {
  assert.equal(from.length, to.length);
  let at = buf.indexOf(from, start, "latin1");
  while (at >= 0 && at < end) {
    buf.write(to, at, "latin1");
    at = buf.indexOf(from, at + to.length, "latin1");
  }
}

/**
 * A copy of the package whose first image member (the built image's) was changed by `mutate`,
 * with metadata.json and checksums.sha256 made to match (`forge`), so only the image section's
 * own checks can catch it.
 */
function mutateImage(original: Buffer, mutate: (delta: Buffer) => void, forge = true): Buffer {
  const buf = Buffer.from(original);
  const outer = members(buf);
  const img = outer.find((m) => m.name.startsWith("images/")) as { data: number; size: number };
  const delta = buf.subarray(img.data, img.data + img.size);
  const before = hex(delta);
  mutate(delta);
  if (!forge) return buf;
  const meta = outer.find((m) => m.name === "metadata.json") as { data: number; size: number };
  const sums = outer.find((m) => m.name === "checksums.sha256") as { data: number; size: number };
  const metaBefore = hex(buf.subarray(meta.data, meta.data + meta.size));
  replaceIn(buf, meta.data, meta.data + meta.size, before, hex(delta));
  replaceIn(buf, sums.data, sums.data + sums.size, before, hex(delta));
  replaceIn(
    buf,
    sums.data,
    sums.data + sums.size,
    metaBefore,
    hex(buf.subarray(meta.data, meta.data + meta.size)),
  );
  return buf;
}

/** Flips a byte in the middle of the delta's first layer member; with `fixDigest`, its digest in dockpack-delta.json too. */
function flipLayer(fixDigest: boolean): (delta: Buffer) => void {
  return (delta) => {
    const inner = members(delta);
    const layer = inner.find((m) => m.name.startsWith("layers/")) as { data: number; size: number };
    const body = delta.subarray(layer.data, layer.data + layer.size);
    const old = hex(body);
    body[Math.floor(body.length / 2)] ^= 0x10;
    const md = inner[0];
    if (fixDigest) replaceIn(delta, md.data, md.data + md.size, old, hex(body));
  };
}

/** Changes one character of the image config (its digest no longer matches). */
function wrongConfig(delta: Buffer): void {
  const config = members(delta).find((m) => m.name === "config.json") as { data: number; size: number };
  const at = delta.indexOf('"architecture"', config.data, "latin1");
  delta.write('"Architecture"', at, "latin1");
}

test("a damaged image section is refused before anything is created, with delta apply's codes", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg, "needs the first test's package");
  rmTag(`${project}-dst_app:latest`); // the engine lacks the built image again: import must rebuild it
  const original = readFileSync(pkg);
  const cases: { id: string; bytes: Buffer; validate: string | null; code: string }[] = [
    {
      id: "flipped layer byte",
      bytes: mutateImage(original, flipLayer(false)),
      validate: "DIGEST_MISMATCH",
      code: "DIGEST_MISMATCH",
    },
    {
      id: "flipped layer byte, outer checksums not forged",
      bytes: mutateImage(original, flipLayer(false), false),
      validate: "DIGEST_MISMATCH",
      code: "DIGEST_MISMATCH",
    },
    {
      id: "wrong config",
      bytes: mutateImage(original, wrongConfig),
      validate: "DELTA_CONFIG_MISMATCH",
      code: "DELTA_CONFIG_MISMATCH",
    },
    // consistent everywhere but the rebuilt layer: only the rebuild (at import) can tell
    { id: "forged layer", bytes: mutateImage(original, flipLayer(true)), validate: null, code: "" },
  ];
  for (const c of cases) {
    const file = join(work, `mutant-${c.id.replace(/\W+/g, "-")}.dockpack.tar`);
    writeFileSync(file, c.bytes);
    const v = await validatePackage({ package: file });
    if (c.validate) {
      assert.equal(v.valid, false, c.id);
      assert.equal(v.problems[0]?.code, c.validate, `${c.id}: ${JSON.stringify(v.problems)}`);
    } else assert.equal(v.valid, true, `${c.id}: ${JSON.stringify(v.problems)}`);
    const err = await importPackage({ cwd: app, package: file, targetBranch: "bad" }).then(
      () => assert.fail(`${c.id}: the import succeeded`),
      (e) => toDockpackError(e),
    );
    if (c.code) assert.equal(err.code, c.code, `${c.id}: ${err.message}`);
    else
      assert.match(err.code, /^(DIGEST_MISMATCH|CODEC_.*|DELTA_.*)$/, `${c.id}: ${err.code} ${err.message}`);
    // nothing created: no branch, no worktree, no image tag, no volume
    assert.equal(sh("git", ["branch", "--list", "bad"], app).trim(), "", c.id);
    assert.equal(existsSync(join(work, "app-worktrees", "bad")), false, c.id);
    assert.equal(imageId(`${project}-bad_app:latest`), null, c.id);
    assert.equal(imageId(ids.app), null, `${c.id}: the image was not loaded`);
  }
});

test("a failure after the images step rolls back: only the image the import loaded goes, a moved tag comes back", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg, "needs the first test's package");
  rmTag(`${project}-dst_app:latest`);
  assert.equal(imageId(ids.app), null);
  // the target's app tag names another image before the import: it must name it again afterwards
  sh("docker", ["tag", ids.side, `${project}-rb_app:latest`]);
  process.env.DOCKPACK_FAIL_AT = "import:images";
  try {
    const err = await importPackage({ cwd: app, package: pkg, targetBranch: "rb" }).then(
      () => assert.fail("the import succeeded"),
      (e) => toDockpackError(e),
    );
    assert.equal(err.code, "IMPORT_FAILED");
    assert.match(err.message, /everything it changed was rolled back/);
  } finally {
    delete process.env.DOCKPACK_FAIL_AT;
  }
  assert.equal(imageId(ids.app), null, "the loaded image is removed");
  assert.equal(imageId(`${project}-rb_app:latest`), ids.side, "the moved tag names its old image again");
  assert.equal(imageId(SIDE), ids.side, "the image the engine had is untouched");
  rmTag(`${project}-rb_app:latest`);
});

test("import killed with SIGKILL once it journaled an image: the next command finishes or undoes it", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg, "needs the first test's package");
  const state = join(work, "state-kill");
  const runs = join(state, "runs");
  const env = { DOCKPACK_STATE_DIR: state };
  const lastOp = (): string => {
    if (!existsSync(runs)) return "";
    const [name] = readdirSync(runs).filter((n) => n.endsWith(".jsonl"));
    if (!name) return "";
    const lines = readFileSync(join(runs, name), "utf8").trim().split("\n");
    try {
      return (JSON.parse(lines[lines.length - 1] ?? "{}") as { op?: string }).op ?? "";
    } catch {
      return "";
    }
  };
  const child = spawn(
    process.execPath,
    ["--import", TSX, MAIN, "packages", "import", pkg, "--target-branch", "kill"],
    {
      cwd: app,
      stdio: "ignore",
      env: { ...process.env, NO_COLOR: "1", ...env },
    },
  );
  const done = new Promise<void>((r) => child.on("exit", () => r()));
  let exited = false;
  void done.then(() => {
    exited = true;
  });
  while (!exited && lastOp() !== "image") await new Promise((r) => setTimeout(r, 2));
  child.kill("SIGKILL");
  await done;
  // any dockpack command recovers dead runs first
  const list = runCli(["env", "list", "--json"], { cwd: app, env });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    readdirSync(runs).filter((n) => n.endsWith(".jsonl")),
    [],
    "no journal left",
  );
  const imported = sh("git", ["branch", "--list", "kill"], app).trim() !== "";
  if (imported)
    assert.equal(imageId(`${project}-kill_app:latest`), ids.app, "a committed import has its image");
  else {
    assert.equal(imageId(`${project}-kill_app:latest`), null, "no tag of the killed import");
    assert.equal(imageId(ids.app), null, "the image the killed import loaded is removed");
  }
  t.diagnostic(imported ? "the kill landed after the commit" : "the kill landed before the commit");
  assert.equal(imageId(SIDE), ids.side, "the image the engine had is untouched");
});

/** A copy of the package with metadata.json rewritten by `edit` (same reserved size) and checksums.sha256 made to match. */
function editMetadata(original: Buffer, edit: (m: Record<string, unknown>) => void): Buffer {
  const buf = Buffer.from(original);
  const outer = members(buf);
  const meta = outer.find((m) => m.name === "metadata.json") as { data: number; size: number };
  const sums = outer.find((m) => m.name === "checksums.sha256") as { data: number; size: number };
  const region = buf.subarray(meta.data, meta.data + meta.size);
  const before = hex(region);
  const json = JSON.parse(region.toString("utf8")) as Record<string, unknown>;
  edit(json);
  const text = Buffer.from(`${JSON.stringify(json, null, 2)}\n`);
  region.fill(0x20);
  text.copy(region);
  replaceIn(buf, sums.data, sums.data + sums.size, before, hex(region));
  return buf;
}

test("image-section mutants of metadata.json and of the delta's own metadata are refused by validate", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg, "needs the first test's package");
  const original = readFileSync(pkg);
  type Img = { id: string; member: string };
  const cases: { id: string; bytes: Buffer; code: string }[] = [
    {
      id: "another image ID in metadata.json",
      bytes: editMetadata(original, (m) => {
        (m.images as Img[])[0].id = `sha256:${"ab".repeat(32)}`;
      }),
      code: "DELTA_CONFIG_MISMATCH",
    },
    {
      id: "image member not listed",
      bytes: editMetadata(original, (m) => {
        m.images = (m.images as Img[]).slice(1);
      }),
      code: "PACKAGE_MEMBER_UNLISTED",
    },
    {
      id: "listed image member missing",
      bytes: editMetadata(original, (m) => {
        (m.images as Img[])[0].member = "images/9-missing.delta";
      }),
      code: "PACKAGE_MEMBER_MISSING",
    },
    {
      id: "delta format version 2",
      bytes: mutateImage(original, (delta) => {
        const md = members(delta)[0];
        replaceIn(delta, md.data, md.data + md.size, '"formatVersion": 1', '"formatVersion": 2');
      }),
      code: "DELTA_FORMAT_UNSUPPORTED",
    },
  ];
  for (const c of cases) {
    const file = join(work, `meta-mutant-${c.id.replace(/\W+/g, "-")}.dockpack.tar`);
    writeFileSync(file, c.bytes);
    const v = await validatePackage({ package: file });
    assert.equal(v.valid, false, c.id);
    assert.ok(
      v.problems.some((p) => p.code === c.code),
      `${c.id}: ${JSON.stringify(v.problems.map((p) => p.code))}`,
    );
  }
});

test("export --images missing-from INVENTORY ships only the layers the receiver lacks", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(pkg, "needs the first test's package");
  // the receiver has the side image (the fixture layer the built image starts from) only
  const inventory = join(work, "inventory.json");
  await createInventory({ images: [SIDE], output: inventory }, silentReporter());
  // earlier tests removed the built image: build it again (the same layers on the same base)
  if (imageId(`${project}-src_app:latest`) === null) await environmentBuild({ cwd: app, branch: "src" });
  const exp = await exportEnvironment({
    cwd: app,
    branch: "src",
    outputDir: join(work, "packages-inv"),
    images: { mode: "missing-from", inventory },
  });
  const [appImage, sideImage] = exp.metadata.images ?? [];
  assert.equal(exp.metadata.images_mode, "missing-from");
  assert.deepEqual(appImage.layers, { total: 2, full: 1, delta: 0, reused: 1 }, "only the COPY layer ships");
  assert.deepEqual(sideImage.layers, { total: 1, full: 0, delta: 0, reused: 1 });
  assert.equal((await validatePackage({ package: exp.package })).valid, true);
  assert.ok(appImage.size < images0Size(), "smaller than the section of --images all");
});
