/**
 * `packages export --encrypt-all` on the real engine (issue 10 B6): code, every environment file
 * and the volume data are age-encrypted (streaming) to a package key wrapped for the recipient;
 * validate and inspect work without the key (structure, sizes, ciphertext checksums) and check
 * the decrypted content with it; import without the key, with a wrong key, with swapped or
 * re-encrypted members is refused with a named code and leaves nothing; with the key the
 * environment comes back identical (contents, modes, volume data).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { toDockpackError } from "../../src/core/errors.js";
import { openRepository } from "../../src/core/oci/client.js";
import {
  createEnvironment,
  exportEnvironment,
  importPackage,
  inspectPackage,
  validatePackage,
} from "../../src/env/index.js";
import { pullPackage, pushPackage, readRemotePackage } from "../../src/env/registry.js";
import { importFromRegistry } from "../../src/env/registry-import.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { startRegistry } from "../helpers/registry.js";
import { fixChecksum } from "./craft.js";
import {
  ageKeys,
  initAppRepo,
  inVolume,
  sh,
  tearDownAppRepo,
  volumeListing,
  volumesWithPrefix,
} from "./engine-helpers.js";

const project = `dpa${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";
let state = "";
let key = "";
let other = "";
let recipient = "";
let pkg = "";
const ENV_TEXT = "DB_NAME=demo\nSECRET=envsecret-4711\n";
const CODE_TEXT = "#!/bin/sh\necho codesecret-4711\n";
/** As long as CODE_TEXT, so their ciphertexts can be swapped. */
const NOTES = `${"n".repeat(CODE_TEXT.length - 1)}\n`;

before(async () => {
  if (!engineAnswers()) return;
  ({ work, app, state } = await initAppRepo("dockpack-encall", project, { state: true }));
  const env = await createEnvironment({ cwd: app, branch: "src" });
  writeFileSync(join(env.path, ".env"), ENV_TEXT);
  chmodSync(join(env.path, ".env"), 0o600);
  writeFileSync(join(env.path, "run.sh"), CODE_TEXT);
  chmodSync(join(env.path, "run.sh"), 0o755);
  writeFileSync(join(env.path, "notes.txt"), NOTES);
  for (const v of ["db", "media"]) sh("docker", ["volume", "create", `${project}-src_${v}`]);
  inVolume(
    `${project}-src_db`,
    "echo volsecret-4711 > /data/r.log && mkdir /data/d && echo x > /data/d/y && chmod 640 /data/d/y",
  );
  ({ key, other, recipient } = await ageKeys(work));
  pkg = (
    await exportEnvironment({
      cwd: app,
      branch: "src",
      outputDir: join(work, "out"),
      encrypt: { recipients: [recipient] },
      encryptAll: true,
    })
  ).package;
});

after(() => tearDownAppRepo({ work, app, state }, project));

const cli = (args: string[], env: NodeJS.ProcessEnv = {}, cwd = app) =>
  runCli(args, { cwd, env: { DOCKPACK_STATE_DIR: state, ...env } });

const nothingFor = (branch: string) => {
  assert.equal(sh("git", ["branch", "--list", branch], app).trim(), "", `branch ${branch} left`);
  assert.deepEqual(volumesWithPrefix(`${project}-${branch}_`), []);
  assert.equal(sh("git", ["worktree", "list"], app).includes(branch), false, "worktree left");
};

const json = (r: { stdout: string }) => JSON.parse(r.stdout);
const validate = (p: string, identity?: string) =>
  validatePackage({ package: p, ...(identity ? { identity: [identity] } : {}) });
/** The error code of an import into `branch` (library call, in this process). */
const importCode = (p: string, branch: string, identity?: string) =>
  importPackage({
    cwd: app,
    package: p,
    targetBranch: branch,
    ...(identity ? { identity: [identity] } : {}),
  }).then(
    () => "OK",
    (e) => {
      const err = toDockpackError(e);
      return err.code === "IMPORT_FAILED" ? `IMPORT_FAILED:${String(err.details?.code)}` : err.code;
    },
  );

/** One member of a package tar: header offset, name, body offset and size. */
interface Member {
  at: number;
  name: string;
  body: number;
  size: number;
}

