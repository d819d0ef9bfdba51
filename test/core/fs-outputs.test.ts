/**
 * Issue 12 A2: an output path that is not a regular file is never unlinked or renamed over.
 * A character device or fifo is written in place as a stream, `-` is standard output when the
 * caller allows it, and a directory or socket is refused with `FS_NOT_REGULAR_FILE`.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { atomicWriteFile, createAtomicWriteStream, outputKind } from "../../src/core/fs.js";
import { silentReporter } from "../../src/core/output.js";
import { applyDelta, createDelta } from "../../src/delta/index.js";
import { runCli } from "../helpers/cli.js";
import { versionPair, writeSynth } from "../image/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-fs-outputs-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const DEAD = { DOCKER_HOST: `unix://${join(dir, "no-engine.sock")}` };

async function writeThrough(path: string, data: string, overwrite = true): Promise<void> {
  const w = createAtomicWriteStream(path, { overwrite });
  w.stream.end(Buffer.from(data));
  await w.commit();
}

test("A2: a fifo is written in place, not replaced by a regular file", async () => {
  const fifo = join(dir, "pipe");
  execFileSync("mkfifo", [fifo]);
  const reader = spawn("cat", [fifo]);
  let got = "";
  reader.stdout.on("data", (d: Buffer) => {
    got += d.toString();
  });
  const closed = new Promise((r) => reader.on("close", r));
  await writeThrough(fifo, "hello through a fifo", false);
  await closed;
  assert.equal(got, "hello through a fifo");
  assert.ok(statSync(fifo).isFIFO(), "the fifo is still a fifo");
});

test("A2: /dev/null stays a character device (with and without overwrite)", async () => {
  await writeThrough("/dev/null", "discarded", true);
  await writeThrough("/dev/null", "discarded", false);
  await atomicWriteFile("/dev/null", "discarded");
  assert.ok(statSync("/dev/null").isCharacterDevice());
  assert.equal(outputKind("/dev/null"), "stream");
});

test("A2: a directory and a socket are refused with FS_NOT_REGULAR_FILE", async () => {
  const d = join(dir, "adir");
  mkdirSync(d);
  assert.throws(
    () => createAtomicWriteStream(d, { overwrite: true }),
    (e: any) => e.code === "FS_NOT_REGULAR_FILE" && e.message.includes(d),
  );
  const sock = join(dir, "s.sock");
  const server = createServer();
  await new Promise<void>((r) => server.listen(sock, () => r()));
  try {
    assert.throws(
      () => createAtomicWriteStream(sock, { overwrite: true }),
      (e: any) => e.code === "FS_NOT_REGULAR_FILE" && /socket/.test(e.message),
    );
  } finally {
    server.close();
  }
  assert.ok(statSync(d).isDirectory());
  assert.equal(outputKind("-"), "file", "'-' is a file name unless stdout is allowed");
  assert.equal(outputKind("-", { allowStdout: true }), "stdout");
});

test("A2: delta create/apply into /dev/null, a directory, and standard output (CLI)", async () => {
  const pair = await versionPair("dockpack-test-outputs");
  const v1 = join(dir, "v1.tar");
  const v2 = join(dir, "v2.tar");
  await writeSynth(pair.v1, v1);
  await writeSynth(pair.v2, v2);
  const r = silentReporter();
  const made = await createDelta({ image: v2, output: "/dev/null", bases: [v1], force: true }, r);
  assert.ok(made.packageSize > 1024, "the size written is reported");
  assert.ok(statSync("/dev/null").isCharacterDevice());
  const pkg = join(dir, "p.dpd");
  await createDelta({ image: v2, output: pkg, bases: [v1] }, r);
  await applyDelta({ package: pkg, baseArchives: [v1], output: "/dev/null" }, r);
  assert.ok(statSync("/dev/null").isCharacterDevice());
  await assert.rejects(
    applyDelta({ package: pkg, baseArchives: [v1], output: dir, force: true }, r),
    (e: any) => e.code === "FS_NOT_REGULAR_FILE",
  );

  // -o - : the archive on stdout, the summary on stderr; with --json a usage error.
  const out = join(dir, "stdout.tar");
  execFileSync(
    "bash",
    [
      "-c",
      `"$0" --import "$1" "$2" delta apply "$3" --base-archive "$4" -o - > "$5"`,
      process.execPath,
      import.meta.resolve("tsx"),
      new URL("../../src/cli/main.ts", import.meta.url).pathname,
      pkg,
      v1,
      out,
    ],
    { env: { ...process.env, ...DEAD }, stdio: ["ignore", "ignore", "pipe"] },
  );
  const tarList = execFileSync("tar", ["-tf", out], { encoding: "utf8" });
  assert.match(tarList, /manifest\.json/);
  assert.ok(readFileSync(out).length > 10_000);
  const res = runCli(["--json", "delta", "apply", pkg, "--base-archive", v1, "-o", "-"], { env: DEAD });
  assert.equal(res.code, 2, res.stderr);
  assert.equal(JSON.parse(res.stdout).error.code, "USAGE_CONFLICT");
});
