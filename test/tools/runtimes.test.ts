/**
 * Runtime-aware images (issue 13 A1, C): the seed's Python basic_calculator compiled with the
 * default base (a python slim base with node copied in) and with a python-like local base, built
 * offline from fixtures, runs, passes test.sh, turns healthy and follows API_PORT under compose;
 * a base without python is refused at build time with the fix.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { silentReporter } from "../../src/core/output.js";
import { compileTool, DEFAULT_PYTHON_BASE_IMAGE, IMAGE_NODE_PATH } from "../../src/tools/compile.js";
import { needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { EXAMPLES, freePort, waitForHttp } from "./helpers.js";

const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("python basic_calculator: default python base + node stage, build.sh/run.sh/test.sh, healthy, compose follows API_PORT; --base-image python-like; a base without python is refused", async (t) => {
  if (!needsEngine(t)) return;
  const [python, node, debian] = await Promise.all([
    ensureFixture("pyslim"),
    ensureFixture("node"),
    ensureFixture("debian"),
  ]);
  const root = await mkdtemp(join(tmpdir(), "dockpack-t13-py-"));
  const id = `${process.pid}-${Date.now().toString(36)}`;
  const image = `dockpack-t13test/calc:${id}`;
  const container = `dockpack-t13test-calc-${id}`;
  const hostPort = await freePort();
  // build.sh takes the bases from the environment: the local fixtures stand in for the
  // registry's python slim and node images (no registry is reachable here).
  const env = {
    ...process.env,
    IMAGE: image,
    CONTAINER_NAME: container,
    HOST_PORT: String(hostPort),
    BASE_IMAGE: python,
    NODE_IMAGE: node,
  };
  const out = join(root, "default");
  const project = `dockpack-t13test-${id}`;
  let side: Promise<void> | undefined;
  try {
    const res = await compileTool({ id: "basic_calculator", toolsDir: EXAMPLES, output: out });
    assert.equal(res.base_image, DEFAULT_PYTHON_BASE_IMAGE);
    assert.deepEqual(res.runtimes, ["python"]);
    assert.deepEqual(res.warnings, []);
    const dockerfile = await readFile(join(out, "Dockerfile"), "utf8");
    assert.match(dockerfile, /^FROM \$\{NODE_IMAGE\} AS node$/m);
    assert.match(dockerfile, new RegExp(`^COPY --from=node /usr/local/bin/node ${IMAGE_NODE_PATH}$`, "m"));
    assert.match(dockerfile, /command -v python3/);

    // The other two bases build alongside the default image's checks (independent images).
    const { BASE_IMAGE: _, ...envNoBase } = env;
    side = (async () => {
      // --base-image: a python-like local image; node is copied in the same way.
      const custom = join(root, "custom");
      const res2 = await compileTool({
        id: "basic_calculator",
        toolsDir: EXAMPLES,
        output: custom,
        baseImage: python,
      });
      assert.equal(res2.base_image, python);
      assert.deepEqual(res2.warnings, []);
      assert.match(
        await readFile(join(custom, "Dockerfile"), "utf8"),
        new RegExp(`^ARG BASE_IMAGE=${python}$`, "m"),
      );
      await exec(join(custom, "build.sh"), [], { env: { ...envNoBase, IMAGE: `${image}-custom` } });
      const once = await exec("docker", [
        "run",
        "--rm",
        "--network",
        "none",
        `${image}-custom`,
        IMAGE_NODE_PATH,
        "/app/server.cjs",
        "--input",
        JSON.stringify({ operation: "multiply", a: 6, b: 7 }),
      ]);
      assert.deepEqual(JSON.parse(once.stdout), { result: 42, operation: "multiply" });

      // A base without python: compile warns with the fix, the build stops with it.
      const warned: string[] = [];
      const bad = join(root, "nopython");
      const res3 = await compileTool(
        { id: "basic_calculator", toolsDir: EXAMPLES, output: bad, baseImage: debian },
        { ...silentReporter(), warn: (m: string) => warned.push(m) },
      );
      assert.match(res3.warnings.join("\n"), /may have no python3.*--base-image python/);
      assert.equal(warned.length, 1);
      await assert.rejects(
        exec(join(bad, "build.sh"), [], { env: { ...envNoBase, IMAGE: `${image}-bad` } }),
        (e: Error & { stderr?: string; stdout?: string }) => {
          assert.match(`${e.stdout}${e.stderr}`, /runs python3 but BASE_IMAGE .* has none: use --base-image/);
          return true;
        },
      );
    })();
    side.catch(() => {}); // awaited below; a failure there must not go unhandled meanwhile

    await exec(join(out, "build.sh"), [], { env });
    const [inspect] = JSON.parse((await exec("docker", ["image", "inspect", image])).stdout);
    assert.deepEqual(inspect.Config.Healthcheck.Test.slice(0, 2), ["CMD", IMAGE_NODE_PATH]);
    await exec(join(out, "run.sh"), [], { env });
    const url = `http://127.0.0.1:${hostPort}`;
    await waitForHttp(`${url}/api/health`, 30);
    const r = await fetch(`${url}/api/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input_data: { operation: "divide", a: 1, b: 4 } }), // the seed's wrapper
    });
    assert.equal(r.status, 200);
    assert.deepEqual(((await r.json()) as { result: unknown }).result, { result: 0.25, operation: "divide" });
    const checks = await exec(join(out, "test.sh"), [], { env });
    assert.match(checks.stdout, /all checks passed/);
    // The image's HEALTHCHECK turns the container healthy (interval shortened for the test).
    await exec("docker", ["rm", "-f", container]);
    await exec("docker", [
      "run",
      "-d",
      "--name",
      container,
      "--health-interval",
      "1s",
      "--health-start-period",
      "0s",
      "--read-only",
      "--tmpfs",
      "/tmp",
      image,
    ]);
    let health = "";
    for (let i = 0; i < 40 && health !== "healthy"; i++) {
      await sleep(500);
      health = (await exec("docker", ["inspect", "-f", "{{.State.Health.Status}}", container])).stdout.trim();
    }
    assert.equal(health, "healthy");
    await exec("docker", ["rm", "-f", container]);

    // docker-compose (v1) publishes API_PORT from the environment / .env, on 127.0.0.1.
    const apiPort = String(await freePort());
    const composeEnv = { ...env, API_PORT: apiPort, COMPOSE_PROJECT_NAME: project, HOST_PORT: "" };
    try {
      await exec(join(out, "docker-compose-up.sh"), [], { env: composeEnv });
      await waitForHttp(`http://127.0.0.1:${apiPort}/api/health`, 30);
      assert.match((await exec(join(out, "test.sh"), [], { env: composeEnv })).stdout, /all checks passed/);
    } finally {
      await exec("docker-compose", ["down", "-t", "5"], { cwd: out, env: composeEnv }).catch(() => {});
    }

    await side;
  } finally {
    await side?.catch(() => {}); // its images exist (or not) before they are removed
    await exec("docker", ["rm", "-f", container]).catch(() => {});
    for (const tag of [image, `${image}-custom`, `${image}-bad`])
      await exec("docker", ["rmi", "-f", tag]).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
});
