import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { runCli } from "../helpers/cli.js";

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
