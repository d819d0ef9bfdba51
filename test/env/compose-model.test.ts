/**
 * Reading compose projects through the compose CLI on this machine (no engine needed): which
 * files compose loads, env files, a file compose v1 cannot read, a file with many aliases.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { composeCommand } from "../../src/core/docker/compose.js";
import { toDockpackError } from "../../src/core/errors.js";
import { defaultComposeFiles, findEnvFiles, resolveComposeModel } from "../../src/env/compose-model.js";

const dirs: string[] = [];
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "dockpack-cm-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("compose's default files: the override file, COMPOSE_FILE from .env", async () => {
  const a = project({
    "docker-compose.yml": "services: { web: { image: x } }\n",
    "docker-compose.override.yml": "services: { web: { ports: ['80'] } }\n",
  });
  assert.deepEqual(await defaultComposeFiles(a), ["docker-compose.yml", "docker-compose.override.yml"]);
  const b = project({
    "ops/base.yml": "services: { web: { image: x } }\n",
    "ops/dev.yml": "services: { web: { ports: ['80'] } }\n",
    ".env": "COMPOSE_FILE=ops/base.yml:ops/dev.yml\n",
  });
  assert.deepEqual(await defaultComposeFiles(b), ["ops/base.yml", "ops/dev.yml"]);
  await assert.rejects(defaultComposeFiles(project({})), { code: "COMPOSE_MISSING" });
});

test("env files: compose's .env and every env_file (interpolated paths named, not guessed)", async () => {
  const dir = project({
    "app/compose.yaml": [
      "services:",
      "  web: { image: x, env_file: [.env.dev, ../shared.env] }",
      "  db: { image: y, env_file: db.env }",
      "  job: { image: y, env_file: ['${ENV_DIR}/job.env'] }",
      "",
    ].join("\n"),
    "app/.env": "ENV_DIR=.\n",
    "app/.env.dev": "A=1\n",
    "app/db.env": "B=2\n",
    "app/job.env": "C=3\n",
    "shared.env": "D=4\n",
  });
  const model = await resolveComposeModel(dir, ["app/compose.yaml"]);
  const found = await findEnvFiles(dir, ["app/compose.yaml"], model);
  assert.deepEqual(found.envFiles, ["app/.env", "app/.env.dev", "app/db.env", "shared.env"]);
  if (composeCommand().major === 1) assert.ok(found.skipped.some((s) => s.includes("${ENV_DIR}")));
});

test("a file with 200 aliases and merge keys is resolved by compose; a v2-only file is refused with compose's message", async () => {
  const anchors = Array.from({ length: 200 }, (_, i) => `      V${i}: *a${i % 3}`).join("\n");
  const dir = project({
    "compose.yaml": [
      "x-v: { a0: &a0 zero, a1: &a1 one, a2: &a2 two }",
      "x-base: &base",
      "  image: x",
      "  container_name: base",
      "  ports: ['8080:80']",
      "services:",
      "  web:",
      "    <<: *base",
      "    environment:",
      anchors,
      "",
    ].join("\n"),
  });
  const model = await resolveComposeModel(dir, ["compose.yaml"]);
  const web = (model.doc.services as Record<string, { environment: Record<string, string> }>).web;
  assert.equal(Object.keys(web?.environment ?? {}).length, 200);
  assert.deepEqual(
    model.ports.map((p) => p.key),
    ["web:80/tcp"],
  );
  const v2only = project({
    "compose.yaml": "services:\n  web:\n    image: x\n    ports: !reset []\n",
  });
  if (composeCommand().major === 1) {
    const err = await resolveComposeModel(v2only, ["compose.yaml"]).then(
      () => assert.fail("compose v1 read a !reset tag"),
      toDockpackError,
    );
    assert.equal(err.code, "COMPOSE_CONFIG_FAILED");
    assert.match(err.message, /Compose 1\.\d+\.\d+/);
    assert.match(err.message, /!reset/);
    assert.match(err.hint ?? "", /Compose v2/);
  } else {
    const model2 = await resolveComposeModel(v2only, ["compose.yaml"]);
    assert.deepEqual(model2.ports, []);
  }
});
