/**
 * The mutant corpus (issue 10 C): one small real package (exported on the engine) mutated
 * in-process into 150+ variants — bit flips in the header and body of every member kind,
 * truncations, appended data, reordered, duplicated and removed members, type changes (header
 * checksum recomputed), a second package appended. Every mutant is validated; every mutant is
 * also imported (invalid ones fail in the verify step, before any change), a sample of the valid
 * ones all the way: each gets either the environment identical to the original's or a named
 * error, validate and import agree, and nothing is left behind. Regression tests of A3 and A5.
 */
import assert from "node:assert/strict";
import { lstat, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { toDockpackError } from "../../src/core/errors.js";
import { importPackage, removeEnvironment, validatePackage } from "../../src/env/index.js";
import { runCli } from "../helpers/cli.js";
import { needsEngine } from "../helpers/engine.js";
import { fixChecksum } from "./craft.js";
import { cleanupPrefix, sh, volumeListing, volumesWithPrefix } from "./engine-helpers.js";
import { makeRealPackage, type RealPackage } from "./real-package.js";

interface Member {
  name: string;
  /** Offset of the first header (pax included), of the member's own header, of its data. */
  first: number;
  hdr: number;
  data: number;
  size: number;
  /** Offset just past its padded data. */
  end: number;
  type: string;
}

/** The members of a well-formed package (as written by dockpack) and where its end blocks start. */
function layout(buf: Buffer): { members: Member[]; eoa: number } {
  const members: Member[] = [];
  let at = 0;
  let first = -1;
  let paxName: string | null = null;
  for (;;) {
    if (buf.subarray(at, at + 512).every((x) => x === 0)) return { members, eoa: at };
    const type = String.fromCharCode(buf[at + 156]);
    const size = Number.parseInt(buf.toString("latin1", at + 124, at + 136).replace(/\0.*$/s, ""), 8);
    const padded = Math.ceil(size / 512) * 512;
    if (first < 0) first = at;
    if (type === "x") {
      const rec = buf.toString("utf8", at + 512, at + 512 + size);
      paxName = /\d+ path=([^\n]*)\n/.exec(rec)?.[1] ?? null;
      at += 512 + padded;
      continue;
    }
    const name = paxName ?? buf.toString("utf8", at, at + 100).replace(/\0.*$/s, "");
    members.push({ name, first, hdr: at, data: at + 512, size, end: at + 512 + padded, type });
    paxName = null;
    first = -1;
    at += 512 + padded;
  }
}

interface Mutant {
  id: string;
  kind: string;
  bytes: Buffer;
}

/** A deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function kindOf(name: string): string {
  if (name === "metadata.json" || name === "checksums.sha256") return name;
  if (name.startsWith("volumes/")) return "volume";
  if (name.startsWith("environment/")) return "environment";
  return "code";
}

function mutants(pkg: Buffer): Mutant[] {
  const { members, eoa } = layout(pkg);
  const out: Mutant[] = [];
  const rand = rng(10);
  const flip = (at: number, bit: number) => {
    const b = Buffer.from(pkg);
    b[at] ^= 1 << bit;
    return b;
  };
  const add = (kind: string, id: string, bytes: Buffer) => out.push({ id: `${kind}:${id}`, kind, bytes });
  // bit flips: header and body of every member kind (several members per kind)
  const perKind = new Map<string, number>();
  for (const m of members) {
    const k = `${kindOf(m.name)}${m.type === "2" ? "-symlink" : ""}`;
    const n = perKind.get(k) ?? 0;
    if (n >= 3) continue;
    perKind.set(k, n + 1);
    for (const field of [0, 100, 124, 148, 156, 257, 345, 500])
      add(
        "flip-header",
        `${m.name}@${field}`,
        flip(m.hdr + field + Math.floor(rand() * 4), Math.floor(rand() * 8)),
      );
    if (m.first !== m.hdr) add("flip-header", `${m.name}@pax`, flip(m.first + 520, 2));
    for (let i = 0; i < (m.size > 0 ? 5 : 0); i++) {
      const at = m.data + Math.floor(rand() * m.size);
      add("flip-body", `${m.name}+${at - m.data}`, flip(at, Math.floor(rand() * 8)));
    }
    if (m.end - m.data > m.size) add("flip-padding", m.name, flip(m.data + m.size, 0));
  }
  add("flip-eoa", "first", flip(eoa + 10, 3));
  add("flip-eoa", "second", flip(eoa + 600, 5));
  // truncations
  for (const m of members) {
    add("truncate", `in-header:${m.name}`, pkg.subarray(0, m.hdr + 100));
    if (m.size > 0) add("truncate", `in-body:${m.name}`, pkg.subarray(0, m.data + Math.floor(m.size / 2)));
    if (members.length > 12 && kindOf(m.name) === "code" && rand() < 0.7) continue;
  }
  add("truncate", "before-eoa", pkg.subarray(0, eoa));
  add("truncate", "half-eoa", pkg.subarray(0, eoa + 512));
  add("truncate", "odd", pkg.subarray(0, pkg.length - 7));
  // appended data
  add("append", "zeros", Buffer.concat([pkg, Buffer.alloc(10240)]));
  add("append", "garbage", Buffer.concat([pkg, Buffer.from("trailing garbage\n")]));
  add("append", "second-package", Buffer.concat([pkg, pkg]));
  add(
    "append",
    "member-after-eoa",
    Buffer.concat([
      pkg.subarray(0, eoa + 512),
      pkg.subarray(members[1].first, members[1].end),
      Buffer.alloc(1024),
    ]),
  );
  // reordered, duplicated, removed members
  const whole = (m: Member) => pkg.subarray(m.first, m.end);
  const rebuild = (list: Buffer[]) => Buffer.concat([...list, Buffer.alloc(1024)]);
  for (let i = 0; i < members.length; i++) {
    const m = members[i];
    add("remove", m.name, rebuild(members.filter((_, j) => j !== i).map(whole)));
    add(
      "duplicate",
      m.name,
      rebuild(members.flatMap((x, j) => (j === i ? [whole(x), whole(x)] : [whole(x)]))),
    );
    if (i + 1 < members.length) {
      const order = members.map(whole);
      [order[i], order[i + 1]] = [order[i + 1], order[i]];
      add("reorder", `${m.name}<->${members[i + 1].name}`, rebuild(order));
    }
  }
  // type changes, header checksum recomputed (the size kept)
  for (const m of members) {
    for (const t of m.type === "2" ? ["0", "5", "1"] : ["5", "2", "1", "6", "3", "S", "Z"]) {
      const b = Buffer.from(pkg);
      b[m.hdr + 156] = t.charCodeAt(0);
      fixChecksum(b, m.hdr);
      add("type", `${m.name}:${m.type}->${t}`, b);
    }
  }
  return out;
}

let real: RealPackage | undefined;
let original = "";
const results = new Map<string, { valid: boolean; codes: string[] }>();
let corpus: Mutant[] = [];

/** Files of a worktree (path, mode, content hash or link target), without dockpack's settings. */
async function worktreeSnapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string) {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      // dockpack's per-target settings (compose project, ports) differ by design
      if (r === ".git" || r === ".dockpack/env.yml" || r === ".dockpack/compose.yml") continue;
      const st = await lstat(join(dir, r));
      if (st.isSymbolicLink()) out.push(`${r} -> ${await readlink(join(dir, r))}`);
      else if (st.isDirectory()) await walk(r);
      else
        out.push(
          `${r} ${(st.mode & 0o777).toString(8)} ${(await readFile(join(dir, r))).toString("base64")}`,
        );
    }
  }
  await walk("");
  return out;
}

