import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import tar from "tar-stream";
import {
  createVolume,
  readVolumeTar,
  removeVolume,
  volumeExists,
  volumeSize,
  writeVolumeTar,
} from "../../../src/core/docker/volumes.js";
import { needsEngine } from "../../helpers/engine.js";
import { ensureFixture } from "../../helpers/fixtures.js";
import { docker, helpersFor, inVolume, volumeScope } from "../../helpers/volumes.js";

const { prefix, created } = volumeScope("vol");

interface Entry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname: string | null;
  size: number;
}

async function entries(stream: Readable): Promise<Entry[]> {
  const out: Entry[] = [];
  const extract = tar.extract();
  extract.on("entry", (h, body, next) => {
    out.push({
      name: h.name,
      type: h.type ?? "file",
      mode: (h.mode ?? 0) & 0o7777,
      uid: h.uid ?? -1,
      gid: h.gid ?? -1,
      linkname: h.linkname ?? null,
      size: h.size ?? 0,
    });
    body.on("end", next);
    body.resume();
  });
  await pipeline(stream, extract);
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

const POPULATE = [
  "set -e",
  "cd /data",
  "chown 999:998 . && chmod 0750 .",
  "mkdir -p app/sub empty",
  "chmod 0700 empty && chown 33:33 empty",
  "echo hello > app/a.txt && chown 1000:1000 app/a.txt && chmod 0640 app/a.txt",
  "head -c 70000 /dev/urandom > app/big.bin && chmod 0600 app/big.bin",
  "echo tool > suid && chmod 4755 suid",
  "echo g > sgid && chown 0:50 sgid && chmod 2711 sgid",
  "echo linked > app/sub/orig && chown 7:7 app/sub/orig && chmod 4750 app/sub/orig",
  "ln app/sub/orig hard",
  "ln -s app/a.txt link",
  "mkdir sticky && chmod 1777 sticky",
].join("; ");

test("a volume round-trips through readVolumeTar/writeVolumeTar with owners, modes, links and empty dirs", async (t) => {
  if (!needsEngine(t)) return;
  const busybox = await ensureFixture("busybox");
  const src = `${prefix}-src`;
  const dst = `${prefix}-dst`;
  created.push(src, dst);
  await createVolume(src, { "io.dockpack.test": "1" });
  inVolume(src, busybox, POPULATE);

  const read = await entries(await readVolumeTar(src));
  const byName = new Map(read.map((e) => [e.name, e]));
  // Names are relative to the volume root; the root itself is "./".
  assert.deepEqual(
    read.map((e) => e.name),
    [
      "./",
      "app/",
      "app/a.txt",
      "app/big.bin",
      "app/sub/",
      "app/sub/orig",
      "empty/",
      "hard",
      "link",
      "sgid",
      "sticky/",
      "suid",
    ],
  );
  assert.deepEqual(
    { mode: byName.get("./")?.mode, uid: byName.get("./")?.uid, gid: byName.get("./")?.gid },
    { mode: 0o750, uid: 999, gid: 998 },
  );
  assert.equal(byName.get("app/a.txt")?.uid, 1000);
  assert.equal(byName.get("app/a.txt")?.mode, 0o640);
  assert.equal(byName.get("app/big.bin")?.size, 70000);
  assert.equal(byName.get("suid")?.mode, 0o4755);
  assert.equal(byName.get("sgid")?.mode, 0o2711);
  assert.equal(byName.get("app/sub/orig")?.mode, 0o4750);
  assert.equal(byName.get("empty/")?.mode, 0o700);
  assert.equal(byName.get("sticky/")?.mode, 0o1777);
  assert.equal(byName.get("link")?.type, "symlink");
  assert.equal(byName.get("link")?.linkname, "app/a.txt");
  // GNU tar order puts the first path of an inode first; the other is a hardlink entry to it.
  const hard = [byName.get("hard"), byName.get("app/sub/orig")].find((e) => e?.type === "link");
  assert.ok(hard, "one of the two hardlinked paths is a link entry");
  assert.ok(["hard", "app/sub/orig"].includes(hard.linkname ?? ""));
  assert.equal(helpersFor(src), "", "the helper container is removed after reading");

  await createVolume(dst);
  await writeVolumeTar(dst, await readVolumeTar(src));
  assert.equal(helpersFor(dst), "", "the helper container is removed after writing");
  assert.equal(helpersFor(src), "");

  const copy = await entries(await readVolumeTar(dst));
  assert.deepEqual(copy, read, "the copy has the same entries, owners, modes and links");
  // Check on the engine side too: setuid kept (also on the hardlinked inode), one inode for both links.
  const stat = docker(
    "run",
    "--rm",
    "--network",
    "none",
    "-v",
    `${dst}:/data:ro`,
    busybox,
    "sh",
    "-c",
    "cd /data && stat -c '%n %a %u:%g %h' . suid sgid hard app/sub/orig empty && cat app/a.txt && readlink link && [ $(stat -c %i hard) = $(stat -c %i app/sub/orig) ] && echo same-inode",
  );
  const lines = stat.split("\n");
  assert.match(lines[0] ?? "", /^\. 750 999:998 \d+$/, "the root keeps its owner and mode");
  assert.deepEqual(lines.slice(1), [
    "suid 4755 0:0 1",
    "sgid 2711 0:50 1",
    "hard 4750 7:7 2",
    "app/sub/orig 4750 7:7 2",
    "empty 700 33:33 2",
    "hello",
    "app/a.txt",
    "same-inode",
  ]);

  const size = await volumeSize(src);
  assert.ok(size >= 70000 && size < 1_000_000, `volumeSize ${size} counts the file bytes`);
});

test("missing volumes and bad input fail clearly, without creating anything", async (t) => {
  if (!needsEngine(t)) return;
  const missing = `${prefix}-missing`;
  created.push(missing);
  for (const fn of [
    () => readVolumeTar(missing),
    () => volumeSize(missing),
    () => removeVolume(missing),
    () => writeVolumeTar(missing, Readable.from([Buffer.alloc(1024)])),
  ]) {
    await assert.rejects(fn, (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, "VOLUME_NOT_FOUND");
      assert.match(err.message, new RegExp(missing));
      assert.ok(err.hint);
      return true;
    });
  }
  assert.equal(await volumeExists(missing), false, "reading a missing volume does not create it");

  const vol = `${prefix}-bad`;
  created.push(vol);
  await createVolume(vol);
  await assert.rejects(() => createVolume(vol), { code: "VOLUME_EXISTS" });
  await assert.rejects(
    () => writeVolumeTar(vol, Readable.from([Buffer.from("this is not a tar archive at all ".repeat(40))])),
    (err: Error & { code?: string }) => {
      assert.match(err.code ?? "", /^VOLUME_(TAR_INVALID|FAILED)$/);
      assert.match(err.message, /volume|tar/);
      return true;
    },
  );
  assert.equal(helpersFor(vol), "", "the helper container is removed after a failed write");

  // An input that fails midway (as a verifying stream does on a digest mismatch) surfaces its own error.
  const header = Buffer.alloc(512);
  const pack = tar.pack();
  pack.entry({ name: "big.bin", size: 1_000_000, mode: 0o644 });
  const start = await new Promise<Buffer>((resolve) => pack.once("data", (c) => resolve(c as Buffer)));
  header.set(start.subarray(0, 512));
  let sent = 0;
  const failing = new Readable({
    read() {
      if (sent === 0) this.push(header);
      else if (sent < 20) this.push(Buffer.alloc(16384, 7));
      else
        this.destroy(
          Object.assign(new Error("expected sha256:aa, got sha256:bb"), {
            name: "DockpackError",
            code: "DIGEST_MISMATCH",
          }),
        );
      sent++;
    },
  });
  const t0 = Date.now();
  await assert.rejects(writeVolumeTar(vol, failing), { code: "DIGEST_MISMATCH" });
  assert.ok(Date.now() - t0 < 10_000, "a failed input does not hang the write");
  assert.equal(helpersFor(vol), "", "the helper container is removed after an input failure");
  await removeVolume(vol);
  assert.equal(await volumeExists(vol), false);
});

