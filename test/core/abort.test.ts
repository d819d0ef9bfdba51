/** core/abort.ts: the one cancellation mechanism (options.signal, ambient through withSignal). */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import {
  currentSignal,
  isInterrupted,
  onAbort,
  throwIfAborted,
  withoutSignal,
  withSignal,
} from "../../src/core/abort.js";
import { run } from "../../src/core/exec.js";
import { createAtomicWriteStream } from "../../src/core/fs.js";

test("importing the library installs no process signal handler", async () => {
  const before = ["SIGINT", "SIGTERM", "SIGHUP"].map((s) => process.listenerCount(s));
  await import("../../src/index.js");
  const { createAtomicWriteStream: create } = await import("../../src/core/fs.js");
  const dir = await mkdtemp(join(tmpdir(), "dockpack-abort-"));
  const w = create(join(dir, "f"));
  assert.deepEqual(
    ["SIGINT", "SIGTERM", "SIGHUP"].map((s) => process.listenerCount(s)),
    before,
    "registering a cleanup must not add signal listeners",
  );
  await w.abort();
  await rm(dir, { recursive: true, force: true });
});

test("withSignal makes the signal ambient, combines with an outer one, and withoutSignal leaves it", async () => {
  assert.equal(currentSignal(), undefined);
  const outer = new AbortController();
  const inner = new AbortController();
  await withSignal(outer.signal, async () => {
    assert.equal(currentSignal(), outer.signal);
    await withSignal(inner.signal, async () => {
      const s = currentSignal();
      assert.ok(s && s !== inner.signal);
      outer.abort("SIGINT");
      assert.equal(s?.aborted, true, "the outer abort reaches the combined signal");
      assert.throws(() => throwIfAborted(), { code: "INTERRUPTED", message: /by SIGINT/ });
      await withoutSignal(async () => {
        await Promise.resolve();
        assert.equal(currentSignal(), undefined);
      });
    });
  }).catch((e: unknown) => assert.equal((e as { code?: string }).code, "INTERRUPTED"));
});

test("an aborted body rejects with INTERRUPTED whatever it failed with; onAbort fires once", async () => {
  const ac = new AbortController();
  let fired = 0;
  const p = withSignal(ac.signal, async () => {
    onAbort(() => fired++);
    await new Promise((r) => setTimeout(r, 20));
    throw Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
  });
  ac.abort();
  await assert.rejects(p, { code: "INTERRUPTED" });
  assert.equal(fired, 1);
  assert.equal(isInterrupted(new Error("x"), ac.signal), true);
  assert.equal(isInterrupted(new Error("x")), false);
  await assert.rejects(
    withSignal(ac.signal, async () => "never"),
    { code: "INTERRUPTED" },
    "an already aborted signal",
  );
});

test("run() kills its program on abort and throws INTERRUPTED", async () => {
  const ac = new AbortController();
  const t0 = Date.now();
  setTimeout(() => ac.abort("SIGTERM"), 100);
  await assert.rejects(
    withSignal(ac.signal, () => run("sleep", ["10"])),
    { code: "INTERRUPTED" },
  );
  assert.ok(Date.now() - t0 < 5000, "the program was killed");
});

test("an atomic write stream is destroyed on abort: the pipeline fails, no file, no temp file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "dockpack-abort-"));
  try {
    const ac = new AbortController();
    const target = join(dir, "out.bin");
    const p = withSignal(ac.signal, async () => {
      const w = createAtomicWriteStream(target);
      const { Readable } = await import("node:stream");
      const source = new Readable({
        read() {
          setTimeout(() => this.push(Buffer.alloc(65536)), 5);
        },
      });
      try {
        await pipeline(source, w.stream);
        await w.commit();
      } catch (e) {
        await w.abort();
        throw e;
      }
    });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(p, { code: "INTERRUPTED" });
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