before(async () => {
  real = await makeRealPackage("dpm");
  original = join(real.work, "original.dockpack.tar");
  await writeFile(original, await readFile(real.pkg));
  corpus = mutants(await readFile(original));
});
after(() => {
  if (real) cleanupPrefix(real.project, real.work);
});

test("the corpus holds at least 150 mutants of every class", async (t) => {
  if (!needsEngine(t)) return;
  assert.ok(corpus.length >= 150, `${corpus.length} mutants`);
  const kinds = new Set(corpus.map((m) => m.kind));
  for (const k of [
    "flip-header",
    "flip-body",
    "truncate",
    "append",
    "remove",
    "duplicate",
    "reorder",
    "type",
  ])
    assert.ok(kinds.has(k), k);
});

test("validate: every mutant is valid or has named problems; no stack trace, no crash", async (t) => {
  if (!needsEngine(t) || !real) return;
  const dir = join(real.work, "mutants");
  await import("node:fs/promises").then((fs) => fs.mkdir(dir));
  for (const [i, m] of corpus.entries()) {
    const file = join(dir, `m${i}.dockpack.tar`);
    await writeFile(file, m.bytes);
    const res = await validatePackage({ package: file });
    results.set(m.id, { valid: res.valid, codes: res.problems.map((p) => p.code) });
    for (const p of res.problems) assert.match(p.code, /^PACKAGE_[A-Z_]+$/, `${m.id}: ${p.code}`);
    if (!res.valid) assert.ok(res.problems.length > 0, m.id);
  }
  // the regressions of A3 and A5 among them
  const expect = (idPart: string, code: string) => {
    const hits = [...results].filter(([id]) => id.includes(idPart));
    assert.ok(hits.length > 0, `no mutant ${idPart}`);
    for (const [id, r] of hits) assert.ok(r.codes.includes(code), `${id}: ${JSON.stringify(r)}`);
  };
  expect("type:code/docker-compose.yml:0->5", "PACKAGE_MEMBER_TYPE_INVALID");
  expect("append:second-package", "PACKAGE_TRAILING_DATA");
  expect("append:garbage", "PACKAGE_TRAILING_DATA");
  expect("duplicate:code/docker-compose.yml", "PACKAGE_MEMBER_DUPLICATE");
  const valid = [...results].filter(([, r]) => r.valid).map(([id]) => id);
  for (const id of valid)
    assert.ok(/^(flip-padding|append:zeros|reorder:)/.test(id), `unexpectedly valid: ${id}`);
  t.diagnostic(`${corpus.length} mutants, ${valid.length} valid: ${valid.join(", ")}`);
});

