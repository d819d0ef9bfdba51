import assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { isDockpackError } from "../../src/core/errors.js";
import { silentReporter } from "../../src/core/output.js";
import { checkFeatureMetadata, discoverFeatures, validateFeatureMetadata } from "../../src/features/index.js";
import { parseJsonc } from "../../src/features/metadata.js";
import { metaFor, tempDir, writeFeature } from "./helpers.js";

const problemsOf = (value: unknown, folder = "hello") => validateFeatureMetadata(value, folder);
const warningsOf = (value: unknown, folder = "hello") => checkFeatureMetadata(value, folder).warnings;
const has = (ps: { path: string; message: string }[], path: string, re: RegExp) =>
  assert.ok(
    ps.some((p) => p.path === path && re.test(p.message)),
    `expected a problem at ${path} matching ${re}, got ${JSON.stringify(ps)}`,
  );

test("valid metadata has no problems", () => {
  assert.deepEqual(problemsOf(metaFor("hello")), []);
  assert.deepEqual(
    problemsOf(
      metaFor("hello", {
        options: { v: { type: "string", proposals: ["a", "b"], default: "anything" } },
        legacyIds: ["old-hello"],
        containerEnv: { A: "1" },
        // a mount string is no longer valid: the spec schema's items are objects (issue 12 A11)
        mounts: [{ type: "volume", source: "x", target: "/x" }],
        postCreateCommand: ["echo", "hi"],
        customizations: { vscode: { extensions: [] } },
        installsAfter: ["ghcr.io/devcontainers/features/common-utils"],
        dependsOn: { "ghcr.io/devcontainers/features/node:1": {} },
      }),
    ),
    [],
  );
});

test("JSON with comments and trailing commas parses; syntax errors give line:column", () => {
  const ok = parseJsonc('{\n  // comment\n  "id": "x", /* more */\n  "list": [1, 2,],\n}\n');
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.value, { id: "x", list: [1, 2] });
  const bad = parseJsonc('{\n  "id": "x"\n  "name": "y"\n}');
  assert.equal(bad.errors.length, 1);
  assert.match(bad.errors[0], /^3:3 CommaExpected/);
});

test("required id, version and name", () => {
  const ps = problemsOf({ description: "no ids" });
  for (const key of ["id", "version", "name"]) has(ps, "$", new RegExp(`'${key}' is missing`));
  has(problemsOf([]), "$", /JSON object, not an array/);
});

test("version must be semver", () => {
  has(problemsOf(metaFor("hello", { version: "1.0" })), "$.version", /not a semantic version/);
  has(problemsOf(metaFor("hello", { version: 1 })), "$.version", /must be a string/);
  // semver.valid() takes these; the spec's semantic version does not (issue 12 A11)
  for (const v of ["v1.0.0", "=1.0.0", " 1.0.0", "1.0.0 ", "01.0.0"])
    has(problemsOf(metaFor("hello", { version: v })), "$.version", /not a semantic version/);
  assert.deepEqual(problemsOf(metaFor("hello", { version: "2.0.0-rc.1+build.5" })), []);
});

test("id must match its folder and use lowercase letters, digits, - and _", () => {
  has(problemsOf(metaFor("hello"), "world"), "$.id", /does not match its folder name 'world'/);
  // upper case and '.' are accepted with a warning, as the devcontainer CLI packages them (A10)
  assert.deepEqual(problemsOf(metaFor("Hello.World"), "Hello.World"), []);
  has(warningsOf(metaFor("Hello.World"), "Hello.World"), "$.id", /other than lowercase letters, digits/);
  assert.deepEqual(problemsOf(metaFor("my_feature-2"), "my_feature-2"), []);
});

test("unknown properties are warnings (A10), wrong property types are errors", () => {
  const meta = metaFor("hello", { optons: {}, "weird key": 1, privileged: "yes", keywords: [1] });
  const ps = problemsOf(meta);
  const ws = warningsOf(meta);
  has(ws, "$.optons", /unknown property 'optons'/);
  has(ws, '$["weird key"]', /unknown property/);
  assert.ok(!ps.some((p) => p.path === "$.optons" || p.path === '$["weird key"]'), JSON.stringify(ps));
  // properties the spec's prose defines beyond its schema are known
  assert.deepEqual(warningsOf(metaFor("hello", { keywords: ["a"], dependsOn: {}, $schema: "x" })), []);
  has(ps, "$.privileged", /must be a boolean, not a string/);
  has(ps, "$.keywords", /array of strings/);
});

