/** Config schema, compose parsing, per-environment naming and compose rendering (no Docker). */
import assert from "node:assert/strict";
import { test } from "node:test";
import YAML from "yaml";
import { modelOf, parsePortEntry, renderEnvCompose } from "../../src/env/compose-file.js";
import { parseEnvConfig, parseEnvConfigText } from "../../src/env/config.js";
import { checkBranchName, composeProjectName, sanitizeName, volumeName } from "../../src/env/naming.js";

const base = { version: 1, project: "shop", compose_files: ["docker-compose.yml"], volumes: ["db"] };

test("config: defaults are filled in", () => {
  const c = parseEnvConfig(base);
  assert.equal(c.worktrees_dir, "worktrees");
  assert.deepEqual(c.env_files, [".env"]);
  assert.deepEqual(c.port_range, [20000, 29999]);
});

test("config: an unknown or mistyped key is an error naming its path", () => {
  assert.throws(
    () => parseEnvConfig({ ...base, volumez: [] }),
    (e: { code?: string; message: string }) =>
      e.code === "ENV_CONFIG_INVALID" && /volumez: unknown key/.test(e.message),
  );
  assert.throws(
    () => parseEnvConfig({ ...base, web: { service: "web", prot: 80 } }),
    (e: { code?: string; message: string }) =>
      /web\.prot: unknown key/.test(e.message) && /web\.port/.test(e.message),
  );
  assert.throws(
    () => parseEnvConfig({ ...base, volumes: "db" }),
    (e: { code?: string; message: string }) => /volumes:/.test(e.message),
  );
  assert.throws(
    () => parseEnvConfigText("project: [unclosed", "x.yml"),
    (e: { code?: string; message: string }) => e.code === "ENV_CONFIG_INVALID" && /x\.yml/.test(e.message),
  );
  assert.throws(() => parseEnvConfig({ ...base, port_range: [3000, 2000] }), /port_range/);
});

test("naming: branches are sanitised into compose project and volume names", () => {
  assert.equal(sanitizeName("feature/Login.v2"), "feature-login-v2");
  assert.equal(composeProjectName("shop", "feature/login"), "shop-feature-login");
  assert.equal(volumeName("shop-feature-login", "db"), "shop-feature-login_db");
  assert.throws(() => checkBranchName("bad..name"), { code: "ENV_BRANCH_INVALID" });
  assert.throws(() => checkBranchName("-x"), { code: "ENV_BRANCH_INVALID" });
  checkBranchName("feature/ok-1");
});

test("compose: ports in short and long syntax; ranges refused", () => {
  assert.deepEqual(parsePortEntry("web", "8080:80", "f"), {
    service: "web",
    host: 8080,
    container: 80,
    protocol: "tcp",
  });
  assert.deepEqual(parsePortEntry("web", "127.0.0.1:8080:80/udp", "f"), {
    service: "web",
    host: 8080,
    container: 80,
    protocol: "udp",
    hostIp: "127.0.0.1",
  });
  assert.equal(parsePortEntry("web", "80", "f")?.host, 0);
  assert.equal(parsePortEntry("web", { target: 80, published: 9000 }, "f")?.host, 9000);
  assert.throws(() => parsePortEntry("web", "8000-8010:80", "f"), { code: "COMPOSE_INVALID" });
});

test("compose: the per-environment file moves ports, names containers and volumes per project", () => {
  const doc = YAML.parse(`
version: "2.4"
services:
  web: { image: x, ports: ["8080:80"], container_name: web }
  db: { image: y, volumes: ["db:/var/lib/db"] }
volumes:
  db: {}
  media: { name: fixed-media }
  shared: { external: true }
`);
  const model = modelOf(doc, "f");
  assert.deepEqual(model.volumes, ["db", "media"]);
  assert.deepEqual(model.externalVolumes, ["shared"]);
  const out = YAML.parse(
    renderEnvCompose(model, { composeProject: "shop-b", hostPorts: { "web:80/tcp": 20001 } }),
  );
  assert.deepEqual(out.services.web.ports, ["20001:80/tcp"]);
  assert.equal(out.services.web.container_name, "shop-b-web");
  assert.equal(out.volumes.media.name, "shop-b_media");
  assert.equal(out.volumes.shared.external, true);
});
