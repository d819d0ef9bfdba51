/**
 * Permission bits of code/ and environment/ members (issue 10, fidelity/integrity): tar header
 * modes are not covered by checksums.sha256, so a flipped setuid/setgid/sticky or world-writable
 * bit must not pass. validate (verifyPackage) reports `PACKAGE_MODE_UNSAFE`, and import's restore
 * (restoreMembers) refuses the member before writing it.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { toDockpackError } from "../../src/core/errors.js";
import { verifyPackage } from "../../src/env/package-reader.js";
import { restoreMembers } from "../../src/env/restore-files.js";
import { craftPackage } from "./craft.js";

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-modes-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cases: [string, string, number][] = [
  ["setuid on code", "code/run.sh", 0o4755],
  ["setgid on code", "code/run.sh", 0o2755],
  ["sticky on code", "code/run.sh", 0o1644],
  ["world-writable env file", "environment/.env", 0o666],
  ["world-writable code", "code/run.sh", 0o777],
];

for (const [label, member, mode] of cases)
  test(`mode ${mode.toString(8)} (${label}): validate reports PACKAGE_MODE_UNSAFE, restore refuses it`, async () => {
    const pkg = join(dir, `${label.replace(/\W+/g, "-")}.dockpack.tar`);
    await craftPackage(pkg, {
      members: [
        { name: "code/run.sh", body: "#!/bin/sh\n", mode: member === "code/run.sh" ? mode : 0o755 },
        { name: "environment/.env", body: "A=1\n", mode: member === "environment/.env" ? mode : 0o600 },
      ],
    });
    const res = await verifyPackage(pkg);
    assert.equal(res.valid, false);
    assert.deepEqual(
      res.problems.map((p) => [p.code, p.member]),
      [["PACKAGE_MODE_UNSAFE", member]],
    );
    const dest = join(dir, `${label.replace(/\W+/g, "-")}-out`);
    await mkdir(dest);
    const prefix = member.startsWith("code/") ? "code/" : "environment/";
    const err = await restoreMembers(pkg, prefix, dest, res.checksums).then(
      () => null,
      (e) => toDockpackError(e),
    );
    assert.equal(err?.code, "PACKAGE_MODE_UNSAFE");
    assert.equal(existsSync(join(dest, member.slice(prefix.length))), false, "nothing written");
  });

test("ordinary modes (0755 code, 0600 env file, 0644) stay valid", async () => {
  const pkg = join(dir, "ok.dockpack.tar");
  await craftPackage(pkg, {
    members: [
      { name: "code/run.sh", body: "#!/bin/sh\n", mode: 0o755 },
      { name: "code/a.txt", body: "a\n", mode: 0o644 },
      { name: "environment/.env", body: "A=1\n", mode: 0o600 },
    ],
  });
  const res = await verifyPackage(pkg);
  assert.deepEqual(res.problems, []);
});
