import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { needsEngine } from "../../helpers/engine.js";
import { ensureFixture } from "../../helpers/fixtures.js";

function run(image: string, ...cmd: string[]): string {
  return execFileSync("docker", ["run", "--rm", "--network", "none", image, ...cmd], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

test("scratch and busybox fixtures exist and busybox runs, with users by name", async (t) => {
  if (!needsEngine(t)) return;
  assert.equal(await ensureFixture("scratch"), "dockpack-fixture/scratch:1");
  const busybox = await ensureFixture("busybox");
  assert.equal(busybox, "dockpack-fixture/busybox:1");
  assert.equal(run(busybox, "echo", "ok"), "ok");
  assert.equal(
    run(
      busybox,
      "sh",
      "-c",
      "adduser -D -u 1234 app && chown app:app /tmp && stat -c '%U %u %a' /tmp && id -u app",
    ),
    "app 1234 1777\n1234",
  );
  // A second call is a cache hit: the tag already exists.
  const t0 = Date.now();
  await ensureFixture("dockpack-fixture/busybox:1");
  assert.ok(Date.now() - t0 < 5000);
});

test("debian, node and python fixtures run their programs", async (t) => {
  if (!needsEngine(t)) return;
  const debian = await ensureFixture("debian");
  assert.match(run(debian, "cat", "/etc/debian_version"), /^12\./);
  const node = await ensureFixture("node");
  assert.equal(run(node, "node", "-v"), process.version);
  const python = await ensureFixture("python");
  assert.match(run(python, "python3", "-V"), /^Python 3\.\d+/);
});

test("an unknown fixture name fails with the known names", async () => {
  await assert.rejects(
    () => ensureFixture("nope" as "busybox"),
    /unknown fixture 'nope'.*scratch busybox debian node python/s,
  );
});

test("without an engine the script says how to start one", () => {
  const res = spawnSync(
    "bash",
    [fileURLToPath(new URL("../../../scripts/fixtures.sh", import.meta.url)), "busybox"],
    {
      env: { ...process.env, DOCKER_HOST: "unix:///nonexistent/docker.sock" },
      encoding: "utf8",
    },
  );
  assert.notEqual(res.status, 0);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /no Docker Engine answers.*systemctl start docker/);
});
