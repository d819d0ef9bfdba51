/**
 * An environment through a registry on the real engine: export → push → pull into a clean folder
 * (identical bytes) → `packages import REF` into another branch → up, data identical; then 1 % of
 * one volume changes, export + push again sends a few % of the first push.
 *
 * Two volumes of DOCKPACK_OCI_RT_MIB MiB each (default 64, half /dev/urandom half text, written
 * by a container); the 200 MiB run is `DOCKPACK_OCI_RT_MIB=200` (figures in
 * docs/commands/registry.md), where the second push must be ≤ 5 % of the first.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  createEnvironment,
  environmentUp,
  exportEnvironment,
  removeEnvironment,
} from "../../../src/env/index.js";
import { pullPackage, pushPackage } from "../../../src/env/registry.js";
import { importFromRegistry } from "../../../src/env/registry-import.js";
import {
  cleanupPrefix,
  fillHalfRandom,
  initAppRepo,
  inVolume,
  sh,
  volumeListing,
} from "../../env/engine-helpers.js";
import { engineAnswers, needsEngine } from "../../helpers/engine.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";

const MIB = Number(process.env.DOCKPACK_OCI_RT_MIB ?? 64);
const project = `dpo${Math.random().toString(36).slice(2, 8)}`;
const vol = (branch: string, v: string) => `${project}-${branch}_${v}`;
let work = "";
let app = "";
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry();
  if (!engineAnswers()) return;
  ({ work, app } = await initAppRepo("dockpack-oci-rt", project));
});
after(async () => {
  if (work) cleanupPrefix(project, work);
  await reg?.stop();
});

test(`two volumes of ${MIB} MiB: export → push → pull → import REF → up, identical; 1 % changed re-sends a few %`, async (t) => {
  if (!needsEngine(t)) return;
  await createEnvironment({ cwd: app, branch: "rt-a" });
  await environmentUp({ cwd: app, branch: "rt-a" });
  fillHalfRandom(vol("rt-a", "media"), "media", MIB);
  fillHalfRandom(vol("rt-a", "db"), "db", MIB);
  const before = { media: volumeListing(vol("rt-a", "media")), db: volumeListing(vol("rt-a", "db")) };

  const exp = await exportEnvironment({ cwd: app, branch: "rt-a", outputDir: join(work, "packages") });
  const ref = `${reg.host}/${project}/env`;
  const first = await pushPackage({ package: exp.package, reference: `${ref}:1` });
  assert.ok(first.layers > 4, `${first.layers} layers`);

  // pull into a clean folder: the same bytes export wrote
  const pulled = await pullPackage({ reference: `${ref}:1`, outputDir: join(work, "clean") });
  assert.ok((await readFile(pulled.package)).equals(await readFile(exp.package)), "pulled bytes differ");

  // import straight from the registry into another branch, then up
  const imp = await importFromRegistry({ cwd: app, reference: `${ref}:1`, targetBranch: "rt-b" });
  assert.equal(imp.environment.composeProject, `${project}-rt-b`);
  await environmentUp({ cwd: app, branch: "rt-b" });
  assert.deepEqual(volumeListing(vol("rt-b", "media")), before.media);
  assert.deepEqual(volumeListing(vol("rt-b", "db")), before.db);
  const running = sh("docker", [
    "ps",
    "-q",
    "--filter",
    `label=com.docker.compose.project=${project}-rt-b`,
  ]).trim();
  assert.ok(running.length > 0, "rt-b is up");
  await removeEnvironment({ cwd: app, branch: "rt-b", force: true, volumes: true }).catch(() => undefined);

  // 1 % of one volume changes (a contiguous run in the middle of its random file)
  const kib = Math.max(64, Math.floor((MIB * 1024) / 100));
  inVolume(
    vol("rt-a", "media"),
    `dd if=/dev/urandom of=/data/media.bin bs=1K count=${kib} seek=${Math.floor((MIB * 1024) / 4)} conv=notrunc 2>/dev/null`,
  );
  const exp2 = await exportEnvironment({ cwd: app, branch: "rt-a", outputDir: join(work, "packages2") });
  const second = await pushPackage({ package: exp2.package, reference: `${ref}:2` });
  const ratio = second.uploadedBytes / first.uploadedBytes;
  t.diagnostic(
    `first push ${first.uploadedBytes} B in ${first.seconds} s, second ${second.uploadedBytes} B in ${second.seconds} s, ratio ${ratio.toFixed(4)}`,
  );
  // What a change costs by construction: the zstd -T0 job around it (level 3: 8 MiB of input, whose
  // output differs to its end), one maximum-size chunk (4 MiB) on each side of the change, and the
  // changed bytes. At 16 MiB that is most of a volume (a fixed 0.3 failed at 0.39); the issue's
  // 200 MiB run must stay within 5 %.
  const allowance = (8 * 2 ** 20 + 2 * 4 * 2 ** 20 + kib * 1024) / first.uploadedBytes;
  assert.ok(ratio <= (MIB >= 200 ? 0.05 : Math.min(0.3, allowance)), `second/first = ${ratio}`);
});
