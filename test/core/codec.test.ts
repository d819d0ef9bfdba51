import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import {
  autoDecompress,
  CODEC_EXTENSION,
  CODECS,
  type Codec,
  checkLevel,
  compressStream,
  decompressStream,
  detectCodec,
  detectFileCodec,
} from "../../src/core/codec.js";
import { DigestStream, digestStream } from "../../src/core/digest.js";

const MiB = 1024 * 1024;

/** Fast levels so that 100 MB round-trips stay cheap. */
const FAST: Record<Codec, number | undefined> = { zstd: -5, gzip: 1, xz: 1, bzip2: 1, none: undefined };

/**
 * 100 MB (decimal) of mixed data, generated chunk by chunk: 7 of 8 MiB-chunks are compressible
 * text with variation, 1 of 8 is random. `produced` counts bytes handed out.
 */
function mixedSource(total: number, counter: { produced: number }): Readable {
  let offset = 0;
  let n = 0;
  const text = Buffer.from(
    Array.from(
      { length: 20000 },
      (_, i) => `line ${i} of a fairly compressible log, value=${(i * 7919) % 1000}\n`,
    ).join(""),
  );
  return new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (offset >= total) {
        this.push(null);
        return;
      }
      const size = Math.min(MiB, total - offset);
      const chunk =
        n % 8 === 7
          ? randomBytes(size)
          : Buffer.from(text.subarray((n * 997) % 1000, ((n * 997) % 1000) + size));
      const out = chunk.length < size ? Buffer.concat([chunk, Buffer.alloc(size - chunk.length, n)]) : chunk;
      n++;
      offset += size;
      counter.produced += size;
      this.push(out);
    },
  });
}

async function roundTrip(codec: Codec, input: Buffer): Promise<{ output: Buffer; compressed: Buffer }> {
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from([input]),
    compressStream(codec, { level: FAST[codec] }),
    new Writable({
      write(c, _e, cb) {
        parts.push(c);
        cb();
      },
    }),
  );
  const compressed = Buffer.concat(parts);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([compressed]),
    decompressStream(codec),
    new Writable({
      write(c, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return { output: Buffer.concat(out), compressed };
}

for (const codec of CODECS) {
  test(`${codec}: empty input and 1 byte round-trip; detectCodec recognises its output`, async () => {
    for (const input of [Buffer.alloc(0), Buffer.from([0x42])]) {
      const { output, compressed } = await roundTrip(codec, input);
      assert.deepEqual(output, input);
      if (codec !== "none") assert.equal(detectCodec(compressed), codec);
    }
  });

  test(`${codec}: 100 MB of mixed data round-trips streaming with bounded buffering`, async (t) => {
    const total = 100_000_000;
    const counter = { produced: 0 };
    const before = new DigestStream();
    let consumed = 0;
    let maxLag = 0;
    let head: Buffer | undefined;
    const sniff = new Transform({
      transform(c: Buffer, _e, cb) {
        if (!head) head = c.subarray(0, 8);
        cb(null, c);
      },
    });
    const after = await (async () => {
      const ds = new DigestStream();
      await pipeline(
        mixedSource(total, counter),
        before,
        compressStream(codec, { level: FAST[codec] }),
        sniff,
        decompressStream(codec),
        ds,
        new Writable({
          highWaterMark: 64 * 1024,
          write(c, _e, cb) {
            consumed += c.length;
            maxLag = Math.max(maxLag, counter.produced - consumed);
            cb();
          },
        }),
      );
      return ds;
    })();
    assert.equal(before.size, total);
    assert.equal(after.size, total);
    assert.equal(after.digest, before.digest);
    if (codec !== "none") assert.equal(detectCodec(head ?? Buffer.alloc(0)), codec);
    // Backpressure: the source never runs far ahead of the consumer (no whole-stream buffering).
    // Multi-threaded xz/zstd hold a few MiB per worker thread on each side.
    const bound = 32 * MiB + 6 * MiB * availableParallelism();
    t.diagnostic(`max lag ${(maxLag / MiB).toFixed(1)} MiB (bound ${(bound / MiB).toFixed(0)} MiB)`);
    assert.ok(maxLag < bound, `${codec}: source ran ${maxLag} bytes ahead of the consumer`);
  });
}

test("detectCodec: magic bytes and none for anything else", () => {
  assert.equal(detectCodec(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), "zstd");
  assert.equal(detectCodec(Buffer.from([0x1f, 0x8b, 8])), "gzip");
  assert.equal(detectCodec(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), "xz");
  assert.equal(detectCodec(Buffer.from("BZh91AY")), "bzip2");
  assert.equal(detectCodec(Buffer.from("BZh0")), "none");
  assert.equal(detectCodec(Buffer.from("./\0\0")), "none");
  assert.equal(detectCodec(Buffer.alloc(0)), "none");
  assert.deepEqual(Object.values(CODEC_EXTENSION), [".zst", ".gz", ".xz", ".bz2", ""]);
});

test("checkLevel: ranges per codec, usage error CODEC_LEVEL_INVALID", () => {
  for (const [codec, level] of [
    ["zstd", 1],
    ["zstd", 19],
    ["zstd", 22],
    ["zstd", -1],
    ["zstd", -100],
    ["gzip", 9],
    ["xz", 1],
    ["bzip2", 9],
  ] as const)
    checkLevel(codec, level);
  for (const [codec, level] of [
    ["zstd", 0],
    ["zstd", 23],
    ["zstd", -101],
    ["gzip", 0],
    ["gzip", 10],
    ["xz", -1],
    ["bzip2", 1.5],
  ] as const) {
    assert.throws(
      () => checkLevel(codec, level),
      (e: Error & { code?: string; usage?: boolean }) =>
        e.code === "CODEC_LEVEL_INVALID" && e.usage === true && e.message.includes(codec),
    );
  }
  assert.throws(() => compressStream("zstd", { level: 30 }), { code: "CODEC_LEVEL_INVALID" });
});

test("zstd ultra level and long-distance mode round-trip", async () => {
  const input = Buffer.concat([randomBytes(64 * 1024), Buffer.alloc(256 * 1024, 7), randomBytes(1000)]);
  const parts: Buffer[] = [];
  await pipeline(Readable.from([input]), compressStream("zstd", { level: 20, long: true }), async (src) => {
    for await (const c of src) parts.push(c as Buffer);
  });
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([Buffer.concat(parts)]),
    decompressStream("zstd", { long: true }),
    async (src) => {
      for await (const c of src) out.push(c as Buffer);
    },
  );
  assert.deepEqual(Buffer.concat(out), input);
});

for (const codec of ["zstd", "gzip", "xz", "bzip2"] as const) {
  test(`${codec}: corrupt input fails with CODEC_DECOMPRESS_FAILED, does not hang`, async () => {
    // Valid magic followed by garbage.
    const { compressed } = await roundTrip(codec, Buffer.from("hello hello hello"));
    const bad = Buffer.concat([compressed.subarray(0, 6), randomBytes(4096)]);
    await assert.rejects(
      pipeline(Readable.from([bad]), decompressStream(codec), async (src) => {
        for await (const _ of src) {
          // discard
        }
      }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "CODEC_DECOMPRESS_FAILED");
        assert.match(e.message, new RegExp(`^${codec} decompression failed: .+`));
        return true;
      },
    );
  });
}

