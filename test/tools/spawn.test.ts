import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runGroup } from "../../src/tools/spawn.js";

const node = process.execPath;
const base = { cwd: tmpdir(), input: "", timeoutMs: 10_000, maxBytes: 1 << 20 };

test("runGroup: stdout whole (multi-byte chunks), stderr tail, exit code; a bounded output kills the group", async () => {
  const ok = await runGroup(
    node,
    [
      "-e",
      "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{process.stderr.write('log\\n');process.stdout.write(JSON.stringify({got:d,s:'é'.repeat(70000)}))})",
    ],
    { ...base, input: '{"x":"ü"}' },
  );
  assert.equal(ok.exitCode, 0);
  assert.equal(ok.stderr, "log\n");
  const out = JSON.parse(ok.stdout) as { got: string; s: string };
  assert.equal(out.got, '{"x":"ü"}');
  assert.equal(out.s, "é".repeat(70000));

  const big = await runGroup(node, ["-e", "setInterval(()=>process.stdout.write('x'.repeat(65536)),1)"], {
    ...base,
    maxBytes: 256 * 1024,
  });
  assert.equal(big.tooLarge, true);
  assert.equal(big.exitSignal, "SIGKILL");

  const failed = await runGroup(node, ["-e", "process.exitCode=3"], base);
  assert.equal(failed.exitCode, 3);
});

test("runGroup: a program that ignores its input, a missing program, a non-executable file, a canceled and a timed-out run", async () => {
  // 4 MiB of input to a program that never reads it: EPIPE is not an error.
  const deaf = await runGroup(node, ["-e", "process.stdout.write('{}')"], {
    ...base,
    input: "x".repeat(4 << 20),
  });
  assert.equal(deaf.exitCode, 0);
  assert.equal(deaf.stdout, "{}");

  const missing = await runGroup("dockpack-no-such-program", [], base);
  assert.equal(missing.spawnError?.code, "ENOENT");

  const dir = await mkdtemp(join(tmpdir(), "dockpack-spawn-"));
  try {
    const file = join(dir, "tool.sh");
    await writeFile(file, "#!/bin/sh\necho {}\n");
    await chmod(file, 0o644);
    const denied = await runGroup(file, [], base);
    assert.equal(denied.spawnError?.code, "EACCES");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const ac = new AbortController();
  const canceled = runGroup(node, ["-e", "setTimeout(()=>{},60000)"], { ...base, signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  const c = await canceled;
  assert.equal(c.canceled, true);
  assert.equal(c.exitSignal, "SIGKILL");

  const pre = new AbortController();
  pre.abort();
  assert.equal((await runGroup(node, ["-e", ""], { ...base, signal: pre.signal })).canceled, true);

  const slow = await runGroup(node, ["-e", "setTimeout(()=>{},60000)"], { ...base, timeoutMs: 200 });
  assert.equal(slow.timedOut, true);
  assert.equal(slow.exitSignal, "SIGTERM");
});
