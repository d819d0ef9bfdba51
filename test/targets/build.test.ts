/**
 * Targets against the real Docker Engine: the Node and Python templates built on the offline
 * fixture images and run (health endpoint through the published port, HEALTHCHECK goes healthy),
 * .dockerignore honoured, OCI labels, build-all in parallel with one failing target, the failing
 * step reported, and --push's error path (no registry is reachable here).
 *
 * Cost: ~1 min warm (fixture images cached by tag; the builds are a few COPY/RUN steps).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { silentReporter } from "../../src/core/output.js";
import { addTarget, buildAllTargets, buildTarget, initTargets } from "../../src/targets/index.js";
import { runCli } from "../helpers/cli.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { makeSampleProject } from "./sample.js";

const exec = promisify(execFile);
const docker = async (...args: string[]) =>
  (await exec("docker", args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
const r = silentReporter();
const PREFIX = `dockpack-test-targets-${process.pid}`;
const REG = "docs/packaging/registry.json";

let root = "";
let nodeBase = "";
let pyBase = "";
const containers: string[] = [];

before(async () => {
  if (!engineAnswers()) return;
  [nodeBase, pyBase] = await Promise.all([ensureFixture("node"), ensureFixture("python")]);
  root = makeSampleProject();
  await initTargets({ root }, r);
  await addTarget({ root, type: "service", id: "web", module: "services/web" }, r);
  await addTarget({ root, type: "service", id: "pyapi", module: "services/pyapi" }, r);
  await addTarget({ root, type: "job", id: "report", module: "jobs/report" }, r);
  const reg = JSON.parse(readFileSync(join(root, REG), "utf8"));
  reg.registry = PREFIX;
  for (const t of reg.targets) t.buildArgs = { BASE_IMAGE: t.id === "web" ? nodeBase : pyBase };
  writeFileSync(join(root, REG), JSON.stringify(reg, null, 2));
});

after(async () => {
  if (!engineAnswers()) return;
  if (containers.length) await docker("rm", "-f", ...containers).catch(() => "");
  const images = (await docker("images", "--format", "{{.Repository}}:{{.Tag}}"))
    .split("\n")
    .filter((x) => x.startsWith(`${PREFIX}/`) || x.startsWith(`127.0.0.1:9/${PREFIX}`));
  if (images.length) await docker("rmi", "-f", ...images).catch(() => "");
  // a rebuild under the same tag leaves the previous image untagged: remove those too
  const dangling = (
    await docker("images", "-q", "--filter", "dangling=true", "--filter", "label=io.dockpack.target")
  )
    .split("\n")
    .filter(Boolean);
  if (dangling.length) await docker("rmi", "-f", ...dangling).catch(() => "");
  if (root) rmSync(root, { recursive: true, force: true });
});

/** GET over a fresh connection (no keep-alive pool): resolves with status and body. */
function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
  });
}

async function waitFor<T>(what: string, seconds: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((res) => setTimeout(res, 300));
  }
  throw new Error(`timed out after ${seconds}s waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** Starts the image, checks the app through the published port and that HEALTHCHECK goes healthy. */
async function runAndProbe(image: string, greeting: string): Promise<void> {
  const name = `${PREFIX}-${greeting.split(" ").pop()}`;
  containers.push(name);
  await docker("run", "-d", "--name", name, "-p", "127.0.0.1::8080", image);
  const port = (await docker("port", name, "8080/tcp")).split("\n")[0].split(":").pop();
  const body = await waitFor(`${image} on port ${port}`, 20, async () => {
    const res = await httpGet(`http://127.0.0.1:${port}/`);
    return res.status === 200 ? res.body : undefined;
  });
  assert.equal(body, greeting);
  assert.equal((await httpGet(`http://127.0.0.1:${port}/healthz`)).body, "ok");
  const health = await waitFor(`${name} healthy`, 30, async () => {
    const s = await docker("inspect", "-f", "{{.State.Health.Status}}", name);
    if (s === "unhealthy") throw new Error("unhealthy");
    return s === "healthy" ? s : undefined;
  });
  assert.equal(health, "healthy");
  assert.equal(await docker("inspect", "-f", "{{.Config.User}}", name), "10001:10001");
}

