/**
 * Issue 14 B8: one key casing (camelCase) in every command's --json output. Runs the commands of
 * every group on a real repository, engine and fixture image and walks each JSON document: no
 * snake_case key anywhere, except inside the values listed in VERBATIM_KEYS (src/cli/json-keys.ts):
 * - `metadata`: a package's metadata.json, printed as the file holds it (documented format);
 * - a tool's `input`/`result`/`steps` and JSON Schemas; maps keyed by user names (`ports`,
 *   `labels`, `env`, feature `options`, …); an OCI image `config`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { camelKey, camelKeys, VERBATIM_KEYS } from "../../src/cli/json-keys.js";
import { BUSYBOX, cleanupPrefix, initAppRepo } from "../env/engine-helpers.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const EXAMPLE_TOOLS = fileURLToPath(new URL("../../examples/tools", import.meta.url));
const project = `dpj${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";

/** Paths (a.b[0].c) of every snake_case key of `doc` outside the verbatim values. */
function snakeKeys(doc: unknown, path = ""): string[] {
  if (Array.isArray(doc)) return doc.flatMap((v, i) => snakeKeys(v, `${path}[${i}]`));
  if (doc === null || typeof doc !== "object") return [];
  return Object.entries(doc).flatMap(([k, v]) => [
    ...(camelKey(k) !== k ? [`${path}.${k}`] : []),
    ...(VERBATIM_KEYS.has(k) ? [] : snakeKeys(v, `${path}.${k}`)),
  ]);
}

/** Runs `dockpack --json …args` (asynchronously, so that groups run side by side), expects exit `code`, returns its one JSON document. */
async function json(args: string[], cwd: string, code = 0): Promise<unknown> {
  const child = spawn(process.execPath, ["--import", TSX, MAIN, "--json", ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const [exit] = (await once(child, "close")) as [number | null];
  assert.equal(exit, code, `dockpack ${args.join(" ")}: ${stderr}`);
  const doc = JSON.parse(stdout);
  assert.deepEqual(snakeKeys(doc), [], `dockpack --json ${args.join(" ")}: snake_case keys`);
  return doc;
}

before(async () => {
  if (!engineAnswers()) return;
  ({ work, app } = await initAppRepo("dockpack-json-keys", project));
});

after(() => {
  if (work) cleanupPrefix(project, work);
});

test("camelKeys renames field names at every depth and leaves data maps and file documents alone", () => {
  assert.deepEqual(
    camelKeys({
      created_at: "t",
      rows: [{ include_code: true, a_b_c: 1 }],
      metadata: { format_version: "1" },
      result: { user_field: 1 },
      ports: { my_db: 5432 },
      Mixed_Case: 1,
      _private: 2,
    }),
    {
      createdAt: "t",
      rows: [{ includeCode: true, aBC: 1 }],
      metadata: { format_version: "1" },
      result: { user_field: 1 },
      ports: { my_db: 5432 },
      Mixed_Case: 1,
      _private: 2,
    },
  );
});

test("every command's --json output uses camelCase keys", async (t) => {
  if (!needsEngine(t)) return;
  const envAndPackages = async () => {
    await json(["env", "create", "jk"], app);
    await json(["env", "up", "jk"], app);
    await json(["env", "list"], app);
    await json(["env", "info", "jk"], app);
    const exported = (await json(["packages", "export", "jk", "--no-code"], app)) as { package: string };
    await Promise.all([
      json(["packages", "list"], app),
      json(["packages", "validate", exported.package], app),
      json(["packages", "inspect", exported.package], app),
    ]);
    await json(["packages", "import", exported.package, "--target-branch", "jk2"], app);
    await json(["env", "down", "jk"], app);
    await json(["env", "remove", "jk2"], app);
    await json(["env", "prune"], app);
    await json(["env", "remove", "jk", "--volumes"], app);
    // errors are JSON documents too
    await json(["packages", "validate", join(work, "missing.dockpack.tar")], work, 1);
  };
  const deltas = async () => {
    const inv = join(work, "inventory.json");
    await json(["delta", "inventory", BUSYBOX, "--output", inv], work);
    const delta = join(work, "busybox.delta");
    await json(["delta", "create", BUSYBOX, delta, "--method", "layer"], work);
    await Promise.all([
      json(["delta", "list", delta], work),
      json(["delta", "info", delta], work),
      json(["delta", "create", BUSYBOX, join(work, "none.delta"), "--base", inv, "--dry-run"], work),
    ]);
  };
  const tools = () =>
    Promise.all([
      json(["tool", "list", "--tools-dir", EXAMPLE_TOOLS], work),
      json(
        ["tool", "invoke", "shout-count", "--tools-dir", EXAMPLE_TOOLS, "--input", '{"text":"a b"}'],
        work,
      ),
      json(["tool", "compile", "shout-count", join(work, "compiled"), "--tools-dir", EXAMPLE_TOOLS], work),
      json(["tool", "recover", "shout-count", "--tools-dir", EXAMPLE_TOOLS, "--input", '{"text":"a"}'], work),
    ]);
  const targets = async () => {
    const root = join(work, "targets");
    mkdirSync(join(root, "services", "web"), { recursive: true });
    await json(["targets", "--root", root, "init"], work);
    await json(
      [
        "targets",
        "--root",
        root,
        "add-service",
        "--id",
        "web",
        "--module",
        "services/web",
        "--template",
        "node",
      ],
      work,
    );
    await Promise.all([
      json(["targets", "--root", root, "list"], work),
      json(["targets", "--root", root, "verify"], work),
    ]);
  };
  const features = async () => {
    const feature = join(work, "src", "hello");
    mkdirSync(feature, { recursive: true });
    const manifest = {
      id: "hello",
      version: "1.0.0",
      name: "Hello",
      options: { my_flag: { type: "boolean", default: true } },
    };
    writeFileSync(join(feature, "devcontainer-feature.json"), JSON.stringify(manifest));
    writeFileSync(join(feature, "install.sh"), "#!/bin/sh\necho hello\n");
    await json(["features", "package", "src", "-o", join(work, "features-out")], work);
  };
  await Promise.all([envAndPackages(), deltas(), tools(), targets(), features()]);
});
