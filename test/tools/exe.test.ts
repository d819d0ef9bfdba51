import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { type CliResult, runCliAsync } from "../helpers/cli.js";
import { needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { EXAMPLES, freePort, waitForHttp } from "./helpers.js";

const exec = promisify(execFile);
let dir: string;
let exe: string;
let env: NodeJS.ProcessEnv;

let calc: CliResult;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-t7-exe-"));
  const out = join(dir, "pkg");
  // The file's two SEA builds (≈100 MB binaries) run at once, each once for the whole file:
  // shout-count ("both" also writes the docker files) and the Python basic_calculator.
  const [r, c] = await Promise.all([
    runCliAsync(["--json", "tool", "compile", "shout-count", out, "both", "--tools-dir", EXAMPLES]),
    runCliAsync([
      "--json",
      "tool",
      "compile",
      "basic_calculator",
      join(dir, "calc"),
      "exe",
      "--tools-dir",
      EXAMPLES,
    ]),
  ]);
  calc = c;
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout); // exactly one JSON document on stdout
  exe = res.exe.path;
  assert.equal(exe, join(out, "exe", "shout-count"));
  assert.ok(res.files.some((f: { path: string }) => f.path === "Dockerfile"));
  assert.ok(res.files.some((f: { path: string }) => f.path === "BUILD_INSTRUCTIONS.md"));
  assert.ok(!res.files.some((f: { path: string }) => f.path.endsWith(".blob")));
  // The executable extracts its tool files under TMPDIR: keep them in this test's folder.
  env = { ...process.env, TMPDIR: join(dir, "tmp") };
  await mkdir(join(dir, "tmp"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const runExe = (args: string[], input?: string) =>
  spawnSync(exe, args, { cwd: dir, env, input, encoding: "utf8", timeout: 60_000 });

test("the single executable is a Node SEA with the workflow's tools embedded", async () => {
  assert.ok((await stat(exe)).mode & 0o100);
  const r = runExe(["--input", JSON.stringify({ text: "one two" })]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { text: "ONE TWO", words: 2 });
  assert.doesNotMatch(r.stderr, /ExperimentalWarning/);
  const extracted = await readdir(join(dir, "tmp"));
  assert.equal(extracted.filter((n) => n.startsWith("dockpack-tool-shout-count-")).length, 1);
});

test("CLI mode: --file, --file -, --prompt, --info; bad input exits 2", async () => {
  const file = join(dir, "input.json");
  await writeFile(file, JSON.stringify({ text: "from a file" }));
  assert.deepEqual(JSON.parse(runExe(["--file", file]).stdout), { text: "FROM A FILE", words: 3 });
  assert.deepEqual(JSON.parse(runExe(["--file", "-"], '{"text":"stdin"}').stdout), {
    text: "STDIN",
    words: 1,
  });
  assert.deepEqual(JSON.parse(runExe(["--prompt", "a prompt here"]).stdout), {
    text: "A PROMPT HERE",
    words: 3,
  });
  assert.equal(JSON.parse(runExe(["--info"]).stdout).id, "shout-count");
  const bad = runExe(["--input", '{"txt":1}']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /does not match its input_schema/);
  const notJson = runExe(["--input", "{"]);
  assert.equal(notJson.status, 2);
  assert.equal(runExe(["--bogus"]).status, 2);
  assert.equal(runExe(["--file", join(dir, "missing.json")]).status, 1);
});

test("API mode (no arguments): serves the HTTP API and stops cleanly on SIGTERM", async () => {
  const port = await freePort();
  const child = spawn(exe, [], {
    cwd: dir,
    env: { ...env, API_PORT: String(port), API_HOST: "127.0.0.1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    await waitForHttp(`http://127.0.0.1:${port}/api/health`, 30);
    const r = await fetch(`http://127.0.0.1:${port}/api/invoke`, {
      method: "POST",
      body: JSON.stringify({ text: "served" }),
      headers: { "content-type": "application/json" },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(((await r.json()) as { result: unknown }).result, { text: "SERVED", words: 1 });
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  } finally {
    child.kill("SIGKILL");
  }
});

test("a Node tool's exe runs in a container with neither node nor python (the exe runs node scripts itself)", async (t) => {
  if (!needsEngine(t)) return;
  const debian = await ensureFixture("debian");
  const r = await exec("docker", [
    "run",
    "--rm",
    "--network",
    "none",
    "-v",
    `${exe}:/x/shout-count:ro`,
    debian,
    "sh",
    "-c",
    'if command -v node || command -v python3; then exit 9; fi; /x/shout-count --input \'{"text":"in a box"}\'',
  ]);
  assert.deepEqual(JSON.parse(r.stdout), { text: "IN A BOX", words: 3 });
});

test("the exe checks its extracted files: an edited tool file is replaced before it runs", async () => {
  assert.equal(runExe(["--input", '{"text":"a"}']).status, 0);
  const folder = (await readdir(join(dir, "tmp"))).find((n) => n.startsWith("dockpack-tool-shout-count-"));
  assert.ok(folder);
  assert.equal((await stat(join(dir, "tmp", folder))).mode & 0o777, 0o700);
  const script = join(dir, "tmp", folder, "tools", "upper", "upper.mjs");
  await writeFile(script, 'console.log(JSON.stringify({ text: "HACKED", length: 6 }));\n');
  const r = runExe(["--input", '{"text":"safe"}']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { text: "SAFE", words: 1 });
});

test("the exe's port-in-use hint names --port, which it accepts", async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = runExe(["--port", String(port), "--host", "127.0.0.1"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /EADDRINUSE/);
    assert.match(r.stderr, /hint: .*--port N/);
  } finally {
    blocker.close();
  }
});

test("a Python tool's exe runs on a machine with python3 and no node; it says python3 is needed", async (t) => {
  if (!needsEngine(t)) return;
  const pyslim = await ensureFixture("pyslim");
  const out = join(dir, "calc");
  const c = calc;
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /python3 must be installed on the machine that runs it/);
  assert.match(await readFile(join(out, "BUILD_INSTRUCTIONS.md"), "utf8"), /python3 for this tool/);
  const r = await exec("docker", [
    "run",
    "--rm",
    "--network",
    "none",
    "-v",
    `${join(out, "exe", "basic_calculator")}:/x/calc:ro`,
    pyslim,
    "sh",
    "-c",
    'if command -v node; then exit 9; fi; /x/calc --input \'{"operation":"add","a":2,"b":3}\'',
  ]);
  assert.deepEqual(JSON.parse(r.stdout), { result: 5, operation: "add" });
});
