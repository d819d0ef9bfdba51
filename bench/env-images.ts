/**
 * Benchmark of the image section of environment packages (issue 16; not a timed test).
 *
 * An environment with two services — `app` built from a Dockerfile (the Debian fixture plus a
 * generated ~8 MB app folder), `side` a re-tagged busybox fixture — is built as v1; an
 * inventory of the receiving engine is taken as it would be there (`delta inventory` of the v1
 * app image and the side image); one app file changes and v2 is built. Then v2 is exported
 * without images and with `--images missing-from INVENTORY`, and the growth of the package is
 * compared with `docker save APP SIDE | gzip` of the v2 images. Also printed: `--images all`.
 *
 * Usage: node --import tsx bench/env-images.ts [--json]
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silentReporter } from "../src/core/output.js";
import { createInventory } from "../src/delta/inventory.js";
import {
  createEnvironment,
  environmentBuild,
  exportEnvironment,
  initEnvironments,
} from "../src/env/index.js";

const FIXTURES = fileURLToPath(new URL("../scripts/fixtures.sh", import.meta.url));
const sh = (cmd: string, args: string[], cwd?: string) =>
  execFileSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  sh("bash", [FIXTURES, "busybox", "debian"]);
  const project = `dpbenchimg${Math.random().toString(36).slice(2, 6)}`;
  const side = `${project}/side:1`;
  const work = mkdtempSync(join(tmpdir(), "dockpack-bench-env-images-"));
  const app = join(work, "app");
  const cp = `${project}-bench`;
  const appTag = `${cp}_app:latest`;
  const r = silentReporter();
  sh("docker", ["tag", "dockpack-fixture/busybox:1", side]);
  try {
    mkdirSync(join(app, "svc", "site"), { recursive: true });
    writeFileSync(
      join(app, "docker-compose.yml"),
      `version: "2.4"\nservices:\n  app:\n    build: ./svc\n    network_mode: none\n  side:\n    image: ${side}\n    network_mode: none\n`,
    );
    writeFileSync(
      join(app, "svc", "Dockerfile"),
      'FROM dockpack-fixture/debian:bookworm\nCOPY site /srv/site\nCMD ["sleep", "3600"]\n',
    );
    // an app folder: 64 files of 128 KiB (half random, half text)
    for (let i = 0; i < 64; i++)
      writeFileSync(
        join(app, "svc", "site", `f${i}.dat`),
        i % 2 ? randomBytes(128 * 1024) : `${"line of text\n".repeat(10_000)}${i}\n`,
      );
    sh("git", ["init", "-q", "-b", "trunk"], app);
    const commit = (m: string) => {
      sh("git", ["add", "-A"], app);
      sh("git", ["-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-qm", m], app);
    };
    commit("v1");
    await initEnvironments({ cwd: app, project }, r);
    commit("config");
    const env = await createEnvironment({ cwd: app, branch: "bench" }, r);
    await environmentBuild({ cwd: app, branch: "bench" }, r);
    const v1 = sh("docker", ["image", "inspect", "-f", "{{.Id}}", appTag]).trim();
    sh("docker", ["tag", v1, `${project}/app:v1`]);
    const inventory = join(work, "receiver-inventory.json");
    await createInventory({ images: [`${project}/app:v1`, side], output: inventory }, r);

    // v2: one file of the app changes
    const wt = env.path;
    writeFileSync(join(wt, "svc", "site", "f3.dat"), randomBytes(128 * 1024));
    await environmentBuild({ cwd: app, branch: "bench" }, r);
    const v2 = sh("docker", ["image", "inspect", "-f", "{{.Id}}", appTag]).trim();
    const out = join(work, "packages");
    const plain = await exportEnvironment({ cwd: app, branch: "bench", outputDir: out }, r);
    const t0 = performance.now();
    const delta = await exportEnvironment(
      { cwd: app, branch: "bench", outputDir: out, images: { mode: "missing-from", inventory } },
      r,
    );
    const tDelta = (performance.now() - t0) / 1000;
    const all = await exportEnvironment(
      { cwd: app, branch: "bench", outputDir: out, images: { mode: "all" } },
      r,
    );
    const gzip = Number(sh("sh", ["-c", `docker save ${v2} ${side} | gzip -6 | wc -c`]).trim());
    const growth = delta.size - plain.size;
    const result = {
      images: { app_v1: v1, app_v2: v2, side },
      package_without_images: plain.size,
      package_missing_from_inventory: delta.size,
      package_all_images: all.size,
      growth_missing_from: growth,
      growth_all: all.size - plain.size,
      docker_save_gzip: gzip,
      ratio_missing_from: growth / gzip,
      ratio_all: (all.size - plain.size) / gzip,
      export_seconds_missing_from: tDelta,
      section: delta.metadata.images?.map((i) => ({
        id: i.id,
        shipped: i.size,
        full: i.image_size,
        layers: i.layers,
      })),
    };
    if (json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`docker save app:v2 side | gzip -6:        ${gzip} bytes`);
      console.log(`package without images:                 ${plain.size} bytes`);
      console.log(
        `package --images missing-from inventory: ${delta.size} bytes (+${growth}, ${tDelta.toFixed(1)} s)`,
      );
      console.log(`package --images all:                   ${all.size} bytes (+${all.size - plain.size})`);
      console.log(
        `ratio growth / docker save|gzip:         ${(result.ratio_missing_from * 100).toFixed(3)} % (missing-from), ${(result.ratio_all * 100).toFixed(1)} % (all)`,
      );
    }
  } finally {
    try {
      sh("docker", ["rmi", appTag, `${project}/app:v1`, side]);
    } catch {
      // partly made
    }
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
