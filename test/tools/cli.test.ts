import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, test } from "node:test";
import { compileTool } from "../../src/tools/compile.js";
import { runCli, runCliAsync } from "../helpers/cli.js";
import { EXAMPLES, FIXTURE_TOOLS, FIXTURES } from "./helpers.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-t7-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tree(root: string, d = root): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(d)).sort()) {
    const p = join(d, name);
    const st = await stat(p);
    if (st.isDirectory()) Object.assign(out, await tree(root, p));
    else
      out[relative(root, p)] = `${(st.mode & 0o777).toString(8)} ${createHash("sha256")
        .update(await readFile(p))
        .digest("hex")}`;
  }
  return out;
}

test("tool --help lists the subcommands and ends with examples", () => {
  const r = runCli(["tool", "--help"]);
  assert.equal(r.code, 0);
  for (const c of ["list", "invoke", "serve", "compile", "recover"])
    assert.match(r.stdout, new RegExp(`\\n  ${c} `));
  assert.match(r.stdout, /Examples:\n {2}\$ dockpack tool/);
});

test("list and invoke: human and --json output, errors with exit codes", async () => {
  // Independent CLI runs overlap (each is a Node start through tsx).
  const [list, inv, bad, notJson, crash] = await Promise.all([
    runCliAsync(["tool", "list", "--tools-dir", EXAMPLES]),
    runCliAsync([
      "--json",
      "tool",
      "invoke",
      "shout-count",
      "--tools-dir",
      EXAMPLES,
      "--input",
      '{"text":"a b"}',
    ]),
    runCliAsync(["--json", "tool", "invoke", "upper", "--tools-dir", EXAMPLES, "--input", '{"text":1}']),
    runCliAsync(["tool", "invoke", "upper", "--tools-dir", EXAMPLES, "--input", "{x"]),
    runCliAsync(["tool", "invoke", "crash", "--tools-dir", FIXTURE_TOOLS, "--input", "{}"]),
  ]);
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^ID +TYPE +VERSION +DESCRIPTION\n/);
  assert.equal(inv.code, 0, inv.stderr);
  assert.deepEqual(JSON.parse(inv.stdout).result, { text: "A B", words: 2 });
  assert.equal(bad.code, 2);
  assert.equal(JSON.parse(bad.stdout).error.code, "TOOL_INPUT_INVALID");
  assert.equal(notJson.code, 2);
  assert.match(notJson.stderr, /--input is not valid JSON/);
  assert.equal(crash.code, 1);
  assert.match(crash.stderr, /error: Tool 'crash' failed with exit code 3/);
  assert.match(crash.stderr, /hint: Run 'dockpack tool recover crash/);
});

test("compile: the same input gives the same files (docker target, --ci github)", async () => {
  const a = join(dir, "a");
  await compileTool({ id: "shout-count", toolsDir: EXAMPLES, output: a, ci: "github", port: 9090 });
  const ta = await tree(a);
  await compileTool({
    id: "shout-count",
    toolsDir: EXAMPLES,
    output: a,
    ci: "github",
    port: 9090,
    force: true,
  });
  assert.deepEqual(await tree(a), ta);
  for (const f of [
    "Dockerfile",
    "docker-compose.yml",
    ".env",
    ".env.example",
    ".gitignore",
    ".dockerignore",
    "README.md",
    "server.cjs",
    ".github/workflows/docker-image.yml",
    "tools/shout-count/tool.yaml",
    "tools/upper/upper.mjs",
    "tools/word-count/count.mjs",
  ])
    assert.ok(ta[f], `missing ${f}`);
  for (const s of ["build.sh", "run.sh", "test.sh", "stop.sh", "docker-compose-up.sh"])
    assert.match(ta[s], /^755 /, `${s} is executable`);
  const dockerfile = await readFile(join(a, "Dockerfile"), "utf8");
  assert.match(dockerfile, /^ARG BASE_IMAGE=node:20\.\d+\.\d+-bookworm-slim$/m);
  assert.match(dockerfile, /^USER 10001:10001$/m);
  assert.match(dockerfile, /^HEALTHCHECK .*\n.*"node", "-e"/m);
  assert.match(dockerfile, /API_PORT=9090/);
  const compose = await readFile(join(a, "docker-compose.yml"), "utf8");
  for (const k of ["env_file: .env", "restart: unless-stopped", "healthcheck:"])
    assert.ok(compose.includes(k), k);
  const run = await readFile(join(a, "run.sh"), "utf8");
  assert.match(run, /--env-file \.env/);
  const env = await readFile(join(a, ".env.example"), "utf8");
  for (const k of [
    "TOOL_ID=shout-count",
    "API_PORT=9090",
    "API_HOST=",
    "API_TOKEN=",
    "CORS_ORIGINS=",
    "RATE_LIMIT_PER_MINUTE=",
  ])
    assert.ok(env.includes(k), k);
  const wf = await readFile(join(a, ".github/workflows/docker-image.yml"), "utf8");
  assert.match(wf, /docker\/build-push-action/);
  assert.match(wf, /push: true/);
  assert.match(wf, /\$\{\{ env\.REGISTRY \}\}/);
});

