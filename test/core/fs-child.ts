/**
 * Child process for test/core/fs.test.ts: `node --import tsx fs-child.ts <mode> <args…>`.
 * Prints "ready …" on stdout when the state to test is reached, then waits to be killed.
 */
import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createAtomicWriteStream, makeTempDir, onCleanup, runCleanups, withLock } from "../../src/core/fs.js";

const [mode, a, b] = process.argv.slice(2);

async function main(): Promise<void> {
  switch (mode) {
    case "slow-write": {
      // a: target path. Writes 64 KiB chunks slowly and never commits.
      const w = createAtomicWriteStream(a, { overwrite: true });
      for (let i = 0; ; i++) {
        await new Promise<void>((resolve, reject) =>
          w.stream.write(Buffer.alloc(65536, 0x78), (e) => (e ? reject(e) : resolve())),
        );
        if (i === 3) process.stdout.write("ready\n");
        await sleep(20);
      }
    }
    case "cleanup": {
      // a: marker file written by the async cleanup; b: parent dir for the temp dir.
      const dir = await makeTempDir("dockpack-fs-child-", { parent: b });
      writeFileSync(`${dir}/data`, "x");
      onCleanup(async () => {
        await sleep(100);
        writeFileSync(a, "cleaned");
      });
      // The library installs no signal handler (an embedding host owns its shutdown): the host —
      // here this child, in dockpack the CLI — runs the cleanups on a signal and exits.
      if (
        process.listenerCount("SIGINT") +
          process.listenerCount("SIGTERM") +
          process.listenerCount("SIGHUP") !==
        0
      )
        throw new Error("the library installed a signal handler");
      for (const [sig, code] of [
        ["SIGINT", 130],
        ["SIGTERM", 143],
      ] as const)
        process.on(sig, () => void runCleanups().then(() => process.exit(code)));
      process.stdout.write(`ready ${dir}\n`);
      setInterval(() => undefined, 1000);
      return;
    }
    case "normal-exit": {
      // b: parent dir for the temp dir; exits normally.
      const dir = await makeTempDir("dockpack-fs-child-", { parent: b });
      writeFileSync(`${dir}/data`, "x");
      process.stdout.write(`ready ${dir}\n`);
      return;
    }
    case "hold-lock": {
      // a: lock path; b: how long to hold it (ms), then write "<lock>.done" before release.
      await withLock(a, async () => {
        process.stdout.write(`ready ${process.pid}\n`);
        await sleep(Number(b));
        writeFileSync(`${a}.done`, String(Date.now()));
      });
      return;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(3);
});
