import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { after, test } from "node:test";
import { requireEngine } from "../../../src/core/docker/client.js";
import {
  ensureHelperImage,
  HELPER_IMAGE,
  HELPER_LABEL,
  removeStaleHelpers,
} from "../../../src/core/docker/helper-image.js";
import { needsEngine } from "../../helpers/engine.js";

const made: string[] = [];
after(() => {
  if (made.length) spawnSync("docker", ["rm", "-f", ...made], { stdio: "ignore" });
});

test("the helper image is local, empty and never pulled; stale helper containers are removed", async (t) => {
  if (!needsEngine(t)) return;
  const docker = await requireEngine();
  assert.equal(await ensureHelperImage(docker), HELPER_IMAGE);
  const info = await docker.getImage(HELPER_IMAGE).inspect();
  assert.equal(info.Size, 0);
  assert.deepEqual(info.Config.Cmd, ["/dockpack-helper-never-started"]);

  const dead = spawnSync("true").pid ?? 999_999;
  const create = (pid: number, host: string) =>
    execFileSync(
      "docker",
      [
        "create",
        "--label",
        `${HELPER_LABEL}=1`,
        "--label",
        `io.dockpack.pid=${pid}`,
        "--label",
        `io.dockpack.host=${host}`,
        HELPER_IMAGE,
      ],
      { encoding: "utf8" },
    ).trim();
  const stale = create(dead, hostname());
  const live = create(process.pid, hostname());
  const elsewhere = create(dead, `${hostname()}-other`);
  made.push(stale, live, elsewhere);
  assert.ok((await removeStaleHelpers(docker)) >= 1);
  const left = execFileSync("docker", ["ps", "-aq", "--no-trunc", "--filter", `label=${HELPER_LABEL}`], {
    encoding: "utf8",
  });
  assert.ok(!left.includes(stale), "the helper of a dead process is removed");
  assert.ok(left.includes(live), "the helper of a live process stays");
  assert.ok(left.includes(elsewhere), "helpers of other hosts stay");
});