test("options: type boolean or string", () => {
  has(
    problemsOf(metaFor("hello", { options: { n: { type: "number", default: 1 } } })),
    "$.options.n.type",
    /"boolean" or "string"/,
  );
  has(problemsOf(metaFor("hello", { options: { n: { default: "x" } } })), "$.options.n.type", /missing/);
  has(problemsOf(metaFor("hello", { options: { n: "x" } })), "$.options.n", /must be an object/);
  const bogus = metaFor("hello", { options: { n: { type: "string", default: "a", bogus: 1, title: "T" } } });
  assert.deepEqual(problemsOf(bogus), []);
  has(warningsOf(bogus), "$.options.n.bogus", /unknown property 'bogus'/);
  has(warningsOf(bogus), "$.options.n.title", /unknown property 'title'/);
});

test("options: enum versus proposals", () => {
  has(
    problemsOf(
      metaFor("hello", { options: { n: { type: "string", enum: ["a"], proposals: ["a"], default: "a" } } }),
    ),
    "$.options.n",
    /either 'enum'.*or 'proposals'/,
  );
  has(
    problemsOf(metaFor("hello", { options: { n: { type: "string", enum: [1, 2], default: "a" } } })),
    "$.options.n.enum",
    /array of strings/,
  );
  has(
    problemsOf(metaFor("hello", { options: { n: { type: "string", enum: [], default: "a" } } })),
    "$.options.n.enum",
    /at least one/,
  );
  has(
    problemsOf(metaFor("hello", { options: { b: { type: "boolean", enum: ["true"], default: true } } })),
    "$.options.b.enum",
    /boolean option takes no 'enum'/,
  );
  has(
    problemsOf(metaFor("hello", { options: { b: { type: "boolean", proposals: ["true"], default: true } } })),
    "$.options.b.proposals",
    /no 'proposals'/,
  );
});

test("options: default of the right type, within enum", () => {
  has(
    problemsOf(metaFor("hello", { options: { b: { type: "boolean", default: "true" } } })),
    "$.options.b.default",
    /true or false/,
  );
  has(
    problemsOf(metaFor("hello", { options: { s: { type: "string", default: 3 } } })),
    "$.options.s.default",
    /must be a string/,
  );
  has(
    problemsOf(metaFor("hello", { options: { s: { type: "string", enum: ["a", "b"], default: "c" } } })),
    "$.options.s.default",
    /not one of its 'enum' values/,
  );
  has(
    problemsOf(metaFor("hello", { options: { s: { type: "string", proposals: ["a"] } } })),
    "$.options.s.default",
    /no 'default'/,
  );
  has(
    problemsOf(metaFor("hello", { options: { "odd-name": { type: "boolean" } } })),
    '$.options["odd-name"].default',
    /no 'default'/,
  );
});

test("legacyIds must be valid ids other than the id", () => {
  const ps = problemsOf(metaFor("hello", { legacyIds: ["hello", "Old"] }));
  has(ps, "$.legacyIds[0]", /must differ/);
  has(warningsOf(metaFor("hello", { legacyIds: ["hello", "Old"] })), "$.legacyIds[1]", /lowercase/);
});

async function discoverError(
  target: string,
): Promise<{ code: string; message: string; problems: unknown[] }> {
  try {
    await discoverFeatures(target, silentReporter());
  } catch (e) {
    assert.ok(isDockpackError(e), String(e));
    return { code: e.code, message: e.message, problems: (e.details?.problems as unknown[]) ?? [] };
  }
  throw new Error("expected discoverFeatures to fail");
}

test("discovery: all problems of all features are reported, naming folder, file and JSON path", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFeature(dir, "alpha", { meta: metaFor("alfa", { version: "one" }) });
    await writeFeature(dir, "beta", { install: false });
    await writeFeature(dir, "gamma", { meta: '{ "id": "gamma", "version": "1.0.0", "name": "G", }' });
    await writeFeature(dir, "delta", { meta: '{ "id": "delta" "version": "1.0.0" }' });
    await writeFeature(dir, "ok");
    const err = await discoverError(dir);
    assert.equal(err.code, "FEATURES_INVALID");
    assert.equal(err.problems.length, 4);
    assert.match(err.message, /4 problems in 3 features \(nothing was written\)/);
    assert.match(
      err.message,
      /alpha\/devcontainer-feature\.json \$\.id: the id 'alfa' does not match its folder name 'alpha'/,
    );
    assert.match(
      err.message,
      /alpha\/devcontainer-feature\.json \$\.version: the version 'one' is not a semantic version/,
    );
    assert.match(err.message, /beta\/install\.sh: the feature has no install\.sh/);
    assert.match(
      err.message,
      /delta\/devcontainer-feature\.json: not valid JSON \(with comments\) at 1:17 CommaExpected/,
    );
    assert.doesNotMatch(err.message, /gamma|ok\//);
  } finally {
    await cleanup();
  }
});