async function interruptChild(vol: string, script: string): Promise<void> {
  const mod = new URL("../../../src/core/docker/volumes.ts", import.meta.url).href;
  const abortMod = new URL("../../../src/core/abort.ts", import.meta.url).href;
  const fsMod = new URL("../../../src/core/fs.ts", import.meta.url).href;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      // the child is the host: like the CLI, it turns SIGTERM into an abort, then runs what is left
      `const v = await import(${JSON.stringify(mod)}); const { withSignal } = await import(${JSON.stringify(abortMod)}); const { runCleanups } = await import(${JSON.stringify(fsMod)}); const vol = ${JSON.stringify(vol)};\nconst ac = new AbortController(); process.on("SIGTERM", () => { ac.abort("SIGTERM"); setTimeout(() => runCleanups().then(() => process.exit(143)), 2000); });\nawait withSignal(ac.signal, async () => {\n${script}\n});\nsetInterval(() => {}, 1000);`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("open") && resolve());
    child.on("exit", (code) => reject(new Error(`child exited early with ${code}`)));
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.notEqual(helpersFor(vol), "", "the helper container exists while the stream is open");
  child.kill("SIGTERM");
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  assert.equal(code, 143);
  assert.equal(helpersFor(vol), "", "the helper container was removed on SIGTERM");
}

test("an interrupted read or write (SIGTERM) leaves no helper container behind", async (t) => {
  if (!needsEngine(t)) return;
  const busybox = await ensureFixture("busybox");
  const vol = `${prefix}-sig`;
  created.push(vol);
  await createVolume(vol);
  inVolume(vol, busybox, "head -c 5000000 /dev/urandom > /data/f");
  // Read: the stream is opened and never consumed (backpressure keeps the download open).
  await interruptChild(vol, `const s = await v.readVolumeTar(vol); s.pause(); console.log("open");`);
  // Write: the input sends a header and part of a file, then stalls.
  const pack = tar.pack();
  pack.entry({ name: "stall.bin", size: 1_000_000, mode: 0o644 });
  const header = await new Promise<Buffer>((resolve) => pack.once("data", (c) => resolve(c as Buffer)));
  await interruptChild(
    vol,
    `const { Readable } = await import("node:stream");
     let sent = false;
     const input = new Readable({ read() { if (!sent) { sent = true; this.push(Buffer.concat([Buffer.from(${JSON.stringify(header.subarray(0, 512).toString("base64"))}, "base64"), Buffer.alloc(65536, 1)])); console.log("open"); } } });
     v.writeVolumeTar(vol, input).catch(() => {});`,
  );
});
