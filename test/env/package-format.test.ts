/**
 * Package format without Docker: the writer's tar is readable by GNU tar; list reads heads only
 * and survives damaged files; validate reports each kind of damage with its own code.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFile, mkdtemp, open, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { listPackages } from "../../src/env/list.js";
import { readPackageHead, verifyPackage } from "../../src/env/package-reader.js";
import { runCli } from "../helpers/cli.js";
import { writeSyntheticPackage } from "./synthetic.js";

let dir: string;
let good: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-pkgfmt-"));
  good = join(dir, "good.dockpack.tar");
  await writeSyntheticPackage(good);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function variant(name: string, mutate: (path: string) => Promise<void>): Promise<string> {
  const p = join(dir, `${name}.dockpack.tar`);
  await copyFile(good, p);
  await mutate(p);
  return p;
}

async function findOffset(path: string, needle: string, header = false): Promise<number> {
  const buf = await readFile(path);
  let at = buf.indexOf(needle);
  while (header && at >= 0 && at % 512 !== 0) at = buf.indexOf(needle, at + 1);
  assert.ok(at >= 0, `${needle} not found`);
  return at;
}

test("a written package is a valid tar with metadata.json first and checksums.sha256 last", async () => {
  const names = execFileSync("tar", ["-tf", good], { encoding: "utf8" }).trim().split("\n");
  assert.equal(names[0], "metadata.json");
  assert.equal(names.at(-1), "checksums.sha256");
  assert.ok(names.includes("volumes/db.tar.gz"));
  const meta = await readPackageHead(good);
  assert.equal(meta.branch, "feature/x");
  const res = await verifyPackage(good);
  assert.deepEqual(res.problems, []);
  assert.equal(res.valid, true);
});

test("long member names get pax headers and round-trip", async () => {
  const { PackageTarWriter } = await import("../../src/core/archive/file-writer.js");
  const p = join(dir, "long.tar");
  const w = await PackageTarWriter.open(p);
  const long = `code/${"d".repeat(80)}/${"f".repeat(80)}.txt`;
  await w.addBuffer(long, Buffer.from("x"));
  await w.finish();
  assert.equal(execFileSync("tar", ["-tf", p], { encoding: "utf8" }).trim(), long);
});

test("validate: a flipped byte inside a volume member is a checksum mismatch naming the member", async () => {
  const p = await variant("flipped", async (path) => {
    const at = (await findOffset(path, "volumes/db.tar.gz", true)) + 512 + 40;
    const fh = await open(path, "r+");
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, at);
    await fh.close();
  });
  const res = await verifyPackage(p);
  assert.equal(res.valid, false);
  assert.ok(
    res.problems.some((x) => x.code === "PACKAGE_CHECKSUM_MISMATCH" && x.member === "volumes/db.tar.gz"),
    JSON.stringify(res.problems),
  );
});

test("validate: a truncated file is reported as truncated", async () => {
  const p = await variant("truncated", async (path) => {
    const at = await findOffset(path, "volumes/db.tar.gz", true);
    await truncate(path, at + 700);
  });
  const res = await verifyPackage(p);
  assert.equal(res.valid, false);
  assert.ok(
    res.problems.some((x) => x.code === "PACKAGE_TRUNCATED"),
    JSON.stringify(res.problems),
  );
});

test("validate: edited metadata.json fails its checksum", async () => {
  const p = await variant("edited", async (path) => {
    const at = await findOffset(path, '"branch": "feature/x"');
    const fh = await open(path, "r+");
    await fh.write(Buffer.from('"branch": "feature/y"'), 0, 21, at);
    await fh.close();
  });
  const res = await verifyPackage(p);
  assert.ok(
    res.problems.some((x) => x.code === "PACKAGE_CHECKSUM_MISMATCH" && x.member === "metadata.json"),
    JSON.stringify(res.problems),
  );
});

test("validate and list: an unknown major version is refused", async () => {
  const p = join(dir, "v9.dockpack.tar");
  await writeSyntheticPackage(p, { formatVersion: "9.0" });
  const res = await verifyPackage(p);
  assert.ok(
    res.problems.some((x) => x.code === "PACKAGE_VERSION_UNSUPPORTED"),
    JSON.stringify(res.problems),
  );
  await assert.rejects(readPackageHead(p), { code: "PACKAGE_VERSION_UNSUPPORTED" });
  const minor = join(dir, "v1-7.tar");
  await writeSyntheticPackage(minor, { formatVersion: "1.7" });
  assert.equal((await verifyPackage(minor)).valid, true);
});

test("validate: a member whose path escapes (../) is unsafe", async () => {
  const p = join(dir, "escape.dockpack.tar");
  await writeSyntheticPackage(p, { extraMember: { name: "code/../../evil.sh", content: "rm -rf /" } });
  const res = await verifyPackage(p);
  assert.ok(
    res.problems.some((x) => x.code === "PACKAGE_UNSAFE_PATH"),
    JSON.stringify(res.problems),
  );
});

test("validate: a file that is not a package at all", async () => {
  const p = join(dir, "junk.dockpack.tar");
  await writeFile(p, "this is not a tar file\n".repeat(100));
  const res = await verifyPackage(p);
  assert.equal(res.valid, false);
  assert.ok(
    res.problems.some((x) => x.code === "PACKAGE_NOT_A_PACKAGE"),
    JSON.stringify(res.problems),
  );
  await assert.rejects(readPackageHead(p), { code: "PACKAGE_NOT_A_PACKAGE" });
});

test("validate: a missing checksums member is reported; several problems are all reported", async () => {
  const p = join(dir, "nosums.dockpack.tar");
  await writeSyntheticPackage(p, { noChecksums: true, formatVersion: "1.0" });
  const res = await verifyPackage(p);
  assert.ok(res.problems.some((x) => x.code === "PACKAGE_MEMBER_MISSING" && x.member === "checksums.sha256"));
  const multi = join(dir, "multi.dockpack.tar");
  await writeSyntheticPackage(multi, { extraMember: { name: "/etc/passwd", content: "x" } });
  const fh = await open(multi, "r+");
  const at = (await findOffset(multi, "code/README.md", true)) + 512;
  await fh.write(Buffer.from("#"), 0, 1, at + 2);
  await fh.close();
  const r2 = await verifyPackage(multi);
  const codes = r2.problems.map((x) => x.code);
  assert.ok(
    codes.includes("PACKAGE_UNSAFE_PATH") && codes.includes("PACKAGE_CHECKSUM_MISMATCH"),
    JSON.stringify(r2.problems),
  );
});

test("packages list reads heads only and gives a damaged file an error row", async () => {
  const listDir = join(dir, "list");
  await import("node:fs/promises").then((fs) => fs.mkdir(listDir));
  await copyFile(good, join(listDir, "a.dockpack.tar"));
  await writeFile(join(listDir, "b.dockpack.tar"), "garbage");
  await writeFile(join(listDir, "notes.txt"), "ignored");
  const res = await listPackages({ packageDir: listDir });
  assert.equal(res.packages.length, 2);
  const a = res.packages.find((p) => p.file === "a.dockpack.tar");
  const b = res.packages.find((p) => p.file === "b.dockpack.tar");
  assert.equal(a?.branch, "feature/x");
  assert.deepEqual(a?.volumes, ["db"]);
  assert.equal(b?.error?.code, "PACKAGE_NOT_A_PACKAGE");
  const cli = runCli(["--json", "packages", "list", "--package-dir", listDir]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(JSON.parse(cli.stdout).packages.length, 2);
});

test("packages validate CLI: exit 0 for a good package, 1 with every problem for a bad one", async () => {
  const ok = runCli(["packages", "validate", good]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /valid/);
  const bad = await variant("cli-bad", async (path) => truncate(path, 3000));
  const r = runCli(["--json", "packages", "validate", bad]);
  assert.equal(r.code, 1);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.valid, false);
  assert.ok(doc.problems.length >= 1);
  const missing = runCli(["packages", "validate", join(dir, "nope.dockpack.tar")]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /does not exist/);
});
