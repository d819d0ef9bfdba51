import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, chown, cp, mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { isDockpackError } from "../../src/core/errors.js";
import { silentReporter } from "../../src/core/output.js";
import {
  DEFAULT_SOURCE_DATE_EPOCH,
  type PackageFeaturesOptions,
  packageFeatures,
  resolveSourceDateEpoch,
} from "../../src/features/index.js";
import { metaFor, readMembers, sha256File, tempDir, writeFeature } from "./helpers.js";

const pkg = (options: PackageFeaturesOptions) => packageFeatures(options, silentReporter());

async function failure(options: PackageFeaturesOptions): Promise<{ code: string; message: string }> {
  try {
    await pkg(options);
  } catch (e) {
    assert.ok(isDockpackError(e), String(e));
    return { code: e.code, message: e.message };
  }
  throw new Error("expected packageFeatures to fail");
}

test("single feature: tarball layout, fixed mtime, owners, modes, result and collection file", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const folder = await writeFeature(dir, "hello", {
      files: { "lib/util.sh": "echo util\n", "README.md": "# hello\n" },
    });
    const out = join(dir, "out");
    const result = await pkg({ target: folder, outputFolder: out });
    assert.equal(result.count, 1);
    assert.equal(result.outputDir, out);
    const [f] = result.features;
    assert.equal(f.id, "hello");
    assert.equal(f.version, "1.0.0");
    assert.equal(f.file, join(out, "devcontainer-feature-hello.tgz"));
    assert.equal(f.digest, `sha256:${await sha256File(f.file)}`);
    assert.equal(f.size, (await readFile(f.file)).length);
    assert.deepEqual((await readdir(out)).sort(), [
      "devcontainer-collection.json",
      "devcontainer-feature-hello.tgz",
    ]);
    const members = await readMembers(f.file);
    assert.deepEqual(
      members.map((m) => [m.name, m.type, m.mode.toString(8)]),
      [
        ["./", "directory", "755"],
        ["./devcontainer-feature.json", "file", "644"],
        ["./README.md", "file", "644"],
        ["./install.sh", "file", "755"],
        ["./lib/", "directory", "755"],
        ["./lib/util.sh", "file", "755"],
      ],
    );
    for (const m of members) {
      assert.equal(m.mtime, DEFAULT_SOURCE_DATE_EPOCH);
      assert.deepEqual([m.uid, m.gid, m.uname, m.gname], [0, 0, "", ""]);
    }
    // a plain tar despite the .tgz name, as the devcontainer CLI writes it
    assert.equal((await readFile(f.file)).subarray(257, 262).toString(), "ustar");
    const collection = JSON.parse(await readFile(join(out, "devcontainer-collection.json"), "utf8"));
    assert.deepEqual(collection, { sourceInformation: { source: "dockpack" }, features: [metaFor("hello")] });
  } finally {
    await cleanup();
  }
});

test("collection and repository root: features sorted by id; artifacts overwritten; -f empties first", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    for (const id of ["zeta", "alpha", "mid_1"]) await writeFeature(src, id);
    const out = join(dir, "out");
    await mkdir(out);
    await writeFile(join(out, "stale.txt"), "from before");
    await writeFile(join(out, "devcontainer-feature-alpha.tgz"), "old bytes");
    const r1 = await pkg({ target: src, outputFolder: out, concurrency: 2 });
    assert.deepEqual(
      r1.features.map((f) => f.id),
      ["alpha", "mid_1", "zeta"],
    );
    const nested = await pkg({ target: src, outputFolder: join(dir, "a", "b", "out") });
    assert.deepEqual(
      nested.features.map((f) => f.digest),
      r1.features.map((f) => f.digest),
    );
    await rm(join(dir, "a"), { recursive: true });
    assert.notEqual(await readFile(join(out, "devcontainer-feature-alpha.tgz"), "utf8"), "old bytes");
    assert.ok((await readdir(out)).includes("stale.txt"), "without -f other files stay");
    const collection = JSON.parse(await readFile(join(out, "devcontainer-collection.json"), "utf8"));
    assert.deepEqual(
      collection.features.map((f: { id: string }) => f.id),
      ["alpha", "mid_1", "zeta"],
    );
    const r2 = await pkg({ target: dir, outputFolder: out, forceCleanOutputFolder: true });
    assert.deepEqual(r2.features, r1.features, "the repository root packages src/ identically");
    assert.deepEqual((await readdir(out)).sort(), [
      "devcontainer-collection.json",
      "devcontainer-feature-alpha.tgz",
      "devcontainer-feature-mid_1.tgz",
      "devcontainer-feature-zeta.tgz",
    ]);
    assert.deepEqual((await readdir(dir)).sort(), ["out", "src"], "no staging folder left behind");
  } finally {
    await cleanup();
  }
});

