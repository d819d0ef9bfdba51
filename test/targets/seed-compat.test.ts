/**
 * Issue 12 A14–A17: the seed's registry entries (id/type/module/dockerfile only), the seed's
 * blueprint string form and --blueprint, `${VAR}` in the registry prefix, `.dockerignore` from
 * init, no --port/--health-path on add-job, and `targets remove`.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentReporter } from "../../src/core/output.js";
import { expandVars } from "../../src/targets/expand.js";
import {
  buildTarget,
  initTargets,
  loadRegistry,
  parseRegistryText,
  removeTarget,
} from "../../src/targets/index.js";
import { runCli } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-targets-seed-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const r = silentReporter();

function project(name: string): string {
  const root = join(dir, name);
  mkdirSync(root, { recursive: true });
  return root;
}

test("A14: seed registry entries get context '.' and image = id", () => {
  const res = parseRegistryText(
    JSON.stringify({
      targets: [
        {
          id: "api",
          type: "service",
          module: "services/api",
          dockerfile: "ops/packaging/services/api.Dockerfile",
        },
      ],
    }),
  );
  assert.deepEqual(res.problems, []);
  assert.equal(res.registry?.targets[0].context, ".");
  assert.equal(res.registry?.targets[0].image, "api");
});

test("A15: the seed blueprint's string form and --blueprint PATH", async () => {
  const root = project("bp");
  mkdirSync(join(root, "config"));
  writeFileSync(join(root, "config", "bp.json"), JSON.stringify({ targets: ["services", "jobs"] }));
  const res = await initTargets({ root, blueprint: "config/bp.json" }, r);
  assert.ok(res.created.includes("ops/packaging/services/"));
  assert.ok(res.created.includes("ops/packaging/jobs/"));
  assert.ok(!res.created.includes("ops/packaging/apps/"));
  const cli = runCli(["--json", "targets", "--root", project("bp2"), "init", "--blueprint", "nope.json"]);
  assert.equal(cli.code, 1);
  assert.equal(JSON.parse(cli.stdout).error.code, "BLUEPRINT_NOT_FOUND");
});

test("A16: ${VAR} in the registry prefix is expanded at build time; a missing one is named", async () => {
  assert.equal(
    expandVars("ghcr.io/${GITHUB_REPOSITORY}", "x", { GITHUB_REPOSITORY: "acme/shop" }),
    "ghcr.io/acme/shop",
  );
  assert.equal(expandVars("a$$b", "x", {}), "a$b");
  assert.throws(
    () => expandVars("ghcr.io/${NOPE_X}", "the registry prefix", {}),
    (e: any) => e.code === "TARGETS_VARIABLE_MISSING" && /NOPE_X/.test(e.message),
  );
  const root = project("vars");
  await initTargets({ root }, r);
  mkdirSync(join(root, "services", "api"), { recursive: true });
  writeFileSync(join(root, "ops/packaging/services/api.Dockerfile"), "FROM scratch\n");
  writeFileSync(
    join(root, "docs/packaging/registry.json"),
    JSON.stringify({
      version: 1,
      registry: "ghcr.io/${DOCKPACK_TEST_REPO}",
      targets: [
        {
          id: "api",
          type: "service",
          module: "services/api",
          dockerfile: "ops/packaging/services/api.Dockerfile",
        },
      ],
    }),
  );
  assert.equal((await loadRegistry(root)).registry, "ghcr.io/${DOCKPACK_TEST_REPO}", "stored as written");
  const saved = process.env.DOCKPACK_TEST_REPO;
  try {
    delete process.env.DOCKPACK_TEST_REPO;
    await assert.rejects(
      buildTarget({ root, target: "api", dryRun: true }, r),
      (e: any) => e.code === "TARGETS_VARIABLE_MISSING",
    );
    process.env.DOCKPACK_TEST_REPO = "acme/shop";
    const plan = await buildTarget({ root, target: "api", dryRun: true }, r);
    assert.match(JSON.stringify(plan), /ghcr\.io\/acme\/shop\/api:latest/);
  } finally {
    if (saved === undefined) delete process.env.DOCKPACK_TEST_REPO;
    else process.env.DOCKPACK_TEST_REPO = saved;
  }
});

test("A17: init writes a .dockerignore (never over one); add-job has no --port; targets remove", async () => {
  const root = project("ign");
  const res = await initTargets({ root }, r);
  assert.ok(res.created.includes(".dockerignore"));
  assert.match(readFileSync(join(root, ".dockerignore"), "utf8"), /^\.git$/m);
  const own = project("own");
  writeFileSync(join(own, ".dockerignore"), "mine\n");
  await initTargets({ root: own }, r);
  assert.equal(readFileSync(join(own, ".dockerignore"), "utf8"), "mine\n");

  const help = runCli(["targets", "add-job", "--help"]);
  assert.doesNotMatch(help.stdout, /--port|--health-path/);
  const bad = runCli(["targets", "--root", root, "add-job", "--id", "x", "--port", "80"]);
  assert.equal(bad.code, 2);

  mkdirSync(join(root, "jobs", "report"), { recursive: true });
  writeFileSync(join(root, "jobs", "report", "main.py"), "print(1)\n");
  const added = runCli([
    "--json",
    "targets",
    "--root",
    root,
    "add-job",
    "--id",
    "report",
    "--module",
    "jobs/report",
    "--template",
    "python",
  ]);
  assert.equal(added.code, 0, added.stderr);
  const df = JSON.parse(added.stdout).target.dockerfile;
  assert.ok(existsSync(join(root, df)));
  const removed = await removeTarget({ root, id: "report", deleteDockerfile: true }, r);
  assert.equal(removed.dockerfileDeleted, df);
  assert.equal(existsSync(join(root, df)), false);
  assert.deepEqual((await loadRegistry(root)).targets, []);
  const again = runCli(["--json", "targets", "--root", root, "remove", "report"]);
  assert.equal(again.code, 2);
  assert.equal(JSON.parse(again.stdout).error.code, "TARGET_NOT_FOUND");
});
