/**
 * Machine-wide host port reservations (env/naming.ts): expired reservation files are reclaimed
 * (the folder no longer grows with every port ever picked), fresh ones are kept and respected, and
 * processes allocating at the same time — some replacing expired files — never get the same port.
 * No engine needed; a reservation folder and a port range of the test's own.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { allocatePorts, PORT_RESERVATION_SECONDS, sweepPortReservations } from "../../src/env/naming.js";

const TSX = import.meta.resolve("tsx");
const NAMING = fileURLToPath(new URL("../../src/env/naming.ts", import.meta.url));
const dirs: string[] = [];
const lo = 46000 + Math.floor(Math.random() * 150) * 100;

/** A reservation folder with `old` expired files and `fresh` fresh ones, ports from `lo`. */
function folder(old: number[], fresh: number[]): string {
  const dir = mkdtempSync(join(tmpdir(), "dockpack-port-res-"));
  dirs.push(dir);
  const past = Date.now() / 1000 - PORT_RESERVATION_SECONDS - 60;
  for (const p of old) {
    writeFileSync(join(dir, String(p)), "999999\n");
    utimesSync(join(dir, String(p)), past, past);
  }
  for (const p of fresh) writeFileSync(join(dir, String(p)), "999999\n");
  return dir;
}

after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("expired reservations are reclaimed, fresh ones kept and skipped", async () => {
  const old = Array.from({ length: 300 }, (_, i) => lo + 20 + i);
  const dir = folder(old, [lo, lo + 1, lo + 3]);
  process.env.DOCKPACK_PORT_RESERVATIONS = dir;
  try {
    const got = await allocatePorts(2, [lo, lo + 10], new Set([lo + 2]));
    assert.deepEqual(got, [lo + 4, lo + 5], "fresh reservations and taken ports are skipped");
    const left = readdirSync(dir)
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    assert.deepEqual(left, [lo, lo + 1, lo + 3, lo + 4, lo + 5], "only fresh reservations are left");
    assert.equal(await sweepPortReservations(dir), 0, "nothing more to reclaim");
  } finally {
    delete process.env.DOCKPACK_PORT_RESERVATIONS;
  }
});

test("processes allocating at the same time over expired reservations never share a port", async () => {
  const base = lo + 50;
  const dir = folder(
    Array.from({ length: 40 }, (_, i) => base + i),
    [],
  );
  const script = `import { allocatePorts } from ${JSON.stringify(NAMING)};
const got = [];
for (let i = 0; i < 2; i++) got.push(...(await allocatePorts(2, [${base}, ${base + 39}], new Set())));
process.stdout.write(JSON.stringify(got));`;
  const one = () =>
    new Promise<number[]>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", TSX, "--input-type=module", "-e", script], {
        env: { ...process.env, DOCKPACK_PORT_RESERVATIONS: dir },
      });
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        err += d;
      });
      child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(err))));
    });
  const results = await Promise.all([one(), one(), one(), one(), one()]);
  const all = results.flat();
  assert.equal(all.length, 20);
  assert.equal(new Set(all).size, all.length, `no port handed out twice: ${JSON.stringify(results)}`);
  const left = readdirSync(dir).filter((n) => /^\d+$/.test(n));
  assert.equal(left.length, 20, "the 20 reservations made, every expired one reclaimed");
});
