/** `dockpack completion bash|zsh|fish` (issue 14, B5): the bash script completes groups, subcommands, options, branches and package files. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../helpers/cli.js";

function complete(script: string, cwd: string, words: string[]): string[] {
  const line = words.map((w) => `'${w}'`).join(" ");
  const r = spawnSync(
    "bash",
    [
      "-c",
      `source ${script}; COMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _dockpack; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { cwd, encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean).sort();
}

test("bash completion: groups, subcommands, options, branch names, package files", () => {
  const dir = mkdtempSync(join(tmpdir(), "dockpack-completion-"));
  try {
    const r = runCli(["completion", "bash"]);
    assert.equal(r.code, 0, r.stderr);
    const script = join(dir, "dockpack.bash");
    writeFileSync(script, r.stdout);
    assert.ok(complete(script, dir, ["dockpack", ""]).includes("packages"));
    assert.deepEqual(complete(script, dir, ["dockpack", "pa"]), ["packages"]);
    assert.ok(complete(script, dir, ["dockpack", "env", ""]).includes("prune"));
    assert.ok(complete(script, dir, ["dockpack", "-C", "/tmp", "env", "re"]).includes("remove"));
    assert.ok(complete(script, dir, ["dockpack", "env", "remove", "--"]).includes("--volumes"));
    spawnSync("git", ["init", "-q", "-b", "main", dir]);
    spawnSync("git", [
      "-C",
      dir,
      "-c",
      "user.name=t",
      "-c",
      "user.email=t@l",
      "commit",
      "-q",
      "--allow-empty",
      "-m",
      "x",
    ]);
    spawnSync("git", ["-C", dir, "branch", "feature/login"]);
    assert.deepEqual(complete(script, dir, ["dockpack", "env", "up", "fe"]), ["feature/login"]);
    writeFileSync(join(dir, "shop.dockpack.tar"), "");
    writeFileSync(join(dir, "notes.txt"), "");
    assert.deepEqual(complete(script, dir, ["dockpack", "packages", "import", "s"]), ["shop.dockpack.tar"]);
    for (const shell of ["zsh", "fish"]) {
      const s = runCli(["completion", shell]);
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stdout, /dockpack/);
    }
    assert.equal(runCli(["completion", "tcsh"]).code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