test("-f refuses /, home, the current folder, the target and folders containing the target", async () => {
  const { dir, cleanup } = await tempDir();
  const home = process.env.HOME;
  const cwd = process.cwd();
  try {
    // The target is broken on purpose: should the guard ever fail, validation still stops the run
    // long before anything could be deleted.
    const target = await writeFeature(join(dir, "repo", "src"), "broken", { meta: "{ not json" });
    const fakeHome = join(dir, "home");
    const work = join(dir, "work");
    await mkdir(fakeHome);
    await mkdir(work);
    process.env.HOME = fakeHome;
    process.chdir(work);
    const cases: [string, RegExp][] = [
      ["/", /Refusing to empty \/: it is the root folder/],
      [fakeHome, /it is the home folder/],
      [work, /it is the current folder/],
      [".", /it is the current folder/],
      [dir, /it contains the home folder/],
      [target, /it is the target/],
      [join(dir, "repo", "src"), /it contains the target/],
      [join(dir, "repo"), /it contains the target/],
    ];
    for (const [outputFolder, re] of cases) {
      const err = await failure({ target, outputFolder, forceCleanOutputFolder: true });
      assert.equal(err.code, "FEATURES_CLEAN_REFUSED", outputFolder);
      assert.match(err.message, re);
    }
    // through a symlink too
    await symlink(join(dir, "repo"), join(dir, "repo-link"));
    assert.equal(
      (await failure({ target, outputFolder: join(dir, "repo-link"), forceCleanOutputFolder: true })).code,
      "FEATURES_CLEAN_REFUSED",
    );
    assert.deepEqual((await readdir(join(dir, "repo", "src", "broken"))).sort(), [
      "devcontainer-feature.json",
      "install.sh",
    ]);
  } finally {
    process.chdir(cwd);
    if (home === undefined) delete process.env.HOME;
    else process.env.HOME = home;
    await cleanup();
  }
});

test("reproducible: same sha256 across runs, mtimes, owners, modes and creation order", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const files = { "lib/a.txt": "a\n", "lib/b/c.sh": "echo c\n", "z.txt": "z\n" };
    const a = await writeFeature(join(dir, "a"), "repro", { files });
    const b = join(dir, "b", "repro");
    await cp(a, b, { recursive: true });
    await utimes(join(b, "lib", "a.txt"), 1_000_000, 2_000_000);
    await utimes(join(b, "install.sh"), 5, 5);
    await chown(join(b, "z.txt"), 1234, 5678);
    await chown(join(b, "lib"), 4321, 4321);
    await chmod(join(b, "z.txt"), 0o600);
    await chmod(join(b, "install.sh"), 0o700);
    await chmod(join(b, "lib"), 0o700);
    const outs = [join(dir, "o1"), join(dir, "o2"), join(dir, "o3")];
    await pkg({ target: a, outputFolder: outs[0] });
    await new Promise((r) => setTimeout(r, 1100)); // a later second must not matter
    await pkg({ target: a, outputFolder: outs[1] });
    await pkg({ target: b, outputFolder: outs[2] });
    for (const name of ["devcontainer-feature-repro.tgz", "devcontainer-collection.json"]) {
      const sums = await Promise.all(outs.map((o) => sha256File(join(o, name))));
      assert.equal(new Set(sums).size, 1, `${name}: ${sums.join(" ")}`);
    }
    const epoch = join(dir, "o4");
    await pkg({ target: a, outputFolder: epoch, sourceDateEpoch: 1_700_000_000 });
    const members = await readMembers(join(epoch, "devcontainer-feature-repro.tgz"));
    assert.ok(members.every((m) => m.mtime === 1_700_000_000));
  } finally {
    await cleanup();
  }
});

