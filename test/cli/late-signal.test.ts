import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const interruptModule = fileURLToPath(new URL("../../src/cli/interrupt.ts", import.meta.url));

/** Runs a child that settles a "command" with `exitCode`, then gets `sig` while still exiting. */
function lateSignal(exitCode: number, sig: NodeJS.Signals): { status: number | null; signal: string | null } {
  const script = `
    const { handleInterrupts } = await import(${JSON.stringify(interruptModule)});
    const interrupts = handleInterrupts();
    process.exitCode = ${exitCode};
    await interrupts.finish();
    setTimeout(() => {}, 5000); // still exiting (a handle not yet closed)
    process.kill(process.pid, ${JSON.stringify(sig)});
  `;
  const res = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 20_000,
  });
  return { status: res.status, signal: res.signal };
}

test("a signal after the command settled exits with the command's own code, not 128+n", () => {
  assert.deepEqual(lateSignal(0, "SIGINT"), { status: 0, signal: null });
  assert.deepEqual(lateSignal(1, "SIGTERM"), { status: 1, signal: null });
});
