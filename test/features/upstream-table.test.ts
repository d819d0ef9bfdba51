/**
 * Issue 12 B: a table of feature folders run through dockpack AND the official devcontainer CLI
 * 0.89.0 (`devcontainer features package`, a dev dependency). Both must give the same accept /
 * reject verdict, except for the cases listed in docs/commands/features.md ("Accepted by the
 * devcontainer CLI, refused by dockpack"), each because the spec (its schema or its prose) forbids
 * what the CLI lets through. dockpack's refusals are named errors (FEATURES_INVALID), never a
 * crash; the cases accepted with a warning produce that warning.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { isDockpackError } from "../../src/core/errors.js";
import { silentReporter } from "../../src/core/output.js";
import { packageFeatures } from "../../src/features/index.js";
import { tempDir } from "./helpers.js";

const DEVCONTAINER = createRequire(import.meta.url).resolve("@devcontainers/cli/devcontainer.js");
const run = promisify(execFile);

/** The exceptions, each a key that docs/commands/features.md lists (`upstream-only: <key>`). */
type Exception =
  | "schema-type"
  | "schema-required"
  | "schema-mount"
  | "schema-command"
  | "schema-option-form"
  | "prose-type"
  | "semver"
  | "id-folder"
  | "install-sh"
  | "option-enum"
  | "legacy-id"
  | "nesting";

interface Case {
  name: string;
  meta: unknown;
  /** Raw text instead of JSON.stringify(meta). */
  raw?: string;
  install?: boolean;
  /** Set when upstream accepts and dockpack refuses, with the documented reason. */
  exception?: Exception;
  /** A warning dockpack must print (accepted cases). */
  warns?: RegExp;
}

const base = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  version: "1.0.0",
  name: `F ${id}`,
  ...extra,
});
const opt = (o: Record<string, unknown>) => ({ options: { o } });

const CASES: Case[] = [
  { name: "valid", meta: base("valid") },
  { name: "bom", meta: null, raw: `\ufeff${JSON.stringify(base("bom"))}` },
  { name: "jsonc", meta: null, raw: '{\n // c\n "id": "jsonc", "version": "1.0.0", "name": "J",\n}' },
  { name: "xvendor", meta: base("xvendor", { "x-vendor": { a: 1 } }), warns: /unknown property 'x-vendor'/ },
  {
    name: "optiontitle",
    meta: base("optiontitle", opt({ type: "string", default: "a", title: "T" })),
    warns: /\$\.options\.o\.title: unknown property 'title'/,
  },
  { name: "dot.id", meta: base("dot.id"), warns: /the id 'dot\.id' uses characters/ },
  { name: "UpperId", meta: base("UpperId"), warns: /the id 'UpperId' uses characters/ },
  { name: "currentid", meta: base("currentid", { legacyIds: ["old"] }) },
  {
    name: "dependson",
    meta: base("dependson", { dependsOn: { "ghcr.io/devcontainers/features/node:1": {} } }),
  },
  { name: "emptyopts", meta: base("emptyopts", { options: {} }) },
  { name: "stropt", meta: base("stropt", opt({ type: "string", default: "x" })) },
  { name: "prerelease", meta: base("prerelease", { version: "2.0.0-rc.1+build.5" }) },
  { name: "noname", meta: { id: "noname", version: "1.0.0" } },
  { name: "noversion", meta: { id: "noversion", name: "x" } },
  { name: "noid", meta: { version: "1.0.0", name: "x" } },
  { name: "emptyobj", meta: {} },
  { name: "arrayfile", meta: [1, 2] },
  { name: "badjson", meta: null, raw: '{ "id": "badjson" "version": "1.0.0" }' },
  {
    name: "deep100k",
    meta: null,
    raw: `{"id":"deep100k","version":"1.0.0","name":"x","customizations":{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`,
  },
  { name: "afterstr", meta: base("afterstr", { installsAfter: "x" }), exception: "schema-type" },
  { name: "customarr", meta: base("customarr", { customizations: [1] }), exception: "schema-type" },
  { name: "envnum", meta: base("envnum", { containerEnv: { A: 1 } }), exception: "schema-type" },
  { name: "idnum", meta: { id: 5, version: "1.0.0", name: "x" }, exception: "schema-type" },
  { name: "privstr", meta: base("privstr", { privileged: "yes" }), exception: "schema-type" },
  { name: "versionnum", meta: base("versionnum", { version: 1 }), exception: "schema-type" },
  {
    name: "booldefstr",
    meta: base("booldefstr", opt({ type: "boolean", default: "true" })),
    exception: "schema-option-form",
  },
  {
    name: "optnumber",
    meta: base("optnumber", opt({ type: "number", default: 1 })),
    exception: "schema-option-form",
  },
  {
    name: "optnodefault",
    meta: base("optnodefault", opt({ type: "string", enum: ["a"] })),
    exception: "schema-option-form",
  },
  {
    name: "enumprop",
    meta: base("enumprop", opt({ type: "string", enum: ["a"], proposals: ["a"], default: "a" })),
    exception: "schema-option-form",
  },
  {
    name: "mountstr",
    meta: base("mountstr", { mounts: ["type=bind,source=/a,target=/b"] }),
    exception: "schema-mount",
  },
  {
    name: "mountnotarget",
    meta: base("mountnotarget", { mounts: [{ type: "bind", source: "/a" }] }),
    exception: "schema-mount",
  },
  { name: "postobj", meta: base("postobj", { postCreateCommand: { a: 5 } }), exception: "schema-command" },
  { name: "keywordsnum", meta: base("keywordsnum", { keywords: [1] }), exception: "prose-type" },
  { name: "vversion", meta: base("vversion", { version: "v1.0.0" }), exception: "semver" },
  { name: "shortversion", meta: base("shortversion", { version: "1.0" }), exception: "semver" },
  { name: "mismatch", meta: base("other"), exception: "id-folder" },
  { name: "noinstall", meta: base("noinstall"), install: false, exception: "install-sh" },
  {
    name: "notinenum",
    meta: base("notinenum", opt({ type: "string", enum: ["a"], default: "b" })),
    exception: "option-enum",
  },
  {
    name: "enumempty",
    meta: base("enumempty", opt({ type: "string", enum: [], default: "a" })),
    exception: "option-enum",
  },
  { name: "legacysame", meta: base("legacysame", { legacyIds: ["legacysame"] }), exception: "legacy-id" },
  {
    name: "deep300",
    meta: base("deep300", { customizations: { a: JSON.parse(`${"[".repeat(300)}${"]".repeat(300)}`) } }),
    exception: "nesting",
  },
];

