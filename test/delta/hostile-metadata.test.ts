/**
 * Issue 12 A7: the metadata must be self-consistent. A swapped config (source.id ≠ config
 * digest), a second metadata member, tags the engine refuses, a forged `duplicate` row and an
 * 80 MiB metadata member each fail with a named error from info, list and apply alike.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentReporter } from "../../src/core/output.js";
import { isValidRepoTag } from "../../src/delta/format.js";
import { applyDelta, createDelta, deltaInfo, deltaList } from "../../src/delta/index.js";
import { readInventoryIfAny } from "../../src/delta/inventory.js";
import { runCli } from "../helpers/cli.js";
import { sha, versionPair, writeSynth } from "../image/synthetic.js";
import { forgePackage, readMembers, writeMembers } from "./tar-surgery.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-delta-md-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const r = silentReporter();
const DEAD = { DOCKER_HOST: `unix://${join(dir, "no-engine.sock")}` };

let v1File: string;
let pkg: string;
let v1Config: Buffer;
test.before(async () => {
  const pair = await versionPair("dockpack-test-md");
  v1Config = pair.v1.config;
  v1File = join(dir, "v1.tar");
  const v2File = join(dir, "v2.tar");
  await writeSynth(pair.v1, v1File);
  await writeSynth(pair.v2, v2File);
  pkg = join(dir, "good.dpd");
  await createDelta({ image: v2File, output: pkg, bases: [v1File] }, r);
});

async function rejectedEverywhere(file: string, code: string, pattern: RegExp): Promise<void> {
  const check = (e: any) => {
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
  await assert.rejects(deltaInfo({ package: file }), check);
  await assert.rejects(deltaList({ package: file }), check);
  await assert.rejects(
    applyDelta({ package: file, baseArchives: [v1File], output: join(dir, "o.tar") }, r),
    check,
  );
}

test("A7: a swapped config (digest fixed, source.id not) is refused, info does not show the old ID", async () => {
  const bad = join(dir, "swapped.dpd");
  await forgePackage(pkg, bad, (p) => {
    p.members.find((m) => m.name === "config.json")!.body = v1Config;
    p.md.config.digest = sha(v1Config);
    p.md.config.size = v1Config.length;
  });
  await rejectedEverywhere(bad, "DELTA_PACKAGE_INVALID", /source\.id sha256:\w+ is not the config digest/);
});

test("A7: a second metadata member is refused (the first and only one counts)", async () => {
  const bad = join(dir, "two-md.dpd");
  const members = await readMembers(pkg);
  const md = JSON.parse(members[0].body.toString());
  md.source.repoTags = ["evil/other:1"];
  await writeMembers(bad, [
    ...members,
    { name: "dockpack-delta.json", body: Buffer.from(JSON.stringify(md)) },
  ]);
  await rejectedEverywhere(bad, "DELTA_PACKAGE_INVALID", /dockpack-delta\.json appears more than once/);
  const late = join(dir, "late-md.dpd");
  await writeMembers(late, [...members.slice(1), members[0]]);
  await rejectedEverywhere(late, "DELTA_PACKAGE_INVALID", /is not the first member/);
});

test("A7: tags the engine would refuse: in the metadata and as IMAGE_NAME", async () => {
  assert.equal(isValidRepoTag("UPPER/Name:1"), false);
  assert.equal(isValidRepoTag("registry.example.com:5000/team/app:1.2-rc_1"), true);
  assert.equal(isValidRepoTag("app"), false, "a stored tag always has :tag");
  assert.equal(isValidRepoTag("app:bad tag"), false);
  const bad = join(dir, "upper.dpd");
  await forgePackage(pkg, bad, (p) => {
    p.md.source.repoTags = ["UPPER/Name:1"];
  });
  await rejectedEverywhere(bad, "DELTA_PACKAGE_INVALID", /the tag "UPPER\/Name:1" is not a valid/);
  const res = runCli(
    ["--json", "delta", "apply", pkg, "Bad/Name:1", "--base-archive", v1File, "-o", join(dir, "x.tar")],
    {
      env: DEAD,
    },
  );
  assert.equal(res.code, 2, res.stderr);
  assert.equal(JSON.parse(res.stdout).error.code, "DELTA_TAG_INVALID");
});

test("A7: forged layer rows: a duplicate of nothing, of a later row, of another diff_id; a missing member", async () => {
  const forged: [string, (md: any) => void, RegExp][] = [
    [
      "dup-nothing",
      (md) => Object.assign(md.layers[1], { ship: "duplicate", sameAs: 99, member: undefined }),
      /duplicate of 99/,
    ],
    ["dup-later", (md) => Object.assign(md.layers[0], { ship: "duplicate", sameAs: 2 }), /duplicate of 2/],
    ["dup-other", (md) => Object.assign(md.layers[2], { ship: "duplicate", sameAs: 0 }), /duplicate of 0/],
    [
      "no-member",
      (md) =>
        Object.assign(
          md.layers.find((l: any) => l.ship === "full"),
          { member: "layers/nope.zst" },
        ),
      /missing/,
    ],
    ["bad-index", (md) => Object.assign(md.layers[1], { index: 5 }), /has index 5/],
  ];
  for (const [name, edit, pattern] of forged) {
    const bad = join(dir, `${name}.dpd`);
    await forgePackage(pkg, bad, (p) => edit(p.md), { keepDigests: true });
    await rejectedEverywhere(bad, "DELTA_PACKAGE_INVALID", pattern);
  }
});

test("A7: an 80 MiB metadata member is 'too large', not 'not valid JSON'", async () => {
  const bad = join(dir, "huge-md.dpd");
  await forgePackage(pkg, bad, () => undefined, { rawMetadata: (t) => t + " ".repeat(80 * 1024 * 1024) });
  await rejectedEverywhere(bad, "DELTA_METADATA_TOO_LARGE", /dockpack-delta\.json is \d+ bytes, more than/);
});

test("an inventory over 64 MiB is refused unread; a fifo given as --base is never waited on", async () => {
  const big = join(dir, "big-inventory.json");
  writeFileSync(big, "{");
  truncateSync(big, 200 * 1024 * 1024); // sparse
  await assert.rejects(readInventoryIfAny(big), (e: any) => {
    assert.equal(e.code, "INVENTORY_INVALID");
    assert.ok(e.message.includes(big) && /209715200 bytes/.test(e.message), e.message);
    return true;
  });
  const fifo = join(dir, "fifo-inventory");
  execFileSync("mkfifo", [fifo]);
  assert.equal(await readInventoryIfAny(fifo), undefined);
});
