import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  atomicWriteFile,
  createAtomicWriteStream,
  ensureFreeSpace,
  freeSpace,
  listTempFiles,
  makeTempDir,
  removeTempDir,
  withLock,
} from "../../src/core/fs.js";

const CHILD = fileURLToPath(new URL("./fs-child.ts", import.meta.url));

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "dockpack-fs-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Starts the child helper and resolves with it and the rest of its "ready …" line. */
function startChild(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{
  child: ChildProcess;
  ready: string;
  exited: Promise<{ code: number | null; signal: string | null }>;
}> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      out += d;
      const m = /^ready ?(.*)$/m.exec(out);
      if (m) resolve({ child, ready: m[1], exited });
    });
    exited.then(({ code }) => reject(new Error(`child exited ${code} before ready: ${err}`)));
  });
}

for (const tmpfile of [true, false]) {
  const how = tmpfile ? "O_TMPFILE" : "named temp file";
  const env = tmpfile ? {} : { DOCKPACK_NO_TMPFILE: "1" };

  test(`atomicWriteFile (${how}): creates, replaces keeping the mode, leaves no temp file`, async () => {
    const saved = process.env.DOCKPACK_NO_TMPFILE;
    if (!tmpfile) process.env.DOCKPACK_NO_TMPFILE = "1";
    try {
      await withTmp(async (dir) => {
        const f = join(dir, "settings.json");
        await atomicWriteFile(f, "one");
        assert.equal(await readFile(f, "utf8"), "one");
        await chmod(f, 0o600);
        await atomicWriteFile(f, Buffer.from("two"));
        assert.equal(await readFile(f, "utf8"), "two");
        assert.equal((await stat(f)).mode & 0o777, 0o600);
        await atomicWriteFile(f, "three", { mode: 0o640 });
        assert.equal((await stat(f)).mode & 0o777, 0o640);
        assert.deepEqual(await readdir(dir), ["settings.json"]);
        await assert.rejects(atomicWriteFile(join(dir, "missing", "x"), "y"), { code: "FS_ENOENT" });
      });
    } finally {
      if (saved === undefined) delete process.env.DOCKPACK_NO_TMPFILE;
      else process.env.DOCKPACK_NO_TMPFILE = saved;
    }
  });

  test(`createAtomicWriteStream (${how}): visible only at commit, abort leaves nothing, FS_EXISTS`, async () => {
    const saved = process.env.DOCKPACK_NO_TMPFILE;
    if (!tmpfile) process.env.DOCKPACK_NO_TMPFILE = "1";
    try {
      await withTmp(async (dir) => {
        const f = join(dir, "out.tar");
        const w = createAtomicWriteStream(f);
        await pipeline(Readable.from([Buffer.alloc(300_000, 1), Buffer.alloc(5, 2)]), w.stream);
        assert.equal(existsSync(f), false);
        await w.commit();
        assert.equal((await stat(f)).size, 300_005);
        assert.throws(() => createAtomicWriteStream(f), { code: "FS_EXISTS" });
        const a = createAtomicWriteStream(f, { overwrite: true });
        a.stream.write("partial");
        await a.abort();
        assert.equal((await stat(f)).size, 300_005);
        assert.deepEqual(await readdir(dir), ["out.tar"]);
        // The target appears meanwhile: no-overwrite commit fails, the other file stays.
        const g = join(dir, "late");
        const late = createAtomicWriteStream(g);
        late.stream.end("mine");
        await writeFile(g, "theirs");
        await assert.rejects(late.commit(), { code: "FS_EXISTS" });
        assert.equal(await readFile(g, "utf8"), "theirs");
        assert.deepEqual((await readdir(dir)).sort(), ["late", "out.tar"]);
      });
    } finally {
      if (saved === undefined) delete process.env.DOCKPACK_NO_TMPFILE;
      else process.env.DOCKPACK_NO_TMPFILE = saved;
    }
  });

  test(`an atomic write killed mid-write (SIGKILL, ${how}) leaves the old file and no temp file`, async () => {
    await withTmp(async (dir) => {
      const f = join(dir, "target.bin");
      await writeFile(f, "old content");
      const { child, exited } = await startChild(["slow-write", f], env);
      child.kill("SIGKILL");
      assert.equal((await exited).signal, "SIGKILL");
      assert.equal(await readFile(f, "utf8"), "old content");
      if (tmpfile) {
        assert.deepEqual(await readdir(dir), ["target.bin"]);
      } else {
        // A named temp file cannot be removed by a SIGKILLed process; the next write sweeps it.
        assert.equal(listTempFiles(f).length, 1);
        await atomicWriteFile(f, "new content");
        assert.deepEqual(await readdir(dir), ["target.bin"]);
        assert.equal(await readFile(f, "utf8"), "new content");
      }
    });
  });
}