test("a labelled decompression names the data in its error (zstd program, gzip zlib)", async () => {
  for (const codec of ["zstd", "gzip"] as const) {
    await assert.rejects(
      pipeline(
        Readable.from([Buffer.from("not compressed at all")]),
        decompressStream(codec, { label: "x.dpd: member layers/1.zst" }),
        async (src) => {
          for await (const _ of src) {
            // discard
          }
        },
      ),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "CODEC_DECOMPRESS_FAILED");
        assert.match(
          e.message,
          new RegExp(`^x\\.dpd: member layers/1\\.zst: ${codec} decompression failed: .+`),
        );
        return true;
      },
    );
  }
});

test("autoDecompress detects each codec and passes plain data through", async () => {
  const input = Buffer.from("some tar-like content ".repeat(1000));
  for (const codec of CODECS) {
    const { compressed } = await roundTrip(codec, input);
    // Deliver the header split over tiny chunks to exercise peeking.
    const chunks = [compressed.subarray(0, 1), compressed.subarray(1, 3), compressed.subarray(3)];
    const plain = await autoDecompress(Readable.from(chunks));
    const out = await digestStream(plain);
    assert.equal(out.size, input.length, codec);
  }
  const empty = await autoDecompress(Readable.from([]));
  assert.equal((await digestStream(empty)).size, 0);
});

test("detectFileCodec reads the magic of a file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "dockpack-codec-"));
  try {
    const { compressed } = await roundTrip("xz", Buffer.from("x"));
    await writeFile(join(dir, "a.xz"), compressed);
    await writeFile(join(dir, "b"), "plain");
    await writeFile(join(dir, "c"), "");
    assert.equal(await detectFileCodec(join(dir, "a.xz")), "xz");
    assert.equal(await detectFileCodec(join(dir, "b")), "none");
    assert.equal(await detectFileCodec(join(dir, "c")), "none");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a missing program gives PROGRAM_MISSING naming the Debian package", async () => {
  const { spawnSync } = await import("node:child_process");
  const codecModule = new URL("../../src/core/codec.ts", import.meta.url).href;
  const code = `import(${JSON.stringify(codecModule)}).then(m => { try { m.compressStream("xz"); } catch (e) { console.log(e.code + " " + e.hint); } })`;
  const res = spawnSync(process.execPath, ["--import", "tsx", "-e", code], {
    env: { ...process.env, PATH: "/nonexistent" },
    encoding: "utf8",
  });
  assert.match(res.stdout, /PROGRAM_MISSING .*apt-get install xz-utils/);
});

test("destroying a codec stream mid-way stops its program and closes", async () => {
  for (const codec of ["zstd", "xz", "bzip2"] as const) {
    const s = compressStream(codec, { level: 1 });
    s.write(randomBytes(256 * 1024));
    s.resume();
    const closed = new Promise((resolve) => s.once("close", resolve));
    s.destroy();
    await closed;
    assert.ok(s.destroyed);
  }
});

test("an abort of the ambient signal stops a compressor mid-stream with INTERRUPTED (xz -9 is not waited out)", {
  timeout: 120_000,
}, async () => {
  const { withSignal } = await import("../../src/core/abort.js");
  const controller = new AbortController();
  let fed = 0;
  // an endless random source: only the abort can end this pipeline
  const source = new Readable({
    read() {
      fed += MiB;
      if (fed === 4 * MiB) setTimeout(() => controller.abort("SIGTERM"), 10);
      this.push(randomBytes(MiB));
    },
  });
  const started = Date.now();
  await assert.rejects(
    withSignal(controller.signal, () =>
      pipeline(
        source,
        compressStream("xz", { level: 9 }),
        new Writable({
          write(_c, _e, cb) {
            cb();
          },
        }),
      ),
    ),
    (e: Error & { code?: string }) => e.code === "INTERRUPTED",
  );
  assert.ok(Date.now() - started < 20_000, "stopped soon after the abort");
});