test("compile refuses an unknown id, an invalid tool.yaml and a non-empty output; nothing half-written", async () => {
  const out = join(dir, "refused");
  // A failure midway (a symlink escaping the tool folder) leaves neither output nor stage behind.
  const tools = join(dir, "tools");
  await cp(join(EXAMPLES, "upper"), join(tools, "upper"), { recursive: true });
  await symlink("/etc/hostname", join(tools, "upper", "escape"));
  // The refusals are independent CLI runs: they overlap.
  const [unknown, invalid, target, escaping] = await Promise.all([
    runCliAsync(["tool", "compile", "nope", out, "--tools-dir", EXAMPLES]),
    runCliAsync(["tool", "compile", "bad", out, "--tools-dir", join(FIXTURES, "invalid")]),
    runCliAsync(["tool", "compile", "upper", out, "zip", "--tools-dir", EXAMPLES]),
    runCliAsync(["tool", "compile", "upper", join(dir, "half"), "--tools-dir", tools]),
  ]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /No tool 'nope'/);
  assert.equal(invalid.code, 1);
  assert.match(invalid.stderr, /invalid\/bad\/tool\.yaml: /);
  assert.equal(target.code, 2);
  await assert.rejects(stat(out));

  await mkdir(out);
  await writeFile(join(out, "keep.txt"), "user data");
  const exists = runCli(["tool", "compile", "upper", out, "--tools-dir", EXAMPLES]);
  assert.equal(exists.code, 1);
  assert.match(exists.stderr, /refused already exists and is not empty/);
  assert.match(exists.stderr, /--force/);
  assert.equal(await readFile(join(out, "keep.txt"), "utf8"), "user data");

  assert.equal(escaping.code, 1);
  assert.match(escaping.stderr, /links outside the tool folder/);
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.includes("half")),
    [],
  );

  const forced = runCli(["tool", "compile", "upper", out, "--force", "--tools-dir", EXAMPLES]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /compiled 'upper' \(docker\)/);
  await assert.rejects(stat(join(out, "keep.txt")));
  assert.ok((await stat(join(out, "Dockerfile"))).isFile());
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.includes(".dockpack-")),
    [],
  );
});

test("invoke reads the input from stdin when no option gives it; list reports a broken tool.yaml and goes on", async () => {
  const [r, empty, list] = await Promise.all([
    runCliAsync(["--json", "tool", "invoke", "upper", "--tools-dir", EXAMPLES], {
      input: '{"text":"piped"}',
    }),
    runCliAsync(["tool", "invoke", "upper", "--tools-dir", EXAMPLES], { input: "" }),
    runCliAsync(["tool", "list", "--tools-dir", join(FIXTURES, "mixed")]),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).result, { text: "PIPED", length: 5 });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /stdin is not valid JSON/);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^good\s/m);
  assert.match(list.stdout, /not loaded: .*mixed\/bad\/tool\.yaml/);
});
