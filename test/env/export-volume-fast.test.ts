/**
 * src/env/export-volume.ts, the fast zstd path (engine socket → batched vectored writes into
 * `zstd -T0`, tar hashed in place on a worker, member hashed behind zstd in the package file):
 * the member's `tar_sha256` and size are those of readVolumeTar's tar, its `sha256` is that of
 * the bytes in the package, `zstd -d` of them gives the tar back, and two exports of the same
 * volume give the same member — with a volume whose archive spans many reads and batches (more
 * bytes than the read buffers hold, many small files between large ones).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { PackageTarWriter } from "../../src/core/archive/file-writer.js";
import { createVolume, readVolumeTar } from "../../src/core/docker/volumes.js";
import { silentReporter } from "../../src/core/output.js";
import { ARCHIVE_READ_BYTES } from "../../src/env/export-archive.js";
import {
  exportVolume,
  READ_BUFFERS,
  volumeDownloads,
  WRITE_BATCH_BYTES,
} from "../../src/env/export-volume.js";
import type { Journal } from "../../src/env/journal.js";
import { needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { docker, helpersFor, inVolume, volumeScope } from "../helpers/volumes.js";

const { prefix, created } = volumeScope("xvf");

/** What exportVolume uses of a journal: cancellation hooks (never fired here). */
const journal = { onCancel: () => () => undefined } as unknown as Journal;

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

test("fast zstd export: digests and sizes match the volume's tar, the same bytes twice, no helper left", async (t) => {
  if (!needsEngine(t)) return;
  const busybox = await ensureFixture("busybox");
  const vol = `${prefix}-a`;
  created.push(vol);
  await createVolume(vol, { "io.dockpack.test": "1" });
  const big = Math.ceil((READ_BUFFERS * ARCHIVE_READ_BYTES) / 1024 / 1024) + 2;
  assert.ok(big * 1024 * 1024 > 2 * WRITE_BATCH_BYTES);
  inVolume(
    vol,
    busybox,
    [
      "set -e",
      "cd /data",
      `head -c ${big * 1024 * 1024} /dev/urandom > big.bin`,
      "mkdir small",
      "i=0; while [ $i -lt 400 ]; do echo line $i > small/f$i; i=$((i+1)); done",
      "yes 'a repetitive line of text' | head -c 3000000 > text.log",
      "ln -s text.log link",
    ].join("; "),
  );
  const chunks: Buffer[] = [];
  for await (const c of await readVolumeTar(vol)) chunks.push(c as Buffer);
  const tar = Buffer.concat(chunks);

  const dir = mkdtempSync(join(tmpdir(), "dockpack-xvf-"));
  try {
    const once = async (n: number) => {
      const path = join(dir, `p${n}.tar`);
      const w = await PackageTarWriter.open(path, 1);
      const downloads = volumeDownloads([vol], "zstd");
      assert.ok(downloads, "the test engine is reached through a Unix socket: the fast path applies");
      let progress = 0;
      try {
        const r = await exportVolume(
          w,
          { name: "data", source: vol, size: tar.length },
          "zstd",
          journal,
          {
            ...silentReporter(),
            progress: () => ({
              update: (n: number) => {
                progress = n;
              },
              increment: () => undefined,
              setTotal: () => undefined,
              stop: () => undefined,
            }),
          },
          undefined,
          downloads,
        );
        await w.finish();
        assert.equal(progress, tar.length, "progress reached the volume's size");
        return { r, path };
      } finally {
        await downloads.close();
      }
    };
    const first = await once(1);
    const { volume } = first.r;
    assert.equal(volume.size, tar.length);
    assert.equal(volume.tar_sha256, sha(tar));
    // the member's bytes, as the package holds them (the first member after its 512-byte header)
    const pkg = readFileSync(first.path);
    const member = pkg.subarray(512, 512 + volume.compressed_size);
    assert.equal(volume.sha256, sha(member));
    assert.equal(first.r.member.sha256, volume.sha256);
    const back = execFileSync("zstd", ["-d", "-c", "-q"], { input: member, maxBuffer: 64 * 1024 * 1024 });
    assert.ok(back.equals(tar), "zstd -d of the member is the volume's tar");
    const second = await once(2);
    assert.deepEqual(second.r.volume, volume);
    assert.equal(helpersFor(vol), "");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