test("SOURCE_DATE_EPOCH: explicit option, environment, default, invalid value", () => {
  assert.equal(resolveSourceDateEpoch(42, "7"), 42);
  assert.equal(resolveSourceDateEpoch(undefined, "7"), 7);
  assert.equal(resolveSourceDateEpoch(undefined, undefined), DEFAULT_SOURCE_DATE_EPOCH);
  assert.equal(resolveSourceDateEpoch(undefined, ""), DEFAULT_SOURCE_DATE_EPOCH);
  assert.throws(
    () => resolveSourceDateEpoch(undefined, "yesterday"),
    /SOURCE_DATE_EPOCH='yesterday' is not a whole number/,
  );
});

test("non-ASCII names, deep nesting and symlinks survive a round trip through tar", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const deep = `${Array.from({ length: 12 }, (_, i) => `level-${i}-${"x".repeat(10)}`).join("/")}/deep.txt`;
    const folder = await writeFeature(dir, "intl", {
      files: { "dörfer/日本語/ñandú.txt": "¡hola!\n", [deep]: "bottom\n", "conf/base.env": "A=1\n" },
    });
    await symlink("../install.sh", join(folder, "conf", "run.sh"));
    await symlink("conf", join(folder, "conf-link"));
    const out = join(dir, "out");
    const [f] = (await pkg({ target: folder, outputFolder: out })).features;
    const members = await readMembers(f.file);
    const byName = new Map(members.map((m) => [m.name, m]));
    assert.equal(byName.get("./dörfer/日本語/ñandú.txt")?.type, "file");
    assert.equal(byName.get(`./${deep}`)?.type, "file");
    assert.deepEqual(
      [byName.get("./conf/run.sh")?.type, byName.get("./conf/run.sh")?.linkname],
      ["symlink", "../install.sh"],
    );
    assert.deepEqual([byName.get("./conf-link")?.type, byName.get("./conf-link")?.mode], ["symlink", 0o777]);
    const x = join(dir, "x");
    await mkdir(x);
    execFileSync("tar", ["-xf", f.file, "-C", x]);
    assert.equal(await readFile(join(x, "dörfer/日本語/ñandú.txt"), "utf8"), "¡hola!\n");
    assert.equal(await readFile(join(x, deep), "utf8"), "bottom\n");
    assert.equal(
      await readFile(join(x, "conf/run.sh"), "utf8"),
      await readFile(join(folder, "install.sh"), "utf8"),
    );
  } finally {
    await cleanup();
  }
});

test("legacyIds: currentId is added to the collection and to the packaged metadata", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const meta = metaFor("renamed", { legacyIds: ["old-name"] });
    const folder = await writeFeature(dir, "renamed", { meta });
    const out = join(dir, "out");
    const [f] = (await pkg({ target: folder, outputFolder: out })).features;
    const x = join(dir, "x");
    await mkdir(x);
    execFileSync("tar", ["-xf", f.file, "-C", x]);
    assert.deepEqual(JSON.parse(await readFile(join(x, "devcontainer-feature.json"), "utf8")), {
      ...meta,
      currentId: "renamed",
    });
    const collection = JSON.parse(await readFile(join(out, "devcontainer-collection.json"), "utf8"));
    assert.equal(collection.features[0].currentId, "renamed");
    assert.deepEqual((await readdir(out)).sort(), [
      "devcontainer-collection.json",
      "devcontainer-feature-renamed.tgz",
    ]);
    assert.deepEqual(
      JSON.parse(await readFile(join(folder, "devcontainer-feature.json"), "utf8")),
      meta,
      "source untouched",
    );
  } finally {
    await cleanup();
  }
});