async function writeCase(dir: string, c: Case): Promise<string> {
  const folder = join(dir, "src", c.name);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, "devcontainer-feature.json"), c.raw ?? JSON.stringify(c.meta, null, 2));
  if (c.install !== false) {
    await writeFile(join(folder, "install.sh"), "#!/bin/sh\necho hi\n");
    await chmod(join(folder, "install.sh"), 0o755);
  }
  return folder;
}

async function upstreamAccepts(folder: string, out: string): Promise<boolean> {
  // Each run gets its own TMPDIR: the official CLI names its scratch folder
  // `templates-src-output-<Date.now()>` in the OS temp dir, so two runs started in the same
  // millisecond collide (EEXIST, a false "refuses"), and the folder is never removed.
  const tmp = `${out}.tmp`;
  await mkdir(tmp, { recursive: true });
  return run(
    process.execPath,
    [DEVCONTAINER, "features", "package", folder, "-o", out, "--log-level", "info"],
    {
      env: { ...process.env, TMPDIR: tmp },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    },
  ).then(
    () => true,
    () => false,
  );
}

async function dockpackVerdict(
  folder: string,
  out: string,
): Promise<{ accepts: boolean; warnings: string[] }> {
  const warnings: string[] = [];
  const reporter = { ...silentReporter(), warn: (m: string) => warnings.push(m) };
  try {
    await packageFeatures({ target: folder, outputFolder: out }, reporter);
    return { accepts: true, warnings };
  } catch (e) {
    assert.ok(isDockpackError(e), `${folder}: not a named error: ${String(e)}`);
    assert.equal(e.code, "FEATURES_INVALID", `${folder}: ${e.code} ${e.message}`);
    assert.doesNotMatch(e.message, /\n\s+at /, "no stack trace");
    return { accepts: false, warnings };
  }
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

test(`${CASES.length} feature folders: same verdict as devcontainer features package 0.89.0 but for the documented exceptions`, async () => {
  assert.ok(CASES.length >= 30);
  const docs = await readFile(new URL("../../docs/commands/features.md", import.meta.url), "utf8");
  const { dir, cleanup } = await tempDir("dockpack-features-table-");
  try {
    const rows = await pool(CASES, 4, async (c) => {
      const folder = await writeCase(dir, c);
      const upstream = await upstreamAccepts(folder, join(dir, "out-upstream", c.name));
      const ours = await dockpackVerdict(folder, join(dir, "out-dockpack", c.name));
      return { c, upstream, ours };
    });
    const wrong: string[] = [];
    for (const { c, upstream, ours } of rows) {
      if (c.exception) {
        if (!(upstream && !ours.accepts))
          wrong.push(
            `${c.name}: listed as an exception (${c.exception}) but upstream ${upstream} / dockpack ${ours.accepts}`,
          );
        if (!docs.includes(`upstream-only: ${c.exception}`))
          wrong.push(`${c.name}: exception ${c.exception} not in docs`);
      } else if (upstream !== ours.accepts) {
        wrong.push(
          `${c.name}: upstream ${upstream ? "accepts" : "refuses"}, dockpack ${ours.accepts ? "accepts" : "refuses"}`,
        );
      }
      if (c.warns && !ours.warnings.some((w) => c.warns?.test(w)))
        wrong.push(`${c.name}: no warning matching ${c.warns}: ${JSON.stringify(ours.warnings)}`);
    }
    assert.deepEqual(wrong, []);
  } finally {
    await cleanup();
  }
});
