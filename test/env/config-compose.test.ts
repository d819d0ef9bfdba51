/** Config schema, compose parsing, per-environment naming and compose rendering (no Docker). */
import assert from "node:assert/strict";
import { test } from "node:test";
import YAML from "yaml";
import { parseComposeConfigOutput, parseComposeVersion } from "../../src/core/docker/compose.js";
import { guessWebPort, modelOf, parsePortEntry, renderEnvCompose } from "../../src/env/compose-file.js";
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

test("compose: ports in short and long syntax, ranges, host IPs, container-only", () => {
  const one = (e: unknown) => parsePortEntry("web", e, "f").map(({ key: _k, ...p }) => p);
  assert.deepEqual(one("8080:80"), [{ service: "web", host: 8080, container: 80, protocol: "tcp" }]);
  assert.deepEqual(one("127.0.0.1:8080:80/udp"), [
    { service: "web", host: 8080, container: 80, protocol: "udp", hostIp: "127.0.0.1" },
  ]);
  assert.deepEqual(one("[::1]:8080:80"), [
    { service: "web", host: 8080, container: 80, protocol: "tcp", hostIp: "::1" },
  ]);
  assert.equal(one("80")[0]?.host, 0);
  assert.equal(one(8080)[0]?.container, 8080);
  assert.equal(one({ target: 80, published: 9000 })[0]?.host, 9000);
  // v2 JSON prints published as a string, host_ip in long syntax
  assert.deepEqual(
    one({ mode: "ingress", target: 80, published: "9000", protocol: "tcp", host_ip: "127.0.0.1" }),
    [{ service: "web", host: 9000, container: 80, protocol: "tcp", hostIp: "127.0.0.1" }],
  );
  const r = one("52000-52002:52000-52002/udp");
  assert.deepEqual(
    r.map((p) => `${p.host}:${p.container}/${p.protocol}`),
    ["52000:52000/udp", "52001:52001/udp", "52002:52002/udp"],
  );
  assert.deepEqual(
    one("8000-8010:80").map((p) => p.host),
    [8000],
  );
  assert.deepEqual(
    one({ target: 80, published: "8000-8002" }).map((p) => p.host),
    [8000],
  );
  assert.deepEqual(
    one("9000-9001").map((p) => p.container),
    [9000, 9001],
  );
  assert.throws(() => parsePortEntry("web", "a:b", "f"), { code: "COMPOSE_INVALID" });
  assert.throws(() => parsePortEntry("web", "80/xyz", "f"), { code: "COMPOSE_INVALID" });
  assert.throws(() => parsePortEntry("web", {}, "f"), { code: "COMPOSE_INVALID" });
});

// What `docker-compose config` (1.29) printed for a file with anchors/merge keys, interpolated
// ports, a range, a container-only port, restart 'no', a `$$`, a bind-style driver_opts volume,
// an explicit volume name and an external volume.
const V1_OUTPUT = `secrets:
  pw:
    file: /src/app/db/password.txt
services:
  db:
    healthcheck:
      interval: 5s
      test:
      - CMD
      - "true"
    image: busybox
    profiles:
    - extra
  web:
    build:
      context: /src/app/web
    container_name: basec
    depends_on:
      db:
        condition: service_healthy
    environment:
      FOO: bar
      X: a$$b
      Y: "yes"
    image: busybox
    ports:
    - 127.0.0.1:8000:9000/tcp
    - protocol: udp
      published: 52000
      target: 52000
    - protocol: udp
      published: 52001
      target: 52001
    - target: 8080
    restart: "no"
    secrets:
    - source: pw
    volumes:
    - /src/app/data:/data:rw
    - db:/db:rw
    - bindvol:/b:rw
version: '3.9'
volumes:
  bindvol:
    driver: local
    driver_opts:
      device: /src/bvdata
      o: bind
      type: none
  db:
    name: mydb
  ext:
    external: true
    name: ext
`;

