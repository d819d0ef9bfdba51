#!/usr/bin/env node
// Runs every test/**/*.test.ts on the node test runner through tsx.
// Usage: node scripts/run-tests.mjs [filter...]   (filters are substrings of the test file paths)
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== "fixtures" && name !== "node_modules") out.push(...walk(p));
    } else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk("test").filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
/** Output lines of a docker command, or null when no engine answers. */
function docker(...args) {
  const r = spawnSync("docker", args, { encoding: "utf8" });
  return r.status === 0 ? r.stdout.split("\n").filter(Boolean) : null;
}

// Builds that a test makes fail on purpose (and multi-stage builds) leave what `docker build`
// always leaves: untagged intermediate images and the failed step's container. Whatever of that
// appeared during this run is removed at the end (never a container or image that existed before,
// never one in use), and the runner says what it removed.
const danglingBefore = new Set(docker("images", "-q", "--no-trunc", "-f", "dangling=true") ?? []);
const containersBefore = new Set(docker("ps", "-aq", "--no-trunc") ?? []);

const concurrency = process.env.DOCKPACK_TEST_CONCURRENCY ?? "2";
const res = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`, ...files],
  { stdio: "inherit" },
);

const newDangling = (docker("images", "-q", "--no-trunc", "-f", "dangling=true") ?? []).filter(
  (id) => !danglingBefore.has(id),
);
if (newDangling.length) {
  const images = new Set(newDangling);
  const buildContainers = (
    docker("ps", "-aq", "--no-trunc", "-f", "status=exited", "-f", "status=created") ?? []
  )
    .filter((id) => !containersBefore.has(id))
    .filter((id) => images.has((docker("inspect", "-f", "{{.Image}}", id) ?? [""])[0]));
  if (buildContainers.length) docker("rm", ...buildContainers);
  let removed = 0;
  for (const id of newDangling) if (docker("rmi", id)) removed++;
  console.error(
    `run-tests: removed ${removed} untagged build image(s) and ${buildContainers.length} failed-build container(s) left by this run`,
  );
}
process.exit(res.status ?? 1);