describe("targets build on the fixture images", () => {
  test("Node and Python templates build, run and answer their health endpoint", async (t) => {
    if (!needsEngine(t)) return;
    const cli = runCli([
      "--json",
      "targets",
      "--root",
      root,
      "build",
      "--target",
      "web",
      "--tag",
      "1.0.0",
      "--tag",
      "latest",
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    const web = JSON.parse(cli.stdout);
    assert.match(web.imageId, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(web.plan.tags, [`${PREFIX}/web:1.0.0`, `${PREFIX}/web:latest`]);
    assert.match(cli.stderr, /Step \d+\/\d+ : FROM /, "build log streamed to stderr");
    const py = await buildTarget({ root, target: "pyapi" }, r);
    assert.match(py.imageId ?? "", /^sha256:/);

    const labels = JSON.parse(
      await docker("inspect", "-f", "{{json .Config.Labels}}", `${PREFIX}/web:1.0.0`),
    );
    assert.equal(labels["org.opencontainers.image.version"], "1.0.0");
    assert.equal(labels["org.opencontainers.image.title"], "web");
    assert.ok(labels["org.opencontainers.image.source"]);
    assert.ok(labels["org.opencontainers.image.created"]);
    // .dockerignore: services/web/debug.log (matched by **/*.log) is not in the image
    const files = await docker("run", "--rm", "--entrypoint", "ls", `${PREFIX}/web:1.0.0`, "/app");
    assert.ok(files.split("\n").includes("server.js"), files);
    assert.ok(!files.includes("debug.log"), files);

    await Promise.all([
      runAndProbe(`${PREFIX}/web:1.0.0`, "hello from web"),
      runAndProbe(`${PREFIX}/pyapi:latest`, "hello from pyapi"),
    ]);
  });

  test("build-all: parallel, one failing target reported with its step; --continue-on-error builds the rest", async (t) => {
    if (!needsEngine(t)) return;
    const broken = join(root, "ops/packaging/services/broken.Dockerfile");
    writeFileSync(
      broken,
      `FROM ${nodeBase}\nRUN echo preparing\nRUN echo about-to-fail && exit 3\nCMD ["node"]\n`,
    );
    const reg = JSON.parse(readFileSync(join(root, REG), "utf8"));
    reg.targets.unshift({
      id: "broken",
      type: "service",
      module: "services/web",
      dockerfile: "ops/packaging/services/broken.Dockerfile",
      context: ".",
      image: "broken",
    });
    writeFileSync(join(root, REG), JSON.stringify(reg, null, 2));

    const res = runCli([
      "--json",
      "targets",
      "--root",
      root,
      "build-all",
      "--concurrency",
      "2",
      "--continue-on-error",
    ]);
    assert.equal(res.code, 1, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.ok, false);
    const by = Object.fromEntries(out.results.map((x: { target: string }) => [x.target, x]));
    assert.equal(by.broken.status, "failed");
    assert.equal(by.broken.error.code, "TARGET_BUILD_FAILED");
    assert.match(by.broken.error.message, /at Step 3\/\d+ : RUN echo about-to-fail && exit 3/);
    assert.match(by.broken.error.message, /returned a non-zero code: 3/);
    assert.match(by.broken.error.message, /about-to-fail/, "tail of the log");
    for (const id of ["web", "pyapi", "report"]) assert.equal(by[id].status, "built", id);
    assert.match(res.stderr, /\[pyapi\] Step 1\/\d+ : /, "log lines carry the target");

    // without --continue-on-error and one build at a time, nothing starts after the failure
    const stop = await buildAllTargets({ root, concurrency: 1 }, r);
    assert.deepEqual(
      stop.results.map((x) => x.status),
      ["failed", "skipped", "skipped", "skipped"],
    );
    const human = runCli([
      "targets",
      "--root",
      root,
      "build-all",
      "--target",
      "broken",
      "--target",
      "report",
    ]);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /TARGET +IMAGE +STATUS +DURATION/);
    assert.match(human.stdout, /broken +dockpack-test-targets-\d+\/broken:latest +failed/);
  });

  test("--push fails with the engine's error, clearly; the image stays built", async (t) => {
    if (!needsEngine(t)) return;
    const res = runCli([
      "--json",
      "targets",
      "--root",
      root,
      "build",
      "--target",
      "report",
      "--registry",
      `127.0.0.1:9/${PREFIX}`,
      "--push",
    ]);
    assert.equal(res.code, 1);
    const err = JSON.parse(res.stdout).error;
    assert.equal(err.code, "TARGET_PUSH_FAILED");
    assert.match(err.message, new RegExp(`Pushing 127\\.0\\.0\\.1:9/${PREFIX}/report:latest failed: .+`));
    assert.match(err.hint, /registry is reachable/);
    assert.ok(await docker("images", "-q", `127.0.0.1:9/${PREFIX}/report:latest`));
  });
});
