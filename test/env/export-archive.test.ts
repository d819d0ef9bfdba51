/**
 * src/env/export-archive.ts: the export's fast read of a volume (raw HTTP/1.0 on the engine's
 * socket, reads into lent buffers, names rewritten by TarRenamer) yields byte for byte the tar
 * readVolumeTar yields — with pax long names, a ustar prefix split, hardlinks, symlinks and many
 * small files, through a sink that makes the socket wait — leaves no helper container, and fails
 * clearly on a missing volume or a cut download.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { createVolume, readVolumeTar } from "../../src/core/docker/volumes.js";
import {
  ARCHIVE_READ_BYTES,
  type ArchiveSink,
  rawEngineSocket,
  VolumeArchiveDownload,
  VolumeDownloads,
} from "../../src/env/export-archive.js";
import { needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { docker, helpersFor, inVolume, volumeScope } from "../helpers/volumes.js";

const { prefix, created } = volumeScope("xarc");

const LONG_DIR = `d${"x".repeat(120)}`;
const POPULATE = [
  "set -e",
  "cd /data",
  "mkdir -p app/sub",
  "head -c 300000 /dev/urandom > app/big.bin",
  "echo hello > app/a.txt",
  "ln app/a.txt hard",
  "ln -s app/a.txt link",
  // > 100 bytes with a slash to split at (ustar prefix), and one with no split possible (pax)
  `mkdir -p ${LONG_DIR} && echo p > ${LONG_DIR}/file`,
  `echo q > ${"y".repeat(140)}`,
  "i=0; while [ $i -lt 300 ]; do echo $i > app/sub/f$i; i=$((i+1)); done",
].join("; ");

/** A sink that keeps everything (copied) and lends few buffers, so that the socket must wait. */
function collecting(): { sink: ArchiveSink; bytes: () => Buffer; pauses: () => number } {
  const out: Buffer[] = [];
  const free: Buffer[] = [Buffer.alloc(ARCHIVE_READ_BYTES), Buffer.alloc(ARCHIVE_READ_BYTES)];
  let pauses = 0;
  const sink: ArchiveSink = {
    next: () => free.pop() ?? Buffer.alloc(ARCHIVE_READ_BYTES),
    take(parts, buffer) {
      for (const p of parts) out.push(Buffer.from(p));
      if (free.length > 1) {
        free.push(buffer);
        return null;
      }
      pauses++;
      // hand the buffer back later, as a slow compressor would
      return new Promise((resolve) =>
        setTimeout(() => {
          free.push(buffer);
          resolve();
        }, 1),
      );
    },
  };
  return { sink, bytes: () => Buffer.concat(out), pauses: () => pauses };
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

test("the fast read yields readVolumeTar's tar byte for byte, and removes its helper containers", async (t) => {
  if (!needsEngine(t)) return;
  const socket = rawEngineSocket();
  assert.ok(socket, "the test engine is reached through a Unix socket");
  const busybox = await ensureFixture("busybox");
  const vol = `${prefix}-a`;
  const other = `${prefix}-b`;
  created.push(vol, other);
  await createVolume(vol, { "io.dockpack.test": "1" });
  await createVolume(other, { "io.dockpack.test": "1" });
  inVolume(vol, busybox, POPULATE);
  inVolume(other, busybox, "echo b > /data/b");

  const chunks: Buffer[] = [];
  for await (const c of await readVolumeTar(vol)) chunks.push(c as Buffer);
  const expected = Buffer.concat(chunks);

  const downloads = new VolumeDownloads([vol, other], socket);
  const got = collecting();
  let read = 0;
  try {
    const d = await downloads.next();
    await d.run(got.sink, (n) => {
      read += n;
    });
    downloads.done(d);
    const second = collecting();
    const d2 = await downloads.next();
    await d2.run(second.sink, () => undefined);
    downloads.done(d2);
    assert.match(second.bytes().subarray(0, 100).toString("latin1"), /^\.\//);
  } finally {
    await downloads.close();
  }
  assert.equal(got.bytes().length, expected.length);
  assert.equal(sha(got.bytes()), sha(expected));
  assert.ok(read >= expected.length, "progress counts every byte read");
  assert.ok(got.pauses() > 0, "the socket waited for the sink");
  assert.equal(helpersFor(vol), "");
  assert.equal(helpersFor(other), "");
});

test("the fast read: a missing volume is VOLUME_NOT_FOUND; a cut download rejects with its reason and leaves no container", async (t) => {
  if (!needsEngine(t)) return;
  const socket = rawEngineSocket();
  assert.ok(socket);
  await assert.rejects(VolumeArchiveDownload.open(`${prefix}-missing`, socket), { code: "VOLUME_NOT_FOUND" });
  const busybox = await ensureFixture("busybox");
  const vol = `${prefix}-c`;
  created.push(vol);
  await createVolume(vol, { "io.dockpack.test": "1" });
  inVolume(vol, busybox, "head -c 3000000 /dev/zero > /data/z");
  const d = await VolumeArchiveDownload.open(vol, socket);
  const reason = new Error("stop here");
  let first = true;
  const sink: ArchiveSink = {
    next: () => Buffer.alloc(ARCHIVE_READ_BYTES),
    take() {
      if (first) {
        first = false;
        d.cut(reason);
      }
      return null;
    },
  };
  try {
    await assert.rejects(
      d.run(sink, () => undefined),
      (e) => e === reason,
    );
  } finally {
    await d.release();
  }
  assert.equal(helpersFor(vol), "");
});
