import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli } from "../helpers/cli.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const version = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version;

test("--version prints the package version", () => {
  const r = runCli(["--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), version);
});

test("--help lists global options and ends with examples", () => {
  const r = runCli(["--help"]);
  assert.equal(r.code, 0);
  for (const flag of ["--json", "--log-level", "--no-color", "--quiet"])
    assert.match(r.stdout, new RegExp(flag));
  assert.match(r.stdout, /Examples:\n {2}\$ dockpack/);
});

test("an unknown option exits 2, and under --json prints one JSON error on stdout", () => {
  const r = runCli(["--json", "--bogus"]);
  assert.equal(r.code, 2);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.error.code, "USAGE_ERROR");
  assert.match(doc.error.message, /--bogus/);
  assert.match(r.stderr, /unknown option/);
});

test("an unknown command exits 2", () => {
  const r = runCli(["frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /error:/);
});

test("a closed stdout pipe ends the program quietly (dockpack --help | head -1)", () => {
  const r = spawnSync("bash", ["-c", `node --import tsx ${MAIN} --help | head -1; exit \${PIPESTATUS[0]}`], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /EPIPE/);
});
