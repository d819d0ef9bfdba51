/**
 * The malicious corpus: packages crafted as an attacker would (symlink and hardlink escapes in
 * every form, chains, `.git` in code, device nodes, pax path overrides, huge sizes, odd names).
 * Each one must be refused by `validate` with a named code AND, fed straight to the restore code
 * (validation bypassed), must write nothing outside the target and run nothing: restoring is safe
 * by construction, not only because validation runs first. Regression tests of issue 10 A1/A2.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { verifyPackage } from "../../src/env/package-reader.js";
import { restoreMembers } from "../../src/env/restore-files.js";
import { type CraftSpec, craftPackage, type RawEntry, tarBytes } from "./craft.js";

let work = "";
let outside = "";

/** Every path under `dir` with its type and content/target, sorted. */
async function snapshot(dir: string, skip: string[] = []): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string) {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip.includes(r)) continue;
      const st = await lstat(join(dir, r));
      if (st.isSymbolicLink()) out.push(`${r} -> ${await readlink(join(dir, r))}`);
      else if (st.isDirectory()) {
        out.push(`${r}/`);
        await walk(r);
      } else out.push(`${r} ${st.size} ${(await readFile(join(dir, r))).toString("base64").slice(0, 40)}`);
    }
  }
  await walk("");
  return out;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "dockpack-malicious-"));
  outside = join(work, "outside");
  await mkdir(join(outside, "other-branch"), { recursive: true });
  await writeFile(join(outside, "other-branch/.env"), "SECRET=keep\n");
  await writeFile(join(outside, "secret"), "do not touch\n");
  await mkdir(join(outside, ".git/hooks"), { recursive: true });
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const file = (name: string, body = "pwned\n"): RawEntry => ({ name, body });
const link = (name: string, target: string): RawEntry => ({ name, type: "2", linkname: target });

