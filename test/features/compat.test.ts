/**
 * Compatibility with the official devcontainer CLI (@devcontainers/cli, a dev dependency): for the
 * same input, its `features package` and ours give the same collection metadata (apart from
 * sourceInformation) and tarballs with the same member names, types, modes and contents.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:https";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { silentReporter } from "../../src/core/output.js";
import { packageFeatures } from "../../src/features/index.js";
import { needsEngine } from "../helpers/engine.js";
import { metaFor, readMembers, tempDir, writeFeature } from "./helpers.js";

const DEVCONTAINER = createRequire(import.meta.url).resolve("@devcontainers/cli/devcontainer.js");
const run = promisify(execFile);

async function official(target: string, out: string): Promise<void> {
  await run(
    process.execPath,
    [DEVCONTAINER, "features", "package", target, "-o", out, "--log-level", "info"],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
}

/** Members keyed for comparison: name, type, mode, link target, content hash (not mtime or owner). */
async function comparable(file: string) {
  return (await readMembers(file))
    .map((m) => ({
      name: m.name,
      type: m.type,
      mode: m.mode.toString(8),
      linkname: m.linkname,
      sha256: m.sha256,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function compare(ours: string, theirs: string): Promise<void> {
  const names = (await readdir(ours)).sort();
  assert.deepEqual(names, (await readdir(theirs)).sort());
  const oc = JSON.parse(await readFile(join(ours, "devcontainer-collection.json"), "utf8"));
  const tc = JSON.parse(await readFile(join(theirs, "devcontainer-collection.json"), "utf8"));
  assert.deepEqual(oc.sourceInformation, { source: "dockpack" });
  assert.deepEqual(tc.sourceInformation, { source: "devcontainer-cli" });
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  assert.deepEqual(oc.features, [...tc.features].sort(byId));
  for (const name of names.filter((n) => n.endsWith(".tgz"))) {
    assert.deepEqual(await comparable(join(ours, name)), await comparable(join(theirs, name)), name);
  }
}

test("same collection metadata and tarball members as `devcontainer features package`", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, "src");
    await writeFeature(src, "plain");
    await writeFeature(src, "with-comments", {
      meta: '{\n  // a comment\n  "id": "with-comments",\n  "version": "0.2.0",\n  "name": "Comments",\n  "options": { "x": { "type": "boolean", "default": true, }, },\n}\n',
    });
    const rich = await writeFeature(src, "rich", {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a containerEnv value refers to ${PATH} literally
      meta: metaFor("rich", { containerEnv: { PATH: "/opt/rich/bin:${PATH}" }, installsAfter: ["plain"] }),
      files: {
        "scripts/setup.sh": "echo setup\n",
        "scripts/data/table.csv": "a,b\n1,2\n",
        "dörfer/ñandú.txt": "¡hola!\n",
        [`${"deep/".repeat(15)}leaf.txt`]: "leaf\n",
        ".hidden-config": "x=1\n",
      },
    });
    await symlink("scripts/setup.sh", join(rich, "setup-link.sh"));
    await symlink("scripts/data", join(rich, "data"));
    await writeFeature(src, "renamed", { meta: metaFor("renamed", { legacyIds: ["old-renamed"] }) });

    const ours = join(dir, "ours");
    const theirs = join(dir, "theirs");
    await packageFeatures({ target: src, outputFolder: ours }, silentReporter());
    await official(src, theirs);
    await compare(ours, theirs);

    // single mode
    const oursSingle = join(dir, "ours-single");
    const theirsSingle = join(dir, "theirs-single");
    await packageFeatures({ target: rich, outputFolder: oursSingle }, silentReporter());
    await official(rich, theirsSingle);
    await compare(oursSingle, theirsSingle);
  } finally {
    await cleanup();
  }
});

test("the devcontainer CLI consumes our tarball as a feature (direct tarball over HTTPS)", async (t) => {
  // read-configuration asks the engine for existing dev containers (docker ps) before it resolves features.
  if (!needsEngine(t)) return;
  const { dir, cleanup } = await tempDir();
  try {
    const feature = await writeFeature(join(dir, "src"), "served", { files: { "lib/deep/ünï.txt": "x\n" } });
    const out = join(dir, "out");
    const [packaged] = (await packageFeatures({ target: feature, outputFolder: out }, silentReporter()))
      .features;
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ]);
    const server = createServer(
      { key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) },
      (req, res) => {
        if (req.url !== "/devcontainer-feature-served.tgz") {
          res.statusCode = 404;
          res.end();
          return;
        }
        createReadStream(packaged.file).pipe(res);
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const uri = `https://localhost:${(server.address() as AddressInfo).port}/devcontainer-feature-served.tgz`;
      const ws = join(dir, "ws");
      await mkdir(join(ws, ".devcontainer"), { recursive: true });
      await writeFile(
        join(ws, ".devcontainer", "devcontainer.json"),
        JSON.stringify({ image: "debian:bookworm", features: { [uri]: { flavour: "fancy" } } }),
      );
      const cache = join(dir, "tmp");
      await mkdir(cache);
      const { stdout } = await run(
        process.execPath,
        [DEVCONTAINER, "read-configuration", "--workspace-folder", ws, "--include-features-configuration"],
        {
          env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: "0", TMPDIR: cache },
          maxBuffer: 16 * 1024 * 1024,
        },
      );
      const set = JSON.parse(stdout).featuresConfiguration.featureSets[0];
      assert.equal(set.sourceInformation.type, "direct-tarball");
      assert.equal(set.computedDigest, packaged.digest);
      const [f] = set.features;
      assert.equal(f.id, "served");
      assert.ok(f.cachePath.startsWith(cache), `${f.cachePath} is inside the test's TMPDIR`);
      assert.deepEqual(f.value, { flavour: "fancy" });
      assert.equal(((await stat(join(f.cachePath, "install.sh"))).mode & 0o777).toString(8), "755");
      assert.equal(await readFile(join(f.cachePath, "lib/deep/ünï.txt"), "utf8"), "x\n");
    } finally {
      server.close();
    }
  } finally {
    await cleanup();
  }
});
