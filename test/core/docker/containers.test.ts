import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { listContainers, startContainers, stopContainers } from "../../../src/core/docker/containers.js";
import { needsEngine } from "../../helpers/engine.js";
import { ensureFixture } from "../../helpers/fixtures.js";

const label = `dpt-ctr-${randomBytes(4).toString("hex")}`;

after(() => {
  const ids = execFileSync("docker", ["ps", "-aq", "--filter", `label=io.dockpack.test=${label}`], {
    encoding: "utf8",
  })
    .split("\n")
    .filter(Boolean);
  if (ids.length) execFileSync("docker", ["rm", "-f", ...ids], { stdio: "ignore" });
});

test("list containers by label, stop and start them", async (t) => {
  if (!needsEngine(t)) return;
  const busybox = await ensureFixture("busybox");
  for (const n of ["a", "b"]) {
    execFileSync(
      "docker",
      [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        `${label}-${n}`,
        "--label",
        `io.dockpack.test=${label}`,
        "--label",
        `role=${n}`,
        busybox,
        "sleep",
        "300",
      ],
      { stdio: "ignore" },
    );
  }
  const all = await listContainers({ labels: { "io.dockpack.test": label } });
  assert.deepEqual(
    all.map((c) => [c.name, c.state, c.image, c.labels.role]),
    [
      [`${label}-a`, "running", busybox, "a"],
      [`${label}-b`, "running", busybox, "b"],
    ],
  );
  assert.match(all[0]?.id ?? "", /^[a-f0-9]{64}$/);
  const onlyB = await listContainers({ labels: { "io.dockpack.test": label, role: "b" } });
  assert.deepEqual(
    onlyB.map((c) => c.name),
    [`${label}-b`],
  );

  const ids = all.map((c) => c.id);
  await stopContainers(ids, { timeoutSeconds: 1 });
  assert.deepEqual(
    (await listContainers({ labels: { "io.dockpack.test": label } })).map((c) => c.state),
    ["exited", "exited"],
  );
  await stopContainers(ids, { timeoutSeconds: 1 }); // stopping stopped containers is fine
  await startContainers(ids);
  await startContainers(ids); // and starting running ones
  assert.deepEqual(
    (await listContainers({ labels: { "io.dockpack.test": label } })).map((c) => c.state),
    ["running", "running"],
  );
});

test("a missing container fails with CONTAINER_NOT_FOUND naming it", async (t) => {
  if (!needsEngine(t)) return;
  const id = "0123456789ab".repeat(5).slice(0, 64);
  for (const fn of [() => startContainers([id]), () => stopContainers([id])]) {
    await assert.rejects(fn, (err: Error & { code?: string }) => {
      assert.equal(err.code, "CONTAINER_NOT_FOUND");
      assert.match(err.message, /0123456789ab/);
      return true;
    });
  }
  assert.deepEqual(await listContainers({ labels: { "io.dockpack.test": `${label}-none` } }), []);
});
