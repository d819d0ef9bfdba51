/**
 * env/import-volumes.ts: the volumes of an import are restored while compose resolves the
 * model; a volume compose declares bind-style (`driver_opts` type none, o bind) restored before
 * compose's answer is created plain first and, once the answer is known, created again as
 * declared, its data in the new environment's own folder; a plain volume keeps its restore.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createVolume } from "../../src/core/docker/volumes.js";
import { silentReporter } from "../../src/core/output.js";
import {
  createEnvironment,
  exportEnvironment,
  importPackage,
  initEnvironments,
} from "../../src/env/index.js";
import { readEnvSettings, volumeCreateOptions } from "../../src/env/settings.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { cleanupPrefix, commitAll, inVolume, makeAppRepo, sh } from "./engine-helpers.js";

const project = `dpiv${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";

before(async () => {
  if (!engineAnswers()) return;
  await ensureFixture("busybox");
  ({ work, app } = makeAppRepo("dockpack-iv"));
  const compose = join(app, "docker-compose.yml");
  writeFileSync(
    compose,
    readFileSync(compose, "utf8").replace(
      /\nvolumes:\n {2}db:\n/,
      "\nvolumes:\n  db:\n    driver: local\n    driver_opts:\n      type: none\n      o: bind\n      device: ./db-data\n",
    ),
  );
  commitAll(app, "bind-style db");
  await initEnvironments({ cwd: app, project });
  commitAll(app, "dockpack config");
});

after(() => {
  if (work) cleanupPrefix(project, work);
});

test("import: a bind-style volume is created as compose declares it, a plain one restored at once", async (t) => {
  if (!needsEngine(t)) return;
  const a = await createEnvironment({ cwd: app, branch: "a" });
  const volumeOf = (name: string) => a.volumes.find((v) => v.name === name)?.volume as string;
  // as `env up` would create them: compose's options (db's data in a's own folder)
  const settings = (await readEnvSettings(a.path)) ?? assert.fail("a has no settings");
  for (const name of ["db", "media"])
    await createVolume(
      volumeOf(name),
      { "com.docker.compose.project": a.composeProject, "com.docker.compose.volume": name },
      volumeCreateOptions(settings, name),
    );
  inVolume(volumeOf("db"), "echo db-marker > /data/m");
  inVolume(volumeOf("media"), "echo media-marker > /data/m");
  assert.ok(existsSync(join(a.path, ".dockpack/volumes/db/m")), "a's db data is in a's folder");
  const exp = await exportEnvironment({ cwd: app, branch: "a", outputDir: join(work, "pkg") });

  const said: string[] = [];
  const reporter = { ...silentReporter(), info: (m: string) => said.push(m) };
  const res = await importPackage({ cwd: app, package: exp.package, targetBranch: "b" }, reporter);
  const b = res.environment;
  const bVolume = (name: string) => b.volumes.find((v) => v.name === name)?.volume as string;
  assert.equal(inVolume(bVolume("media"), "cat /data/m", true).trim(), "media-marker");
  assert.equal(readFileSync(join(b.path, ".dockpack/volumes/db/m"), "utf8").trim(), "db-marker");
  const opts = JSON.parse(sh("docker", ["volume", "inspect", "-f", "{{json .Options}}", bVolume("db")]));
  assert.equal(opts.device, join(b.path, ".dockpack/volumes/db"));
  // db, the first volume, was restored before compose's answer: created plain, then again as declared
  assert.ok(
    said.some((m) => m.includes(bVolume("db")) && m.includes("compose declares it otherwise")),
    said.join("\n"),
  );
  assert.ok(!said.some((m) => m.includes(bVolume("media")) && m.includes("otherwise")), said.join("\n"));
  // a's data untouched
  assert.equal(readFileSync(join(a.path, ".dockpack/volumes/db/m"), "utf8").trim(), "db-marker");
});