test("import agrees with validate on every mutant; valid ones give the identical environment; nothing left behind", async (t) => {
  if (!needsEngine(t) || !real) return;
  const app = real.app;
  const orig = await importPackage({ cwd: app, package: original, targetBranch: "orig" });
  const want = {
    files: await worktreeSnapshot(orig.environment.path),
    db: volumeListing(real.vol("orig", "db")),
    media: volumeListing(real.vol("orig", "media")),
  };
  assert.ok(
    want.files.some((f) => f.startsWith(".env 600 ")),
    ".env keeps mode 600",
  );
  const branchesBefore = sh("git", ["branch", "--list"], app);
  let fullImports = 0;
  const seenKinds = new Set<string>();
  for (const [i, m] of corpus.entries()) {
    const file = join(real.work, "mutants", `m${i}.dockpack.tar`);
    const verdict = results.get(m.id);
    assert.ok(verdict);
    if (verdict.valid) {
      // a sample of the valid ones all the way (one per class), the others are identical bytes
      if (seenKinds.has(m.kind)) continue;
      seenKinds.add(m.kind);
      const r = await importPackage({ cwd: app, package: file, targetBranch: `m${i}` });
      fullImports++;
      assert.deepEqual(await worktreeSnapshot(r.environment.path), want.files, m.id);
      assert.deepEqual(volumeListing(real.vol(`m${i}`, "db")), want.db, m.id);
      assert.deepEqual(volumeListing(real.vol(`m${i}`, "media")), want.media, m.id);
      await removeEnvironment({ cwd: app, branch: `m${i}`, volumes: true, deleteBranch: true, force: true });
      continue;
    }
    const err = await importPackage({ cwd: app, package: file, targetBranch: `m${i}` }).then(
      () => null,
      (e) => toDockpackError(e),
    );
    assert.ok(err, `${m.id}: import accepted what validate refused (${verdict.codes})`);
    assert.equal(err.code, verdict.codes[0], `${m.id}: import says ${err.code}, validate ${verdict.codes}`);
  }
  t.diagnostic(`${fullImports} valid mutants imported in full`);
  assert.equal(sh("git", ["branch", "--list"], app), branchesBefore, "no branch left behind");
  assert.ok(!sh("git", ["worktree", "list"], app).includes("/worktrees/m"), "no worktree left behind");
  assert.deepEqual(volumesWithPrefix(`${real.project}-m`), [], "no volume left behind");
  const helpers = sh("docker", ["ps", "-aq", "--filter", `label=io.dockpack.pid=${process.pid}`]).trim();
  assert.equal(helpers, "", "no helper container left behind");
});

test("A3 over the CLI: a member turned into a directory is a named error with exit 1, never a silent exit 0", async (t) => {
  if (!needsEngine(t) || !real) return;
  const m = corpus.find((x) => x.id.startsWith("type:code/docker-compose.yml:0->5"));
  assert.ok(m);
  const file = join(real.work, "a3.dockpack.tar");
  await writeFile(file, m.bytes);
  const v = runCli(["packages", "validate", file]);
  assert.equal(v.code, 1);
  assert.match(v.stdout, /PACKAGE_MEMBER_TYPE_INVALID/);
  const i = runCli(["packages", "import", file, "--target-branch", "a3"], { cwd: real.app });
  assert.equal(i.code, 1);
  assert.match(i.stderr, /PACKAGE_MEMBER_TYPE_INVALID|directory but declares/);
});
