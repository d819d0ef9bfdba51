import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { detectMissing, installCommands, nodePackage, recoverTool } from "../../src/tools/recover.js";
import { runCli, runCliAsync } from "../helpers/cli.js";
import { FIXTURE_TOOLS } from "./helpers.js";

/** Real error output: stderr of a command run now on this machine. */
function stderrOf(program: string, args: string[]): string {
  const r = spawnSync(program, args, { encoding: "utf8", cwd: tmpdir() });
  assert.notEqual(r.status, 0, `${program} ${args.join(" ")} was expected to fail`);
  return r.stderr;
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-t7-recover-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("python3: ModuleNotFoundError for a made-up module and for PIL (→ pillow)", () => {
  const made = detectMissing(stderrOf("python3", ["-c", "import dockpack_made_up_module.sub"]));
  assert.deepEqual(
    made.map((m) => [m.kind, m.name, m.package]),
    [["python", "dockpack_made_up_module", "dockpack-made-up-module"]],
  );
  // Real output for PIL where it is not installed (here); the other mappings are checked on text.
  if (spawnSync("python3", ["-c", "import PIL"]).status !== 0) {
    const pil = detectMissing(stderrOf("python3", ["-c", "from PIL import Image"]));
    assert.deepEqual(
      pil.map((m) => [m.name, m.package, m.mapped]),
      [["PIL", "pillow", true]],
    );
  }
  const mapped = detectMissing(
    ["yaml", "cv2", "sklearn", "flask_cors", "bs4", "dotenv", "dateutil"]
      .map((m) => `ModuleNotFoundError: No module named '${m}'`)
      .join("\n"),
  ).map((m) => m.package);
  assert.deepEqual(mapped, [
    "pyyaml",
    "opencv-python",
    "scikit-learn",
    "flask-cors",
    "beautifulsoup4",
    "python-dotenv",
    "python-dateutil",
  ]);
  assert.deepEqual(
    detectMissing("ImportError: No module named yaml").map((m) => m.package),
    ["pyyaml"],
  );
});

test("node: ERR_MODULE_NOT_FOUND (import) and Cannot find module (require of a deep path)", () => {
  const esm = detectMissing(stderrOf(process.execPath, ["-e", 'import("left-pad-nonexistent")']));
  assert.deepEqual(
    esm.map((m) => [m.kind, m.package]),
    [["node", "left-pad-nonexistent"]],
  );
  const cjs = detectMissing(stderrOf(process.execPath, ["-e", 'require("@dockpack-x/pkg/deep/file.js")']));
  assert.deepEqual(
    cjs.map((m) => m.package),
    ["@dockpack-x/pkg"],
  );
  assert.equal(nodePackage("lodash/fp"), "lodash");
  assert.equal(nodePackage("./local.js"), null);
  assert.equal(nodePackage("fs/promises"), null);
});

test("missing programs: sh 'not found', bash 'command not found', spawn ENOENT → Debian packages", () => {
  const sh = detectMissing(stderrOf("sh", ["-c", "dockpack-no-such-program --x"]));
  assert.deepEqual(
    sh.map((m) => [m.kind, m.name]),
    [["program", "dockpack-no-such-program"]],
  );
  const spawnLog = stderrOf(process.execPath, [
    "-e",
    'require("child_process").spawn("jq-nope").on("error", (e) => { console.error(e.message); process.exit(1); })',
  ]);
  assert.deepEqual(
    detectMissing(spawnLog).map((m) => m.name),
    ["jq-nope"],
  );
  const known = detectMissing(
    "bash: line 1: ffmpeg: command not found\nspawn zstd ENOENT\nsh: 1: convert: not found",
  );
  assert.deepEqual(
    known.map((m) => m.package),
    ["ffmpeg", "zstd", "imagemagick"],
  );
  const cmds = installCommands(known);
  assert.equal(cmds.length, 1);
  assert.match(cmds[0].line, /apt-get install -y ffmpeg zstd imagemagick$/);
});

test("recover ID runs the tool and prints pip/npm/apt commands; --install --dry-run runs nothing", async () => {
  const py = await recoverTool({ id: "py-missing", toolsDir: FIXTURE_TOOLS, input: {} });
  assert.equal(py.source, "tool:py-missing");
  // A made-up module's package name is a guess: printed apart, never installed.
  assert.deepEqual(py.commands, []);
  assert.deepEqual(
    py.guessed_commands.map((c) => c.line),
    ["python3 -m pip install dockpack-made-up-module"],
  );
  assert.equal(py.installed, false);
  const nodeRes = await recoverTool({
    id: "node-missing",
    toolsDir: FIXTURE_TOOLS,
    input: {},
    install: true,
    dryRun: true,
  });
  assert.equal(nodeRes.dry_run, true);
  assert.equal(nodeRes.installed, false);
  assert.equal(nodeRes.commands[0].manager, "npm");
  assert.deepEqual(nodeRes.commands[0].args.slice(-1), ["left-pad-nonexistent"]);
  const prog = await recoverTool({ id: "prog-missing", toolsDir: FIXTURE_TOOLS, input: {}, retry: true });
  assert.deepEqual(
    prog.missing.map((m) => m.name),
    ["dockpack-no-such-program"],
  );
  assert.equal(prog.retry?.success, false);
});

test("CLI: recover --from-log prints commands; --install is refused inside generated images; bad usage exits 2", async () => {
  const log = join(dir, "error.log");
  await writeFile(log, stderrOf("python3", ["-c", "import dockpack_made_up_module"]));
  // Independent CLI runs overlap.
  const [r, off, none, missingLog] = await Promise.all([
    runCliAsync(["tool", "recover", "--from-log", log]),
    runCliAsync(["tool", "recover", "--from-log", log, "--install"], {
      env: { DOCKPACK_NO_AUTO_INSTALL: "1" },
    }),
    runCliAsync(["tool", "recover"]),
    runCliAsync(["tool", "recover", "--from-log", join(dir, "nope.log")]),
  ]);
  assert.equal(r.code, 1, r.stderr); // something is missing
  assert.match(r.stdout, /python dockpack_made_up_module → dockpack-made-up-module \(guess\)/);
  assert.match(r.stdout, /python3 -m pip install dockpack-made-up-module/);
  assert.equal(off.code, 1);
  assert.match(off.stderr, /Automatic installing is off/);
  assert.equal(none.code, 2);
  assert.equal(missingLog.code, 2);
  assert.match(missingLog.stderr, /nope\.log/);
});

test("issue 13 A10: the seed's ImportError, no option injection, no files taken for programs, guesses never installed, --install re-runs, --json stays one document", async () => {
  assert.deepEqual(
    detectMissing("ImportError: cannot import name 'CORS' from 'flask_cors' (unknown location)").map((m) => [
      m.kind,
      m.package,
      m.mapped,
    ]),
    [["python", "flask-cors", true]],
  );
  assert.deepEqual(
    detectMissing("ModuleNotFoundError: No module named '--index-url=https://evil.example/simple'"),
    [],
  );
  assert.deepEqual(detectMissing("Cannot find module '--registry=https://evil.example'"), []);
  assert.deepEqual(detectMissing("Error: config.yaml: not found"), []);
  assert.deepEqual(detectMissing("sh: 1: -rf: not found"), []);
  assert.deepEqual(
    detectMissing("ModuleNotFoundError: No module named 'requests'").map((m) => m.mapped),
    [true],
  );
  // --install with a guessed name: nothing runs, the guess is reported, the tool is run again,
  // stdout is one JSON document, and the exit code says something is still missing.
  const r = runCli(
    ["--json", "tool", "recover", "py-missing", "--tools-dir", FIXTURE_TOOLS, "--input", "{}", "--install"],
    { env: { DOCKPACK_NO_AUTO_INSTALL: "" } },
  );
  assert.equal(r.code, 1, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.installed, false);
  assert.deepEqual(res.commands, []);
  assert.equal(res.guessedCommands.length, 1);
  assert.match(r.stderr, /not running 'python3 -m pip install dockpack-made-up-module'/);
  const again = await recoverTool({ id: "prog-missing", toolsDir: FIXTURE_TOOLS, input: {}, install: true });
  assert.equal(again.retry, undefined); // nothing was installed: nothing to re-run
});
