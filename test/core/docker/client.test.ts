import assert from "node:assert/strict";
import { test } from "node:test";
import { dockerHost, getDocker, requireEngine } from "../../../src/core/docker/client.js";
import { needsEngine } from "../../helpers/engine.js";

function withHost<T>(host: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.DOCKER_HOST;
  if (host === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = host;
  return fn().finally(() => {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });
}

test("requireEngine answers through the default socket", async (t) => {
  if (!needsEngine(t)) return;
  await withHost(undefined, async () => {
    assert.equal(dockerHost(), "unix:///var/run/docker.sock");
    const docker = await requireEngine();
    const version = await docker.version();
    assert.ok(Number(version.ApiVersion) >= 1.41, `API ${version.ApiVersion}`);
  });
});

test("DOCKER_HOST is honoured: a socket with no engine gives ENGINE_UNAVAILABLE with a hint", async () => {
  await withHost("unix:///nonexistent/docker.sock", async () => {
    await assert.rejects(requireEngine(), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, "ENGINE_UNAVAILABLE");
      assert.match(err.message, /unix:\/\/\/nonexistent\/docker\.sock/);
      assert.match(err.hint ?? "", /systemctl start docker|scripts\/setup\.sh/);
      return true;
    });
  });
  await withHost("tcp://127.0.0.1:1", async () => {
    assert.equal((getDocker().modem as unknown as { port?: number }).port, 1);
    await assert.rejects(requireEngine(), { code: "ENGINE_UNAVAILABLE" });
  });
});

test("an unsupported DOCKER_HOST is a usage error", async () => {
  await withHost("ftp://example", async () => {
    assert.throws(
      () => getDocker(),
      (err: Error & { code?: string; usage?: boolean }) => {
        assert.equal(err.code, "DOCKER_HOST_INVALID");
        assert.equal(err.usage, true);
        return true;
      },
    );
  });
});
