/** The persistent cache of `docker-compose version`: a hit asks nothing, a changed program or a corrupt cache asks again. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { cachedComposeVersion } from "../../../src/core/docker/compose-version-cache.js";

const dir = mkdtempSync(join(tmpdir(), "dockpack-compose-cache-"));
process.env.XDG_CACHE_HOME = join(dir, "cache");
after(() => rmSync(dir, { recursive: true, force: true }));

test("docker-compose version is asked once per program file, again after it changes or the cache breaks", () => {
  const prog = join(dir, "docker-compose");
  writeFileSync(prog, "#!/bin/sh\necho docker-compose version 1.29.2\n", { mode: 0o755 });
  let asked = 0;
  const probe = () => {
    asked++;
    return { major: 1 as const, version: "1.29.2" };
  };
  assert.deepEqual(cachedComposeVersion(prog, probe), { major: 1, version: "1.29.2" });
  assert.deepEqual(cachedComposeVersion(prog, probe), { major: 1, version: "1.29.2" });
  assert.equal(asked, 1, "the second run reads the cache");
  utimesSync(prog, new Date(), new Date(Date.now() + 5000));
  cachedComposeVersion(prog, probe);
  assert.equal(asked, 2, "an upgraded program is asked again");
  writeFileSync(join(dir, "cache", "dockpack", "compose-version.json"), "{not json");
  assert.deepEqual(cachedComposeVersion(prog, probe), { major: 1, version: "1.29.2" });
  assert.equal(asked, 3, "a corrupt cache is ignored and rewritten");
  cachedComposeVersion(prog, probe);
  assert.equal(asked, 3);
  assert.deepEqual(
    cachedComposeVersion(prog, () => null),
    { major: 1, version: "1.29.2" },
    "a hit never probes",
  );
  // a failed probe is not cached
  const other = join(dir, "other-compose");
  writeFileSync(other, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
  assert.equal(
    cachedComposeVersion(other, () => null),
    null,
  );
  assert.deepEqual(cachedComposeVersion(other, probe), { major: 1, version: "1.29.2" });
  assert.equal(asked, 4);
});