test("discovery: single, collection, repository root with src/, hidden and non-feature folders", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await writeFeature(src, "one");
    await writeFeature(src, "two");
    await mkdir(join(src, ".hidden"));
    await symlink("/etc/hostname", join(src, "two", "outside"));
    await symlink("install.sh", join(src, "two", "inside"));
    await mkdir(join(src, "docs"));
    await writeFile(join(src, "README.md"), "# features\n");
    const warnings: string[] = [];
    const reporter = { ...silentReporter(), warn: (m: string) => warnings.push(m) };
    const single = await discoverFeatures(join(src, "one"), reporter);
    assert.equal(single.mode, "single");
    assert.deepEqual(
      single.features.map((f) => f.id),
      ["one"],
    );
    const collection = await discoverFeatures(src, reporter);
    assert.equal(collection.mode, "collection");
    assert.deepEqual(
      collection.features.map((f) => f.id),
      ["one", "two"],
    );
    assert.ok(warnings.some((w) => /docs holds no devcontainer-feature\.json; skipped/.test(w)));
    assert.ok(!warnings.some((w) => w.includes(".hidden")));
    assert.ok(
      warnings.some((w) => /two\/outside links to \/etc\/hostname, outside the feature folder/.test(w)),
    );
    assert.ok(!warnings.some((w) => w.includes("inside")));
    const root = await discoverFeatures(dir, reporter);
    assert.equal(root.root, src);
    assert.deepEqual(
      root.features.map((f) => f.id),
      ["one", "two"],
    );
  } finally {
    await cleanup();
  }
});

test("discovery: missing target, missing devcontainer-feature.json, empty collection, install.sh only", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    assert.equal((await discoverError(join(dir, "nope"))).code, "FEATURES_TARGET_MISSING");
    await writeFile(join(dir, "file"), "x");
    assert.match((await discoverError(join(dir, "file"))).message, /is not a folder/);
    await mkdir(join(dir, "empty"));
    const empty = await discoverError(join(dir, "empty"));
    assert.equal(empty.code, "FEATURES_NOT_FOUND");
    assert.match(
      empty.message,
      /No features found in .*empty: it has no devcontainer-feature\.json and no feature folders/,
    );
    await mkdir(join(dir, "half"));
    await writeFile(join(dir, "half", "install.sh"), "#!/bin/sh\n");
    const half = await discoverError(join(dir, "half"));
    assert.equal(half.code, "FEATURES_NOT_FOUND");
    assert.match(half.message, /half has an install\.sh but no devcontainer-feature\.json/);
    await mkdir(join(dir, "coll", "broken"), { recursive: true });
    await writeFile(join(dir, "coll", "broken", "install.sh"), "#!/bin/sh\n");
    const coll = await discoverError(join(dir, "coll"));
    assert.equal(coll.code, "FEATURES_INVALID");
    assert.match(
      coll.message,
      /broken\/devcontainer-feature\.json: the feature folder has an install\.sh but no devcontainer-feature\.json/,
    );
  } finally {
    await cleanup();
  }
});

test("the official spec schema's errors: mounts as strings, command objects, nested types (A11)", () => {
  const ps = problemsOf(
    metaFor("hello", {
      mounts: [
        "type=bind,source=/a,target=/b",
        { type: "bind", source: "/a" },
        { type: "tmpfs", source: "a", target: "/b" },
      ],
      postCreateCommand: { a: 5, b: ["ok"], c: "ok" },
      onCreateCommand: [1],
      capAdd: "SYS_PTRACE",
    }),
  );
  has(ps, "$.mounts[0]", /must be object \(spec schema\)/);
  has(ps, "$.mounts[1]", /required property 'target' is missing \(spec schema\)/);
  has(ps, "$.mounts[2].type", /must be one of "bind", "volume"/);
  has(ps, "$.postCreateCommand.a", /must be string or array \(spec schema\)/);
  assert.ok(
    !ps.some((p) => p.path.startsWith("$.postCreateCommand.b") || p.path.startsWith("$.postCreateCommand.c")),
  );
  has(ps, "$.onCreateCommand", /must be a string, an array of strings or an object/);
  has(ps, "$.capAdd", /must be an array of strings/);
  // one message per value: dockpack's own check and the schema do not both report $.capAdd
  assert.equal(ps.filter((p) => p.path === "$.capAdd").length, 1);
});

test("the CLI names the file and the JSON path of each schema error", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFeature(dir, "bad", {
      meta: metaFor("bad", {
        version: "v1.0.0",
        mounts: ["type=bind,source=/a,target=/b"],
        postCreateCommand: { a: 5 },
      }),
    });
    const err = await discoverError(join(dir, "bad"));
    assert.equal(err.code, "FEATURES_INVALID");
    assert.match(
      err.message,
      /bad\/devcontainer-feature\.json \$\.version: the version 'v1\.0\.0' is not a semantic version/,
    );
    assert.match(
      err.message,
      /bad\/devcontainer-feature\.json \$\.mounts\[0\]: must be object \(spec schema\)/,
    );
    assert.match(
      err.message,
      /bad\/devcontainer-feature\.json \$\.postCreateCommand\.a: must be string or array/,
    );
  } finally {
    await cleanup();
  }
});