test("a temp dir is removed on normal exit; no signal handler is installed; a host's runCleanups on SIGINT/SIGTERM runs them (awaited)", async () => {
  await withTmp(async (dir) => {
    // The three children run side by side (each start-up through tsx costs a second or two).
    const normalCase = (async () => {
      const normal = await startChild(["normal-exit", "", dir]);
      assert.equal((await normal.exited).code, 0);
      assert.equal(existsSync(normal.ready), false, "temp dir left after a normal exit");
    })();
    const signalCase = async (sig: "SIGINT" | "SIGTERM", code: number) => {
      const marker = join(dir, `marker-${sig}`);
      const { child, ready, exited } = await startChild(["cleanup", marker, dir]);
      assert.ok(existsSync(join(ready, "data")));
      child.kill(sig);
      assert.equal((await exited).code, code);
      assert.equal(await readFile(marker, "utf8"), "cleaned");
      assert.equal(existsSync(ready), false, `temp dir left after ${sig}`);
    };
    await Promise.all([normalCase, signalCase("SIGINT", 130), signalCase("SIGTERM", 143)]);
    assert.deepEqual((await readdir(dir)).sort(), ["marker-SIGINT", "marker-SIGTERM"]);
  });
});

test("makeTempDir and removeTempDir", async () => {
  const d = await makeTempDir("dockpack-fs-test-");
  await writeFile(join(d, "x"), "y");
  await removeTempDir(d);
  assert.equal(existsSync(d), false);
  await removeTempDir(d);
});

test("lock contention between two processes: LOCKED naming the holder pid, or wait, no interleaving", async () => {
  await withTmp(async (dir) => {
    const lock = join(dir, "env.lock");
    const { ready, exited } = await startChild(["hold-lock", lock, "1500"]);
    const pid = Number(ready);
    await assert.rejects(
      withLock(lock, async () => "never"),
      (e: Error & { code?: string; details?: { pid?: number } }) => {
        assert.equal(e.code, "LOCKED");
        assert.equal(e.details?.pid, pid);
        assert.ok(e.message.includes(`process ${pid}`) && e.message.includes(lock), e.message);
        return true;
      },
    );
    const got = await withLock(
      lock,
      async () => {
        // The holder finished its critical section before we entered ours.
        assert.ok(existsSync(`${lock}.done`));
        return "mine";
      },
      { wait: true, timeoutSeconds: 20 },
    );
    assert.equal(got, "mine");
    assert.equal((await exited).code, 0);
    assert.equal(existsSync(lock), false);
  });
});

test("withLock: a wait times out with LOCKED; a lock of a dead process is taken over", async () => {
  await withTmp(async (dir) => {
    const lock = join(dir, "x.lock");
    const { child, ready, exited } = await startChild(["hold-lock", lock, "60000"]);
    const t0 = Date.now();
    await assert.rejects(
      withLock(lock, async () => 1, { wait: true, timeoutSeconds: 0.5 }),
      {
        code: "LOCKED",
      },
    );
    assert.ok(Date.now() - t0 >= 450);
    child.kill("SIGKILL");
    await exited;
    assert.ok(existsSync(lock), "a SIGKILLed holder cannot remove its lock");
    assert.equal(JSON.parse(await readFile(lock, "utf8")).pid, Number(ready));
    assert.equal(await withLock(lock, async () => 2), 2);
    // A lock file naming a pid that never ran here.
    const dead = spawnSync("true").pid;
    await writeFile(
      lock,
      JSON.stringify({ pid: dead, host: (await import("node:os")).hostname(), since: "x", token: "t" }),
    );
    assert.equal(await withLock(lock, async () => 3), 3);
    assert.equal(existsSync(lock), false);
    // fn errors release the lock.
    await assert.rejects(
      withLock(lock, async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(existsSync(lock), false);
  });
});

test("freeSpace and ensureFreeSpace", async () => {
  const free = await freeSpace(tmpdir());
  assert.ok(free > 0);
  assert.ok((await freeSpace(join(tmpdir(), "does", "not", "exist"))) > 0);
  await ensureFreeSpace(tmpdir(), 1, "a test");
  await assert.rejects(
    ensureFreeSpace(tmpdir(), free * 1000, "the environment package"),
    (e: Error & { code?: string; details?: { needed?: number; available?: number } }) => {
      assert.equal(e.code, "NO_SPACE");
      assert.match(e.message, /the environment package: .* needed, .* available/);
      assert.equal(e.details?.needed, free * 1000);
      return true;
    },
  );
});