test("compose v1: config output read as YAML 1.1, per-environment file keeps meaning", () => {
  const doc = parseComposeConfigOutput(V1_OUTPUT, 1);
  const model = modelOf(doc, "f");
  assert.deepEqual(model.volumes, ["bindvol", "db"]);
  assert.deepEqual(model.externalVolumes, ["ext"]);
  assert.deepEqual(model.bindVolumes, [{ name: "bindvol", device: "/src/bvdata" }]);
  assert.deepEqual(
    model.ports.map((p) => `${p.key}=${p.host}`),
    ["web:9000/tcp=8000", "web:52000/udp=52000", "web:52001/udp=52001", "web:8080/tcp=0"],
  );
  assert.equal(guessWebPort(model.ports)?.key, "web:8080/tcp");
  const text = renderEnvCompose(model, {
    composeProject: "shop-b",
    hostPorts: { "web:9000/tcp": 20001, "web:52000/udp": 20002, "web:52001/udp": 20003 },
    bindFolders: { bindvol: "/wt/.dockpack/volumes/bindvol" },
  });
  const out = JSON.parse(text);
  assert.deepEqual(out.services.web.ports, [
    "127.0.0.1:20001:9000/tcp",
    "20002:52000/udp",
    "20003:52001/udp",
    "8080/tcp",
  ]);
  assert.equal(out.services.web.container_name, "shop-b-web");
  assert.equal(out.services.web.restart, "no");
  assert.equal(out.services.web.environment.Y, "yes");
  assert.equal(out.services.web.environment.X, "a$$b");
  assert.equal(out.volumes.db.name, "shop-b_db");
  assert.deepEqual(out.volumes.ext, { external: true, name: "ext" });
  assert.equal(out.volumes.bindvol.driver_opts.device, "/wt/.dockpack/volumes/bindvol");
  assert.equal(out.volumes.bindvol.driver_opts.type, "none");
  assert.equal(out.version, "3.9");
  // the YAML 1.1 reading of the written file (what PyYAML does) keeps the quoted words strings
  const reread = YAML.parse(text, { version: "1.1" });
  assert.equal(reread.services.web.restart, "no");
});

// What `docker compose config --format json` (v2.24) printed for a project with `include`,
// `!reset`, a top-level name, ranges, env_file kept, networks with names.
const V2_OUTPUT = JSON.stringify({
  name: "myapp",
  services: {
    api: {
      build: { context: "/src/app/api", dockerfile: "Dockerfile" },
      command: null,
      container_name: "api",
      env_file: ["/src/app/.env.dev"],
      environment: { A: "1" },
      image: "myapp-api",
      networks: { default: null, back: null },
      ports: [
        { mode: "ingress", host_ip: "127.0.0.1", target: 8000, published: "8000", protocol: "tcp" },
        { mode: "ingress", target: 3000, protocol: "tcp" },
      ],
      restart: "no",
    },
    worker: {
      image: "myapp-worker",
      ports: [
        { mode: "ingress", target: 5000, published: "5000", protocol: "udp" },
        { mode: "ingress", target: 5001, published: "5001", protocol: "udp" },
      ],
    },
  },
  networks: {
    default: { name: "myapp_default" },
    back: { name: "myapp_back" },
    shared: { name: "proxy", external: true },
  },
  volumes: { data: { name: "myapp_data" }, ext: { name: "ext", external: true } },
});

test("compose v2: config --format json output, names made per environment", () => {
  assert.deepEqual(parseComposeVersion("Docker Compose version v2.24.5"), { major: 2, version: "2.24.5" });
  assert.deepEqual(parseComposeVersion("docker-compose version 1.29.2, build unknown"), {
    major: 1,
    version: "1.29.2",
  });
  assert.equal(parseComposeVersion("nothing"), null);
  const model = modelOf(parseComposeConfigOutput(V2_OUTPUT, 2), "f");
  assert.deepEqual(model.externalNetworks, ["shared"]);
  assert.deepEqual(model.volumes, ["data"]);
  assert.deepEqual(
    model.ports.map((p) => `${p.key}=${p.host}`),
    ["api:8000/tcp=8000", "api:3000/tcp=0", "worker:5000/udp=5000", "worker:5001/udp=5001"],
  );
  // a worker's localhost-only port is never the web port; the container-only 3000 on all interfaces is
  assert.equal(guessWebPort(model.ports)?.key, "api:3000/tcp");
  const out = JSON.parse(
    renderEnvCompose(model, {
      composeProject: "myapp-b",
      hostPorts: { "api:8000/tcp": 21000, "worker:5000/udp": 21001, "worker:5001/udp": 21002 },
    }),
  );
  assert.equal(out.name, undefined);
  assert.deepEqual(out.services.api.ports, ["127.0.0.1:21000:8000/tcp", "3000/tcp"]);
  assert.equal(out.services.api.container_name, "myapp-b-api");
  assert.deepEqual(out.services.api.env_file, ["/src/app/.env.dev"]);
  assert.equal(out.networks.default.name, "myapp-b_default");
  assert.equal(out.networks.back.name, "myapp-b_back");
  assert.deepEqual(out.networks.shared, { name: "proxy", external: true });
  assert.equal(out.volumes.data.name, "myapp-b_data");
  assert.equal(out.volumes.ext.name, "ext");
});