test("an output folder inside the feature is not packaged into it", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const folder = await writeFeature(dir, "self");
    const out = join(folder, "output");
    await pkg({ target: folder, outputFolder: out });
    await pkg({ target: folder, outputFolder: out });
    const names = (await readMembers(join(out, "devcontainer-feature-self.tgz"))).map((m) => m.name);
    assert.deepEqual(names, ["./", "./devcontainer-feature.json", "./install.sh"]);
  } finally {
    await cleanup();
  }
});

test("a run failing while packaging leaves the output folder as it was and no staging folder", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await writeFeature(src, "aaa-first");
    await writeFeature(src, "zzz-second");
    const out = join(dir, "out");
    await mkdir(out);
    await writeFile(join(out, "keep.txt"), "mine");
    // The reporter is the caller's: here it fails once the first tarball is staged.
    const reporter = {
      ...silentReporter(),
      info(message: string) {
        if (message.startsWith("Packaged feature 'aaa-first'")) throw new Error("reporter gave up");
      },
    };
    await assert.rejects(
      packageFeatures(
        { target: src, outputFolder: out, forceCleanOutputFolder: true, concurrency: 1 },
        reporter,
      ),
      /reporter gave up/,
    );
    assert.deepEqual(await readdir(out), ["keep.txt"]);
    assert.deepEqual((await readdir(dir)).sort(), ["out", "src"]);
    // the same for a fresh output folder: neither it nor its missing parents are created
    await assert.rejects(
      packageFeatures({ target: src, outputFolder: join(dir, "new", "fresh") }, reporter),
      /gave up/,
    );
    assert.deepEqual((await readdir(dir)).sort(), ["out", "src"]);
  } finally {
    await cleanup();
  }
});

test("fifos are refused by validation; a folder in the way of an artifact stops the run before anything moves", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await writeFeature(src, "aaa-good");
    const bad = await writeFeature(src, "zzz-fifo");
    execFileSync("mkfifo", [join(bad, "pipe")]);
    const out = join(dir, "out");
    const err = await failure({ target: src, outputFolder: out });
    assert.equal(err.code, "FEATURES_INVALID");
    assert.match(err.message, /zzz-fifo\/pipe: a fifo cannot be packaged/);
    assert.deepEqual((await readdir(dir)).sort(), ["src"]);
    execFileSync("rm", [join(bad, "pipe")]);
    await mkdir(join(out, "devcontainer-feature-zzz-fifo.tgz"), { recursive: true });
    await writeFile(join(out, "devcontainer-feature-aaa-good.tgz"), "old");
    assert.equal((await failure({ target: src, outputFolder: out })).code, "FEATURES_OUTPUT_CONFLICT");
    assert.equal(await readFile(join(out, "devcontainer-feature-aaa-good.tgz"), "utf8"), "old");
    assert.deepEqual((await readdir(dir)).sort(), ["out", "src"]);
  } finally {
    await cleanup();
  }
});

test("an output path that is a file is refused", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const folder = await writeFeature(dir, "hello");
    await writeFile(join(dir, "out"), "a file");
    const err = await failure({ target: folder, outputFolder: join(dir, "out") });
    assert.equal(err.code, "FEATURES_OUTPUT_NOT_FOLDER");
    assert.equal(await readFile(join(dir, "out"), "utf8"), "a file");
  } finally {
    await cleanup();
  }
});
