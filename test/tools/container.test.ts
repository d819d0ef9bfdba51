import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { compileTool } from "../../src/tools/compile.js";
import { needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { EXAMPLES, freePort, waitForHttp } from "./helpers.js";

const exec = promisify(execFile);

test("the generated container builds offline, runs as non-root, answers every endpoint, passes test.sh, and runs under docker-compose", async (t) => {
  if (!needsEngine(t)) return;
  const base = await ensureFixture("node");
  const out = join(await mkdtemp(join(tmpdir(), "dockpack-t7-container-")), "pkg");
  const id = `${process.pid}-${Date.now().toString(36)}`;
  const image = `dockpack-t7test/upper:${id}`;
  const container = `dockpack-t7test-upper-${id}`;
  const hostPort = await freePort();
  const env = { ...process.env, IMAGE: image, CONTAINER_NAME: container, HOST_PORT: String(hostPort) };
  const url = `http://127.0.0.1:${hostPort}`;
  try {
    const res = await compileTool({ id: "upper", toolsDir: EXAMPLES, output: out, baseImage: base });
    assert.equal(res.base_image, base);
    const dockerfile = await readFile(join(out, "Dockerfile"), "utf8");
    assert.match(dockerfile, new RegExp(`^ARG BASE_IMAGE=${base}$`, "m"));
    assert.doesNotMatch(dockerfile, /npm (install|ci)|curl/);

    await exec(join(out, "build.sh"), [], { env });
    const [inspect] = JSON.parse((await exec("docker", ["image", "inspect", image])).stdout);
    assert.equal(inspect.Config.User, "10001:10001");
    const health: string[] = inspect.Config.Healthcheck.Test;
    assert.deepEqual(health.slice(0, 3), ["CMD", "node", "-e"]);

    // The container started by run.sh and the compose project (its own container and port)
    // are checked at the same time.
    const viaRunSh = async () => {
      await exec(join(out, "run.sh"), [], { env });
      await waitForHttp(`${url}/api/health`, 30);

      // Every endpoint over real HTTP.
      const root = await (await fetch(`${url}/`)).json();
      assert.equal((root as { tool_id: string }).tool_id, "upper");
      assert.deepEqual(await (await fetch(`${url}/api/health`)).json(), {
        status: "healthy",
        tool_id: "upper",
        version: "1.0.0",
      });
      assert.equal(((await (await fetch(`${url}/api/info`)).json()) as { name: string }).name, "Upper case");
      assert.equal(
        ((await (await fetch(`${url}/openapi.json`)).json()) as { openapi: string }).openapi,
        "3.1.0",
      );
      const invoke = (body: string) =>
        fetch(`${url}/api/invoke`, { method: "POST", body, headers: { "content-type": "application/json" } });
      const ok = await invoke(JSON.stringify({ text: "in a box" }));
      assert.equal(ok.status, 200);
      assert.deepEqual(((await ok.json()) as { result: unknown }).result, { text: "IN A BOX", length: 8 });
      assert.equal((await invoke("{")).status, 400);
      assert.equal((await invoke(JSON.stringify({ text: 3 }))).status, 422);
      assert.match(await (await fetch(`${url}/metrics`)).text(), /tool_requests_total\{tool_id="upper"/);

      // test.sh with curl, and with node (no curl needed).
      const [curlRun, nodeRun] = await Promise.all([
        exec(join(out, "test.sh"), [], { env }),
        exec(join(out, "test.sh"), [], { env: { ...env, TEST_HTTP_CLIENT: "node" } }),
      ]);
      assert.match(curlRun.stdout, /all checks passed/);
      assert.match(nodeRun.stdout, /all checks passed/);
      assert.equal(nodeRun.stdout.match(/^ok /gm)?.length, 9);

      // Non-root inside, and the image's own HEALTHCHECK command succeeds (no curl in the image).
      assert.equal((await exec("docker", ["exec", container, "id", "-u"])).stdout.trim(), "10001");
      await exec("docker", ["exec", container, ...health.slice(1)]);

      // SIGTERM (docker stop) shuts the server down cleanly: exit code 0.
      await exec("docker", ["stop", "-t", "10", container]);
      const state = (await exec("docker", ["inspect", "-f", "{{.State.ExitCode}}", container])).stdout.trim();
      assert.equal(state, "0");
    };
    const viaCompose = async () => {
      // The compose file works with the installed docker-compose (v1): up, test.sh, down. The
      // published port follows API_PORT (issue 13 A8), on 127.0.0.1 only.
      const { HOST_PORT: _, ...envNoHostPort } = env;
      const composeEnv = {
        ...envNoHostPort,
        API_PORT: String(await freePort()),
        COMPOSE_PROJECT_NAME: `dockpack-t7test-${id}`,
      };
      const config = (await exec("docker-compose", ["config"], { cwd: out, env: composeEnv })).stdout;
      assert.match(
        config,
        new RegExp(
          `published: ${composeEnv.API_PORT}|127\\.0\\.0\\.1:${composeEnv.API_PORT}:${composeEnv.API_PORT}`,
        ),
      );
      try {
        await exec(join(out, "docker-compose-up.sh"), [], { env: composeEnv });
        await waitForHttp(`http://127.0.0.1:${composeEnv.API_PORT}/api/health`, 30);
        assert.match((await exec(join(out, "test.sh"), [], { env: composeEnv })).stdout, /all checks passed/);
      } finally {
        await exec("docker-compose", ["down", "-t", "5"], { cwd: out, env: composeEnv }).catch(() => {});
      }
    };
    // Both finish before the clean-up below removes the image (compose may tag it again).
    const settled = await Promise.allSettled([viaRunSh(), viaCompose()]);
    for (const r of settled) if (r.status === "rejected") throw r.reason;
  } finally {
    await exec(join(out, "stop.sh"), [], { env }).catch(() => {});
    await exec("docker", ["rm", "-f", container]).catch(() => {});
    await exec("docker", ["rmi", "-f", image]).catch(() => {});
    await rm(join(out, ".."), { recursive: true, force: true });
  }
});