/** Members of a package (ustar, short names: this test's packages have no pax headers). */
function members(bytes: Buffer): Member[] {
  const out: Member[] = [];
  for (let at = 0; at + 512 <= bytes.length; ) {
    const name = bytes.toString("utf8", at, at + 100).replace(/\0.*$/s, "");
    if (!name) break;
    const size = Number.parseInt(bytes.toString("ascii", at + 124, at + 136).replace(/\0.*$/s, ""), 8);
    out.push({ at, name, body: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Rewrites checksums.sha256 (same length) so that it matches the members as they are now. */
function refreshChecksums(bytes: Buffer): void {
  const list = members(bytes);
  const sums = list.find((m) => m.name === "checksums.sha256") as Member;
  const text = bytes.toString("utf8", sums.body, sums.body + sums.size);
  const fixed = text.replace(/^([a-f0-9]{64}) {2}(.+)$/gm, (line, _h, name: string) => {
    const m = list.find((x) => x.name === name);
    if (!m || bytes[m.at + 156] === 0x32) return line; // symlinks: digest of the target text
    return `${hex(bytes.subarray(m.body, m.body + m.size))}  ${name}`;
  });
  bytes.write(fixed, sums.body, "utf8");
}

function variant(name: string, change: (bytes: Buffer, list: Member[]) => void): string {
  const bytes = readFileSync(pkg);
  change(bytes, members(bytes));
  refreshChecksums(bytes);
  const path = join(work, `${name}.dockpack.tar`);
  writeFileSync(path, bytes, { mode: 0o600 });
  return path;
}

test("--encrypt-all: nothing in clear, validate/inspect without the key, import only with it, identical result", async (t) => {
  if (!needsEngine(t)) return;
  const bytes = readFileSync(pkg);
  for (const s of ["envsecret-4711", "codesecret-4711", "volsecret-4711", "DB_NAME"])
    assert.ok(!bytes.includes(Buffer.from(s)), `${s} is not in the package in clear`);
  assert.equal(statSync(pkg).mode & 0o777, 0o600);

  const v = cli(["--json", "packages", "validate", pkg]);
  assert.equal(v.code, 0, v.stdout);
  assert.equal(json(v).valid, true);
  assert.equal(json(v).encryption.all, true);
  assert.equal(json(v).encryption.decrypted, false);
  const vk = await validate(pkg, key);
  assert.deepEqual(vk.problems, []);
  assert.equal(vk.encryption?.decrypted, true);
  assert.ok(vk.services.length > 0, "with the key, the compose files are read");
  const vw = await validate(pkg, other);
  assert.equal(vw.valid, false);
  assert.equal(vw.problems[0].code, "PACKAGE_DECRYPT_FAILED");

  const ins = await inspectPackage({ package: pkg });
  assert.equal(ins.valid, true);
  const enc = ins.encryption;
  assert.equal(enc?.all, true);
  for (const m of ["code/run.sh", "environment/.env", "volumes/db.tar.zst", "checksums.plain.age"])
    assert.ok(enc?.members.includes(m), `${m} listed as encrypted`);
  assert.ok((ins.volumes.find((x) => x.name === "db")?.size ?? 0) > 0, "sizes readable without the key");
  const text = cli(["packages", "inspect", pkg]);
  assert.match(text.stdout, /encrypted \(age, --encrypt-all\)/);

  const none = cli(["--json", "packages", "import", pkg, "--target-branch", "ea"]);
  assert.equal(none.code, 1);
  assert.equal(json(none).error.code, "PACKAGE_ENCRYPTED");
  assert.doesNotMatch(none.stderr, /\n\s+at /, "no stack trace");
  nothingFor("ea");
  assert.equal(await importCode(pkg, "ea", other), "PACKAGE_DECRYPT_FAILED");
  nothingFor("ea");

  const ok = await importPackage({ cwd: app, package: pkg, targetBranch: "ea", identity: [key] });
  const wt = ok.environment.path;
  assert.equal(readFileSync(join(wt, ".env"), "utf8"), ENV_TEXT);
  assert.equal(statSync(join(wt, ".env")).mode & 0o777, 0o600);
  assert.equal(readFileSync(join(wt, "run.sh"), "utf8"), CODE_TEXT);
  assert.equal(statSync(join(wt, "run.sh")).mode & 0o777, 0o755);
  assert.equal(readFileSync(join(wt, "notes.txt"), "utf8"), NOTES);
  assert.deepEqual(volumeListing(`${project}-ea_db`), volumeListing(`${project}-src_db`));
  assert.equal(cli(["env", "remove", "ea", "--volumes", "--delete-branch", "--force"]).code, 0);
  nothingFor("ea");
});

test("--encrypt-all: swapped members, changed ciphertext and changed metadata are caught with the key; nothing is left", async (t) => {
  if (!needsEngine(t)) return;
  // two code members' ciphertexts swapped (checksums.sha256 fixed): only the key can tell
  const swapped = variant("swapped", (bytes, list) => {
    const a = list.find((m) => m.name === "code/run.sh") as Member;
    const b = list.find((m) => m.name === "code/notes.txt") as Member;
    const ca = Buffer.from(bytes.subarray(a.body, a.body + a.size));
    const cb = Buffer.from(bytes.subarray(b.body, b.body + b.size));
    assert.equal(ca.length, cb.length, "same-size members (same plaintext length)");
    ca.copy(bytes, b.body);
    cb.copy(bytes, a.body);
  });
  assert.equal((await validate(swapped)).valid, true, "valid without the key");
  const sv = await validate(swapped, key);
  assert.equal(sv.valid, false);
  assert.ok(sv.problems.some((p) => p.code === "PACKAGE_CHECKSUM_MISMATCH"));
  assert.equal(await importCode(swapped, "sw", key), "PACKAGE_CHECKSUM_MISMATCH");
  nothingFor("sw");

  // one byte of the volume's ciphertext flipped, metadata.json and checksums.sha256 made to match
  const flipped = variant("flipped", (bytes, list) => {
    const vol = list.find((m) => m.name === "volumes/db.tar.zst") as Member;
    bytes[vol.body + Math.floor(vol.size / 2)] ^= 0x01;
    const meta = list.find((m) => m.name === "metadata.json") as Member;
    const text = bytes.toString("utf8", meta.body, meta.body + meta.size);
    const old = JSON.parse(text).volumes.find((x: { name: string }) => x.name === "db").sha256;
    bytes.write(
      text.replace(old, `sha256:${hex(bytes.subarray(vol.body, vol.body + vol.size))}`),
      meta.body,
      "utf8",
    );
    fixChecksum(bytes, meta.at);
  });
  assert.equal((await validate(flipped)).valid, true, "valid without the key");
  const fv = await validate(flipped, key);
  assert.equal(fv.valid, false);
  assert.equal(fv.problems[0].code, "PACKAGE_DECRYPT_FAILED");
  assert.ok(
    fv.problems.some((p) => p.member === "metadata.json"),
    "the changed metadata.json is caught too",
  );
  const fi = cli(["--json", "packages", "import", flipped, "--target-branch", "fl", "--identity", key]);
  assert.equal(fi.code, 1);
  // import checks volume contents while restoring them (one read), so the first thing it meets
  // is the changed metadata.json, caught by checksums.plain.age before anything is created
  assert.equal(json(fi).error.code, "PACKAGE_CHECKSUM_MISMATCH");
  assert.doesNotMatch(fi.stderr, /\n\s+at /, "no stack trace");
  nothingFor("fl");
  // and a plain ciphertext change without fixing anything: caught without the key
  const bad = readFileSync(pkg);
  const vol = members(bad).find((m) => m.name === "volumes/db.tar.zst") as Member;
  bad[vol.body + 100] ^= 0xff;
  const broken = join(work, "broken.dockpack.tar");
  writeFileSync(broken, bad);
  assert.equal((await validate(broken)).problems[0].code, "PACKAGE_CHECKSUM_MISMATCH");
});

test("--encrypt-all through a registry: push/pull keep the package byte for byte, import REF --identity decrypts", async (t) => {
  if (!needsEngine(t)) return;
  const reg = await startRegistry();
  try {
    const ref = `${reg.host}/${project}/env:enc`;
    await pushPackage({ package: pkg, reference: ref });
    // the volume layers say what they are: age files of a zstd tar
    const { repo } = await openRepository(ref, { credentials: null });
    const { manifest } = await readRemotePackage(repo, "enc").finally(() => repo.transport.close());
    const volumeLayers = manifest.layers.filter((l) => l.annotations?.["dev.dockpack.volume"]);
    assert.ok(volumeLayers.length > 0);
    for (const l of volumeLayers) {
      assert.equal(l.annotations?.["dev.dockpack.encryption"], "age");
      if (!l.annotations?.["dev.dockpack.chunk"])
        assert.equal(l.mediaType, "application/vnd.dockpack.env.volume.v1.tar+zstd+age");
    }
    assert.ok(!manifest.layers.some((l) => l.mediaType.endsWith("tar+zstd")), "no layer claims plain zstd");
    const out = join(work, "pulled");
    const pulled = await pullPackage({ reference: ref, outputDir: out });
    assert.ok(readFileSync(pulled.package).equals(readFileSync(pkg)), "pulled bytes are the pushed ones");
    await assert.rejects(
      importFromRegistry({ cwd: app, reference: ref, targetBranch: "rg" }),
      (e: { code: string }) => e.code === "PACKAGE_ENCRYPTED",
    );
    nothingFor("rg");
    const res = await importFromRegistry({ cwd: app, reference: ref, targetBranch: "rg", identity: [key] });
    assert.equal(readFileSync(join(res.environment.path, ".env"), "utf8"), ENV_TEXT);
    assert.equal(readFileSync(join(res.environment.path, "run.sh"), "utf8"), CODE_TEXT);
    assert.deepEqual(volumeListing(`${project}-rg_db`), volumeListing(`${project}-src_db`));
    assert.equal(cli(["env", "remove", "rg", "--volumes", "--delete-branch", "--force"]).code, 0);
  } finally {
    await reg.stop();
  }
});
