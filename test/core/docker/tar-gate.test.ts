/**
 * core/docker/tar-gate.ts: the untrusted side of writeVolumeTar. Entries move under `data/`, and
 * no byte of an entry the strict reader or the entry checks refuse ever comes out of the gate
 * (what the engine would receive), whatever the chunking of the input.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import tar from "tar-stream";
import { readTarStrict } from "../../../src/core/archive.js";
import { gatedPrefixedTar } from "../../../src/core/docker/tar-gate.js";

async function craft(
  entries: Array<{ name: string; body?: string; type?: "file" | "symlink" | "directory"; linkname?: string }>,
) {
  const pack = tar.pack();
  for (const e of entries)
    if (e.type === "directory") pack.entry({ name: e.name, type: "directory", mode: 0o755 });
    else
      pack.entry({ name: e.name, type: e.type ?? "file", linkname: e.linkname, mode: 0o644 }, e.body ?? "");
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const c of pack) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function gate(input: Buffer, chunk: number): Promise<{ out: Buffer; error?: { code?: string } }> {
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) parts.push(input.subarray(i, i + chunk));
  const gated = gatedPrefixedTar(Readable.from(parts), "data");
  const got: Buffer[] = [];
  gated.on("data", (c: Buffer) => got.push(c));
  let error: { code?: string } | undefined;
  await gated.done.catch((e) => {
    error = e;
  });
  await new Promise<void>((r) => (gated.readableEnded || gated.destroyed ? r() : gated.once("close", r)));
  return { out: Buffer.concat(got), error };
}

test("gatedPrefixedTar: a good tar comes out under data/, contents unchanged", async () => {
  const input = await craft([
    { name: "./", type: "directory" },
    { name: "a/b.txt", body: "hello" },
    { name: "c", body: "x".repeat(5000) },
  ]);
  for (const chunk of [input.length, 512, 100, 1]) {
    const { out, error } = await gate(input, chunk);
    assert.equal(error, undefined);
    const seen: string[] = [];
    await readTarStrict(Readable.from([out]), async (e, body) => {
      const c: Buffer[] = [];
      for await (const x of body) c.push(x as Buffer);
      seen.push(`${e.name}=${Buffer.concat(c).length}`);
    });
    assert.deepEqual(seen, ["data/=0", "data/a/b.txt=5", "data/c=5000"]);
  }
});

test("gatedPrefixedTar: nothing of a refused entry (.., below a symlink) reaches the output", async () => {
  for (const bad of [
    [{ name: "../escape", body: "EVIL" }],
    [
      { name: "link", type: "symlink" as const, linkname: "/etc" },
      { name: "link/passwd", body: "EVIL" },
    ],
  ]) {
    const input = await craft([{ name: "ok.txt", body: "fine" }, ...bad]);
    for (const chunk of [input.length, 512, 3]) {
      const { out, error } = await gate(input, chunk);
      assert.equal(error?.code, "VOLUME_UNSAFE_ENTRY", `${chunk}: ${JSON.stringify(error)}`);
      assert.ok(!out.includes("EVIL"), `${chunk}: refused content came out`);
      assert.ok(!out.includes("escape") && !out.includes("passwd"), `${chunk}: refused header came out`);
    }
  }
});

test("gatedPrefixedTar: a tar the strict reader refuses (bad checksum) fails with VOLUME_TAR_INVALID", async () => {
  const input = await craft([
    { name: "ok.txt", body: "fine" },
    { name: "second.txt", body: "EVIL" },
  ]);
  const broken = Buffer.from(input);
  broken[1024 + 148] ^= 1; // the second header's checksum
  const { out, error } = await gate(broken, 512);
  assert.equal(error?.code, "VOLUME_TAR_INVALID");
  assert.ok(!out.includes("EVIL"));
});
