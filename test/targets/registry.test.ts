/**
 * Targets without an engine: init (twice), add (each type), list, verify (each check), the
 * registry's JSON-path errors, unknown fields kept, templates and placeholders, .dockerignore.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { readTar } from "../../src/core/archive.js";
import type { DockpackError } from "../../src/core/errors.js";
import { silentReporter } from "../../src/core/output.js";
import { contextEntries, packContext } from "../../src/targets/context.js";
import { baseImages, parseDockerfile } from "../../src/targets/dockerfile.js";
import {
  addTarget,
  buildAllTargets,
  findPlaceholders,
  initTargets,
  listTargets,
  parseRegistryText,
  planBuild,
  renderTemplate,
  verifyTargets,
} from "../../src/targets/index.js";
import { runCli } from "../helpers/cli.js";
import { makeSampleProject } from "./sample.js";

const r = silentReporter();
const roots: string[] = [];
const project = () => {
  const root = makeSampleProject();
  roots.push(root);
  return root;
};
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

const REG = "docs/packaging/registry.json";
const readReg = (root: string) => JSON.parse(readFileSync(join(root, REG), "utf8"));
const writeReg = (root: string, value: unknown) =>
  writeFileSync(join(root, REG), JSON.stringify(value, null, 2));

describe("targets init", () => {
  test("creates the tree, then is idempotent; --dry-run writes nothing", async () => {
    const root = project();
    const dry = runCli(["--json", "targets", "--root", root, "init", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout);
    assert.equal(planned.dryRun, true);
    assert.ok(planned.created.includes("ops/packaging/AGENTS.md"));
    assert.equal(existsSync(join(root, "ops")), false, "dry run wrote nothing");

    const first = await initTargets({ root }, r);
    for (const rel of [
      "ops/packaging/services/",
      "ops/packaging/jobs/",
      "ops/packaging/apps/",
      "ops/packaging/templates/",
      "ops/packaging/scripts/",
      "ops/packaging/workdocs/",
      "ops/packaging/AGENTS.md",
      "ops/packaging/templates/Dockerfile.node",
      "ops/packaging/templates/Dockerfile.python",
      "ops/packaging/templates/Dockerfile.go",
      REG,
    ]) {
      assert.ok(first.created.includes(rel), rel);
      assert.ok(existsSync(join(root, rel)), rel);
    }
    assert.deepEqual(planned.created, first.created);
    assert.deepEqual(readReg(root), { version: 1, targets: [] });
    // a user edit survives a second init, which creates nothing
    writeFileSync(join(root, "ops/packaging/AGENTS.md"), "ours\n");
    const second = runCli(["--json", "targets", "--root", root, "init"]);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(JSON.parse(second.stdout).created, []);
    assert.equal(readFileSync(join(root, "ops/packaging/AGENTS.md"), "utf8"), "ours\n");
  });

  test("reads the blueprint: registry prefix, seeded targets, containerized types; refuses when disabled", async () => {
    const root = project();
    const bp = {
      features: { packaging: true },
      packaging: {
        enabled: true,
        containerize: ["service"],
        registry: "ghcr.io/acme",
        targets: [
          {
            id: "web",
            type: "service",
            module: "services/web",
            dockerfile: "ops/packaging/services/web.Dockerfile",
            context: ".",
            image: "web",
          },
        ],
      },
    };
    mkdirSync(join(root, "init"));
    writeFileSync(join(root, "init/project-blueprint.json"), JSON.stringify(bp));
    const res = await initTargets({ root }, r);
    assert.ok(res.created.includes("ops/packaging/services/"));
    assert.ok(!res.created.includes("ops/packaging/jobs/"));
    const reg = readReg(root);
    assert.equal(reg.registry, "ghcr.io/acme");
    assert.equal(reg.targets[0].id, "web");

    const off = project();
    mkdirSync(join(off, "init"));
    writeFileSync(
      join(off, "init/project-blueprint.json"),
      JSON.stringify({ features: { packaging: false } }),
    );
    const cli = runCli(["--json", "targets", "--root", off, "init"]);
    assert.equal(cli.code, 1);
    assert.equal(JSON.parse(cli.stdout).error.code, "PACKAGING_DISABLED");
    assert.equal(existsSync(join(off, "ops")), false);
  });
});

describe("targets add", () => {
  test("adds a service, a job and an app from templates; unknown fields are kept", async () => {
    const root = project();
    await initTargets({ root }, r);
    const reg = readReg(root);
    reg.owner = "team-a";
    writeReg(root, reg);

    const web = runCli([
      "--json",
      "targets",
      "--root",
      root,
      "add-service",
      "--id",
      "web",
      "--module",
      "services/web",
      "--port",
      "3000",
    ]);
    assert.equal(web.code, 0, web.stderr);
    assert.equal(JSON.parse(web.stdout).dockerfileCreated, true);
    const job = await addTarget({ root, type: "job", id: "report", module: "jobs/report" }, r);
    assert.equal(job.target.dockerfile, "ops/packaging/jobs/report.Dockerfile");
    const app = await addTarget({ root, type: "app", id: "cli", module: "apps/cli", image: "acme/cli" }, r);
    assert.equal(app.target.image, "acme/cli");

    const after = readReg(root);
    assert.equal(after.owner, "team-a", "unknown top-level field kept");
    assert.deepEqual(
      after.targets.map((t: { id: string; type: string }) => [t.id, t.type]),
      [
        ["web", "service"],
        ["report", "job"],
        ["cli", "app"],
      ],
    );
    const webDf = readFileSync(join(root, "ops/packaging/services/web.Dockerfile"), "utf8");
    assert.match(webDf, /COPY services\/web\/ \.\//);
    assert.match(webDf, /EXPOSE 3000/);
    assert.match(webDf, /CMD \["node", "server.js"\]/);
    assert.match(webDf, /HEALTHCHECK/);
    assert.match(webDf, /^ARG BASE_IMAGE=node:20\.19-bookworm-slim$/m);
    assert.deepEqual(findPlaceholders(webDf), []);
    const jobDf = readFileSync(join(root, "ops/packaging/jobs/report.Dockerfile"), "utf8");
    assert.doesNotMatch(jobDf, /HEALTHCHECK|EXPOSE/, "jobs have no health check or port");
    assert.match(jobDf, /CMD \["python3", "main.py"\]/);
    assert.match(readFileSync(join(root, "ops/packaging/apps/cli.Dockerfile"), "utf8"), /go build/);

    // a second add keeps the unknown field of an existing target too
    const withExtra = readReg(root);
    withExtra.targets[0].owner = "web-team";
    writeReg(root, withExtra);
    await addTarget({ root, type: "service", id: "pyapi", module: "services/pyapi" }, r);
    assert.equal(readReg(root).targets[0].owner, "web-team");
    assert.equal((await listTargets({ root })).targets.length, 4);
    const list = runCli(["targets", "--root", root, "list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /pyapi\s+service\s+services\/pyapi/);
  });

  test("bad input: invalid id, duplicate id, missing module, bad image, unknown template, uninitialised", async () => {
    const root = project();
    const none = runCli(["--json", "targets", "--root", root, "add-service", "--id", "web"]);
    assert.equal(none.code, 1);
    assert.equal(JSON.parse(none.stdout).error.code, "TARGETS_NOT_INITIALIZED");
    await initTargets({ root }, r);
    await addTarget({ root, type: "service", id: "web", module: "services/web" }, r);
    const cases: [string[], string][] = [
      [["--id", "Web_1", "--module", "services/web"], "TARGET_ID_INVALID"],
      [["--id", "web", "--module", "services/web"], "TARGET_EXISTS"],
      [["--id", "ghost", "--module", "services/ghost"], "MODULE_NOT_FOUND"],
      [["--id", "api", "--module", "services/web", "--image", "Bad:Name"], "IMAGE_NAME_INVALID"],
      [["--id", "api", "--module", "services/web", "--template", "cobol"], "TEMPLATE_NOT_FOUND"],
      [["--id", "api", "--module", "../elsewhere"], "PATH_OUTSIDE_ROOT"],
      [["--id", "api", "--module", "services/web", "--context", "jobs"], "MODULE_OUTSIDE_CONTEXT"],
    ];
    for (const [args, code] of cases) {
      const o: Record<string, string> = {};
      for (let i = 0; i < args.length; i += 2) o[args[i].slice(2)] = args[i + 1];
      await assert.rejects(
        addTarget(
          {
            root,
            type: "service",
            id: o.id,
            module: o.module,
            image: o.image,
            template: o.template,
            context: o.context,
          },
          r,
        ),
        (e: DockpackError) => e.code === code && e.usage && Boolean(e.hint),
        code,
      );
    }
    // the CLI maps a usage error to exit 2, the error JSON on stdout and a hint on stderr
    const res = runCli([
      "--json",
      "targets",
      "--root",
      root,
      "add-service",
      "--id",
      "web",
      "--module",
      "services/web",
    ]);
    assert.equal(res.code, 2, res.stderr);
    assert.equal(JSON.parse(res.stdout).error.code, "TARGET_EXISTS");
    assert.match(res.stderr, /hint: /);
    assert.equal(readReg(root).targets.length, 1, "nothing added by the bad calls");
    assert.equal(existsSync(join(root, "ops/packaging/services/api.Dockerfile")), false);
  });
});

describe("registry and verify", () => {
  test("malformed registry.json: errors name the JSON path and line", async () => {
    const syntax = parseRegistryText('{\n  "targets": [\n    { "id": "a", }\n  ]\n}\n');
    assert.equal(syntax.problems[0].path, "$");
    assert.equal(syntax.problems[0].line, 3);
    const text = JSON.stringify(
      {
        targets: [
          { id: "ok", type: "service", module: "m", dockerfile: "d", context: ".", image: "i" },
          { id: "Bad", type: "daemon", module: "m", dockerfile: "d", context: "." },
        ],
      },
      null,
      2,
    );
    const schema = parseRegistryText(text);
    const paths = schema.problems.map((p) => p.path).sort();
    // A missing image defaults to the id (issue 12 A14: the seed's entries have none).
    assert.deepEqual(paths, ["$.targets[1].id", "$.targets[1].type"]);
    assert.ok(schema.problems.every((p) => typeof p.line === "number" && p.line > 10));

    const root = project();
    await initTargets({ root }, r);
    writeFileSync(join(root, REG), text);
    const res = runCli(["--json", "targets", "--root", root, "verify"]);
    assert.equal(res.code, 1);
    const out = JSON.parse(res.stdout);
    assert.equal(out.ok, false);
    assert.ok(
      out.errors.some(
        (e: { code: string; path: string }) =>
          e.code === "REGISTRY_INVALID" && e.path === "$.targets[1].type",
      ),
    );
    const list = runCli(["--json", "targets", "--root", root, "list"]);
    assert.equal(list.code, 1);
    assert.equal(JSON.parse(list.stdout).error.code, "REGISTRY_INVALID");
    assert.match(list.stderr, /\$\.targets\[1\]\.id \(line \d+\)/);
  });

  test("verify reports each check; --strict makes warnings fail", async () => {
    const root = project();
    const bare = await verifyTargets({ root }, r);
    assert.deepEqual(bare.errors.map((e) => e.code).sort(), ["PACKAGING_ROOT_MISSING", "REGISTRY_MISSING"]);

    await initTargets({ root }, r);
    await addTarget({ root, type: "service", id: "web", module: "services/web" }, r);
    await addTarget({ root, type: "job", id: "report", module: "jobs/report" }, r);
    await addTarget({ root, type: "app", id: "cli", module: "apps/cli" }, r); // the Go template
    const clean = runCli(["--json", "targets", "--root", root, "verify", "--strict"]);
    assert.equal(clean.code, 0, clean.stdout);
    assert.deepEqual(JSON.parse(clean.stdout).warnings, []);

    const reg = readReg(root);
    reg.targets.push(
      { ...reg.targets[0] }, // duplicate id
      {
        id: "gone",
        type: "service",
        module: "services/gone",
        dockerfile: "ops/packaging/services/gone.Dockerfile",
        context: "nowhere",
        image: "UPPER",
      },
      {
        id: "raw",
        type: "service",
        module: "services/pyapi",
        dockerfile: "ops/packaging/services/raw.Dockerfile",
        context: ".",
        image: "web",
      },
    );
    writeReg(root, reg);
    writeFileSync(
      join(root, "ops/packaging/services/raw.Dockerfile"),
      'FROM python\nCOPY {{MODULE}}/ /app\nCMD ["python3", "/app/app.py"]\n',
    );
    writeFileSync(join(root, "ops/packaging/services/stray.Dockerfile"), "FROM scratch\n");
    const res = await verifyTargets({ root }, r);
    const codes = (list: { code: string }[]) => [...new Set(list.map((f) => f.code))].sort();
    assert.deepEqual(codes(res.errors), [
      "CONTEXT_MISSING",
      "DOCKERFILE_MISSING",
      "DUPLICATE_ID",
      "IMAGE_NAME_INVALID",
      "MODULE_MISSING",
      "UNRESOLVED_PLACEHOLDER",
    ]);
    assert.deepEqual(codes(res.warnings), [
      "BASE_IMAGE_UNPINNED",
      "DOCKERFILE_UNUSED",
      "DUPLICATE_IMAGE",
      "HEALTHCHECK_MISSING",
      "RUNS_AS_ROOT",
    ]);
    const ph = res.errors.find((e) => e.code === "UNRESOLVED_PLACEHOLDER");
    assert.equal(ph?.line, 2);
    assert.match(ph?.message ?? "", /raw\.Dockerfile:2 .*\{\{MODULE\}\}/);
    assert.equal(res.errors.find((e) => e.code === "DUPLICATE_ID")?.path, "$.targets[3].id");

    // warnings only: ok normally, failing under --strict
    const warnOnly = project();
    await initTargets({ root: warnOnly }, r);
    await addTarget({ root: warnOnly, type: "service", id: "web", module: "services/web" }, r);
    rmSync(join(warnOnly, ".dockerignore"));
    const loose = runCli(["targets", "--root", warnOnly, "verify"]);
    assert.equal(loose.code, 0, loose.stdout);
    assert.match(loose.stdout, /warning DOCKERIGNORE_MISSING/);
    const strict = runCli(["targets", "--root", warnOnly, "verify", "--strict"]);
    assert.equal(strict.code, 1);
    assert.match(strict.stdout, /FAILED: 1 target\(s\), 0 error\(s\), 1 warning\(s\) \(strict\)/);
  });
});

describe("templates, Dockerfiles and build contexts", () => {
  test("placeholders are filled, unknown ones kept, service-only blocks dropped for jobs", () => {
    const tpl = "FROM x\n# >>> service-only\nEXPOSE {{PORT}}\n# <<< service-only\nCMD {{ENTRY}} {{OTHER}}\n";
    const values = { ID: "a", MODULE: ".", PORT: "80", HEALTH_PATH: "/h", ENTRY: "e" };
    assert.equal(renderTemplate(tpl, values, "service"), "FROM x\nEXPOSE 80\nCMD e {{OTHER}}\n");
    assert.equal(renderTemplate(tpl, values, "job"), "FROM x\nCMD e {{OTHER}}\n");
    assert.deepEqual(findPlaceholders("a\n{{ X }} {{Y_2}}"), [
      { name: "X", line: 2 },
      { name: "Y_2", line: 2 },
    ]);
  });

  test("Dockerfile reader: continuations, ARG defaults in FROM, stages", () => {
    const ins = parseDockerfile("ARG BASE=node:20\nFROM $" + "{BASE} AS deps\nRUN a \\\n  && b\nFROM deps\n");
    assert.deepEqual(
      ins.map((i) => [i.keyword, i.line]),
      [
        ["ARG", 1],
        ["FROM", 2],
        ["RUN", 3],
        ["FROM", 5],
      ],
    );
    assert.equal(ins[2].args, "a && b");
    assert.deepEqual(baseImages(ins), [
      { image: "node:20", line: 2, stage: false },
      { image: "deps", line: 5, stage: true },
    ]);
    assert.equal(baseImages(ins, { BASE: "local/x:1" })[0].image, "local/x:1");
  });

  test(".dockerignore: patterns, ** and ! re-includes; Dockerfile and .dockerignore always sent", async () => {
    const root = project();
    writeFileSync(join(root, "services/web/keep.log"), "x");
    const entries = await contextEntries(
      root,
      ["**/*.log", "!services/web/keep.log", "jobs", "Dockerfile.x"],
      [".dockerignore", "Dockerfile.x"],
    );
    assert.ok(entries.includes("services/web/keep.log"));
    assert.ok(!entries.includes("services/web/debug.log"));
    assert.ok(!entries.some((e) => e.startsWith("jobs")));
    assert.ok(entries.includes(".dockerignore"));
    assert.ok(entries.includes("services/web/server.js"));
  });

  test("context tar: streamed with .dockerignore applied; a Dockerfile outside the context is added", async () => {
    const root = project();
    writeFileSync(join(root, "services/web/.dockerignore"), "*.log\n");
    const dockerfile = join(root, "outside.Dockerfile");
    writeFileSync(dockerfile, "FROM scratch\n");
    const packed = await packContext(join(root, "services/web"), null, dockerfile);
    const names: string[] = [];
    await readTar(packed.stream, async (header, body) => {
      names.push(header.name);
      body.resume();
    });
    assert.equal(packed.dockerfile, `.dockpack.${process.pid}.Dockerfile`);
    assert.deepEqual(names.sort(), [".dockerignore", packed.dockerfile, "package.json", "server.js"].sort());
    assert.equal(packed.entries, 4);
  });

  test("build --dry-run prints the exact build without an engine; bad tags and build args are usage errors", async () => {
    const root = project();
    await initTargets({ root }, r);
    await addTarget({ root, type: "service", id: "web", module: "services/web" }, r);
    const env = { DOCKER_HOST: "unix:///nonexistent/docker.sock" };
    const dry = runCli(
      [
        "--json",
        "targets",
        "--root",
        root,
        "build",
        "--target",
        "web",
        "--tag",
        "1.2.0",
        "--tag",
        "latest",
        "--registry",
        "ghcr.io/acme",
        "--build-arg",
        "BASE_IMAGE=local/node:20",
        "--dry-run",
      ],
      { env },
    );
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout).plan;
    assert.deepEqual(plan.tags, ["ghcr.io/acme/web:1.2.0", "ghcr.io/acme/web:latest"]);
    assert.deepEqual(plan.buildArgs, { BASE_IMAGE: "local/node:20" });
    assert.equal(plan.labels["org.opencontainers.image.version"], "1.2.0");
    assert.match(plan.labels["org.opencontainers.image.created"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(
      plan.command,
      /^docker build -f ops\/packaging\/services\/web\.Dockerfile -t ghcr\.io\/acme\/web:1\.2\.0 /,
    );
    const human = runCli(["targets", "--root", root, "build", "--target", "web", "--dry-run"], { env });
    assert.match(human.stdout, /tags: +web:latest/);
    const ctx = (await planBuild({ root, target: "web" })).contextEntries;
    assert.ok(ctx > 5);

    await assert.rejects(planBuild({ root, target: "web", tags: ["-x"] }), { code: "TAG_INVALID" });
    await assert.rejects(planBuild({ root, target: "nope" }), { code: "TARGET_NOT_FOUND" });
    await assert.rejects(buildAllTargets({ root, concurrency: 0 }, r), { code: "CONCURRENCY_INVALID" });
    const badArg = runCli([
      "--json",
      "targets",
      "--root",
      root,
      "build",
      "--target",
      "web",
      "--build-arg",
      "NOEQUALS",
      "--dry-run",
    ]);
    assert.equal(JSON.parse(badArg.stdout).error.code, "BUILD_ARG_INVALID");

    // an engine that does not answer
    const noEngine = runCli(["--json", "targets", "--root", root, "build", "--target", "web"], { env });
    assert.equal(noEngine.code, 1);
    assert.equal(JSON.parse(noEngine.stdout).error.code, "ENGINE_UNAVAILABLE");
    const noEngineAll = runCli(["--json", "targets", "--root", root, "build-all"], { env });
    assert.equal(noEngineAll.code, 1);
    assert.equal(JSON.parse(noEngineAll.stdout).error.code, "ENGINE_UNAVAILABLE");
    assert.match(noEngineAll.stderr, /hint: Start one/);
    // a target whose Dockerfile is missing
    rmSync(join(root, "ops/packaging/services/web.Dockerfile"));
    const missing = runCli(["--json", "targets", "--root", root, "build", "--target", "web", "--dry-run"]);
    assert.equal(missing.code, 1);
    const err = JSON.parse(missing.stdout).error;
    assert.equal(err.code, "DOCKERFILE_NOT_FOUND");
    assert.match(err.message, /web\.Dockerfile' of target 'web'/);
  });
});