/** name → [spec, the code validate must report]. Targets are relative to work/case/target. */
const corpus: Record<string, [CraftSpec, string]> = {
  "write through a symlink to .. (other branch's .env)": [
    { members: [link("code/up", "../../outside"), file("code/up/other-branch/.env")] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "symlink to .. then a file below it": [
    { members: [link("code/up", ".."), file("code/up/x")] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "chain l1 -> .., l2 -> l1/.., l3 -> l2/..": [
    {
      members: [
        link("code/l1", "."),
        link("code/l2", "l1/.."),
        link("code/l3", "l2/../.."),
        file("code/l3/outside/secret"),
      ],
    },
    "PACKAGE_UNSAFE_PATH",
  ],
  "chain planting a git hook in the main repository": [
    {
      members: [
        link("code/l1", ".."),
        link("code/l2", "l1/.."),
        file("code/l2/outside/.git/hooks/post-checkout", "#!/bin/sh\ntouch /tmp/pwned\n"),
      ],
    },
    "PACKAGE_UNSAFE_PATH",
  ],
  "absolute symlink then a file below it": [
    { members: [link("code/abs", "/tmp"), file("code/abs/dockpack-pwned")] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "symlink escaping alone": [{ members: [link("code/esc", "../../outside/secret")] }, "PACKAGE_UNSAFE_PATH"],
  "symlink loop": [{ members: [link("code/a", "b"), link("code/b", "a")] }, "PACKAGE_UNSAFE_PATH"],
  "symlink then file of the same name (duplicate)": [
    { members: [link("code/dup", "../../outside/secret"), file("code/dup")] },
    "PACKAGE_MEMBER_DUPLICATE",
  ],
  "environment file below a code symlink": [
    { members: [link("code/cfg", ".."), file("environment/cfg/.env")] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "hardlink member to a file outside": [
    { members: [{ name: "code/hl", type: "1", linkname: "../../outside/secret" }] },
    "PACKAGE_MEMBER_TYPE_INVALID",
  ],
  ".git folder with hooks in code": [
    { members: [file("code/.git/hooks/pre-commit", "#!/bin/sh\ntouch marker\n"), file("code/a.txt")] },
    "PACKAGE_UNSAFE_PATH",
  ],
  ".git file in code (gitdir redirect)": [
    { members: [file("code/.git", "gitdir: ../../outside\n")] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "nested .GIT in any case": [{ members: [file("code/sub/.GIT/config", "[core]\n")] }, "PACKAGE_UNSAFE_PATH"],
  ".git in environment": [{ members: [file("environment/.git/config", "[core]\n")] }, "PACKAGE_UNSAFE_PATH"],
  "symlink named .git": [{ members: [link("code/.git", "../../outside/.git")] }, "PACKAGE_UNSAFE_PATH"],
  "character device in code": [
    { members: [{ name: "code/null", type: "3", devmajor: 1, devminor: 3 }] },
    "PACKAGE_MEMBER_TYPE_INVALID",
  ],
  "fifo in code": [{ members: [{ name: "code/fifo", type: "6" }] }, "PACKAGE_MEMBER_TYPE_INVALID"],
  "directory member": [{ members: [{ name: "code/dir/", type: "5" }] }, "PACKAGE_UNSAFE_PATH"],
  "pax path override to ../": [
    { members: [{ name: "code/harmless", body: "x", pax: { path: "code/../../outside/secret" } }] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "pax path override to an absolute path": [
    { members: [{ name: "code/harmless", body: "x", pax: { path: "/tmp/dockpack-pwned" } }] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "pax linkpath override escaping": [
    { members: [{ name: "code/l", type: "2", linkname: "ok", pax: { linkpath: "../../../../etc" } }] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "name ../x": [{ members: [file("../x")] }, "PACKAGE_UNSAFE_PATH"],
  "name code/../../x": [{ members: [file("code/../../x")] }, "PACKAGE_UNSAFE_PATH"],
  "absolute name": [{ members: [file("/tmp/dockpack-abs")] }, "PACKAGE_UNSAFE_PATH"],
  "non-canonical name code//x": [{ members: [file("code//x")] }, "PACKAGE_UNSAFE_PATH"],
  "non-canonical name code/./x": [{ members: [file("code/./x")] }, "PACKAGE_UNSAFE_PATH"],
  "member outside every section": [{ members: [file("main")] }, "PACKAGE_UNSAFE_PATH"],
  "metadata branch --help": [{ members: [file("code/a")], meta: { branch: "--help" } }, "OK_BUT_BRANCH"],
  "volume named --help": [
    { members: [], volumes: [{ name: "--help", tar: tarBytes([{ name: "a", body: "x" }]) }] },
    "PACKAGE_METADATA_INVALID",
  ],
  "volume tar with a character device": [
    {
      members: [],
      volumes: [{ name: "v", tar: tarBytes([{ name: "null", type: "3", devmajor: 1, devminor: 3 }]) }],
    },
    "PACKAGE_SPECIAL_FILE",
  ],
  "volume tar with a block device": [
    {
      members: [],
      volumes: [{ name: "v", tar: tarBytes([{ name: "loop0", type: "4", devmajor: 7, devminor: 0 }]) }],
    },
    "PACKAGE_SPECIAL_FILE",
  ],
  "volume tar with a fifo": [
    { members: [], volumes: [{ name: "v", tar: tarBytes([{ name: "fifo", type: "6" }]) }] },
    "PACKAGE_SPECIAL_FILE",
  ],
  "volume tar: write below its own symlink": [
    {
      members: [],
      volumes: [
        {
          name: "v",
          tar: tarBytes([
            { name: "etc", type: "2", linkname: "/etc" },
            { name: "etc/passwd", body: "x" },
          ]),
        },
      ],
    },
    "PACKAGE_UNSAFE_PATH",
  ],
  "volume tar: hardlink to a later or outside file": [
    {
      members: [],
      volumes: [{ name: "v", tar: tarBytes([{ name: "h", type: "1", linkname: "../../etc/shadow" }]) }],
    },
    "PACKAGE_UNSAFE_PATH",
  ],
  "volume tar: ../ entry": [
    { members: [], volumes: [{ name: "v", tar: tarBytes([{ name: "../escape", body: "x" }]) }] },
    "PACKAGE_UNSAFE_PATH",
  ],
  "volume tar: pax path override to ../": [
    {
      members: [],
      volumes: [{ name: "v", tar: tarBytes([{ name: "ok", body: "x", pax: { path: "../../x" } }]) }],
    },
    "PACKAGE_UNSAFE_PATH",
  ],
  "volume decompressing beyond its declared size (bomb)": [
    {
      members: [],
      volumes: [
        {
          name: "v",
          tar: tarBytes([{ name: "zeros", body: Buffer.alloc(8 * 1024 * 1024) }]),
          declaredSize: 4096,
        },
      ],
    },
    "PACKAGE_VOLUME_INVALID",
  ],
};

for (const [name, [spec, code]] of Object.entries(corpus)) {
  test(`malicious: ${name}`, async () => {
    const dir = join(work, name.replace(/[^a-z0-9]+/gi, "_"));
    const target = join(dir, "target");
    await mkdir(target, { recursive: true });
    const pkg = join(dir, "p.dockpack.tar");
    await craftPackage(pkg, spec);
    const res = await verifyPackage(pkg);
    const before = await snapshot(work, [name.replace(/[^a-z0-9]+/gi, "_")]);
    if (code === "OK_BUT_BRANCH") {
      assert.equal(res.valid, true, JSON.stringify(res.problems));
    } else {
      assert.equal(res.valid, false, `${name}: validate accepted it`);
      assert.ok(
        res.problems.some((p) => p.code === code),
        `${name}: expected ${code}, got ${JSON.stringify(res.problems)}`,
      );
    }
    // by construction: the restore code itself, validation bypassed
    const sums = new Map<string, string>();
    for (const line of execFileSync("tar", ["-xOf", pkg, "checksums.sha256"], { encoding: "utf8" }).split(
      "\n",
    ))
      if (line) sums.set(line.slice(66), `sha256:${line.slice(0, 64)}`);
    for (const prefix of ["code/", "environment/"] as const)
      await restoreMembers(pkg, prefix, target, sums).catch((e) => {
        assert.ok(e.code, `restore failed without a code: ${e.stack}`);
      });
    assert.deepEqual(
      await snapshot(work, [name.replace(/[^a-z0-9]+/gi, "_")]),
      before,
      "nothing outside changed",
    );
    for (const p of ["/tmp/dockpack-pwned", "/tmp/dockpack-abs", "/tmp/pwned"])
      await assert.rejects(lstat(p), `${p} must not exist`);
    for (const p of await snapshot(target)) assert.ok(!/(^|\/)\.git(\/|$| )/i.test(p), `.git restored: ${p}`);
  });
}
