import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { composeCommand, runCompose } from "../../../src/core/docker/compose.js";
import { listContainers } from "../../../src/core/docker/containers.js";
import { needsEngine } from "../../helpers/engine.js";
import { ensureFixture } from "../../helpers/fixtures.js";

const project = `dpt-compose-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "dpt-compose-"));

after(() => {
  try {
    execFileSync(
      composeCommand().program,
      [...composeCommand().args, "-p", project, "-f", join(dir, "compose.yml"), "down", "-v", "-t", "1"],
      {
        stdio: "ignore",
        cwd: dir,
      },
    );
  } catch {
    // nothing up
  }
  rmSync(dir, { recursive: true, force: true });
});

test("composeCommand picks docker compose v2 or docker-compose v1", () => {
  const cmd = composeCommand();
  assert.ok(
    (cmd.program === "docker" && cmd.args[0] === "compose") ||
      (cmd.program === "docker-compose" && cmd.args.length === 0),
  );
});

test("runCompose brings a two-service project up and down", async (t) => {
  if (!needsEngine(t)) return;
  const busybox = await ensureFixture("busybox");
  writeFileSync(
    join(dir, "compose.yml"),
    [
      'version: "3.8"',
      "services:",
      "  web:",
      `    image: ${busybox}`,
      '    command: ["httpd", "-f", "-p", "8080", "-h", "/tmp"]',
      "  client:",
      `    image: ${busybox}`,
      '    command: ["sh", "-c", "echo $${GREETING} > /tmp/g; sleep 300"]',
      "    environment:",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: compose variable substitution
      "      GREETING: ${GREETING}",
      "    depends_on: [web]",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "vars.env"), "GREETING=hello-from-env-file\n");
  const base = { cwd: dir, projectName: project, files: ["compose.yml"], envFile: "vars.env" };

  const config = await runCompose({ ...base, args: ["config"] });
  assert.match(config.stdout, /hello-from-env-file/, "--env-file is passed");

  await runCompose({ ...base, args: ["up", "-d"] });
  const up = await listContainers({ labels: { "com.docker.compose.project": project } });
  assert.deepEqual(
    up.map((c) => [c.labels["com.docker.compose.service"], c.state]),
    [
      ["client", "running"],
      ["web", "running"],
    ],
  );
  const ps = await runCompose({ ...base, args: ["ps", "-q"] });
  assert.equal(ps.stdout.split("\n").filter(Boolean).length, 2);

  await runCompose({ ...base, args: ["down", "-t", "1"] });
  assert.deepEqual(await listContainers({ labels: { "com.docker.compose.project": project } }), []);
});

test("compose errors name the compose file and show the output tail", async (t) => {
  if (!needsEngine(t)) return;
  writeFileSync(
    join(dir, "broken.yml"),
    'version: "3.8"\nservices:\n  x:\n    image: 42\n    bogus_key: [\n',
  );
  await assert.rejects(
    runCompose({ cwd: dir, projectName: project, files: ["broken.yml"], args: ["config"] }),
    (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, "COMPOSE_FAILED");
      assert.match(err.message, /broken\.yml/);
      assert.match(err.message, /config/);
      assert.ok(err.message.split("\n").length > 1, "the output tail is included");
      return true;
    },
  );
  await assert.rejects(
    runCompose({ cwd: dir, projectName: project, files: ["absent.yml"], args: ["config"] }),
    {
      code: "COMPOSE_FILE_NOT_FOUND",
      message: /absent\.yml/,
    },
  );
  await assert.rejects(runCompose({ cwd: dir, projectName: "Bad Name", files: [], args: ["ps"] }), {
    code: "COMPOSE_PROJECT_INVALID",
  });
});
