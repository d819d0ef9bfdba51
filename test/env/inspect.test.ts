/**
 * `packages inspect` (and validate's summary): services, volumes with sizes, host ports, bind
 * mounts outside the project, external volumes, privileged and host-namespace settings, read
 * from the packaged compose files without running anything.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { inspectPackage, validatePackage } from "../../src/env/index.js";
import { runCli } from "../helpers/cli.js";
import { craftPackage, tarBytes } from "./craft.js";

let dir = "";
let pkg = "";

const config = `version: 1
project: craft
compose_files:
  - docker-compose.yml
  - ops/extra.yml
worktrees_dir: worktrees
volumes: [db]
env_files: [.env]
`;
const compose = `services:
  web:
    image: nginx
    ports: ["8080:80", "127.0.0.1:5432:5432", "9000"]
    volumes:
      - ./site:/usr/share/nginx/html:ro
      - /:/host
      - \${HOME}/.ssh:/root/.ssh
      - db:/data
  root:
    build: .
    privileged: true
    network_mode: host
    pid: host
    cap_add: [SYS_ADMIN]
    devices: ["/dev/kvm:/dev/kvm"]
volumes:
  db:
  shared:
    external: true
  other:
    external:
      name: legacy-data
`;
const extra = `services:
  sidecar:
    image: busybox
    volumes:
      - type: bind
        source: ../../etc
        target: /etc-host
      - type: bind
        source: ../inside
        target: /ok
    ports:
      - target: 80
        published: 8081
`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dockpack-inspect-"));
  pkg = join(dir, "p.dockpack.tar");
  await craftPackage(pkg, {
    members: [
      { name: "environment/.env", body: "A=1\n", mode: 0o600 },
      { name: "environment/.dockpack/config.yml", body: config },
      { name: "environment/docker-compose.yml", body: compose },
      { name: "environment/ops/extra.yml", body: extra },
    ],
    volumes: [
      {
        name: "db",
        tar: tarBytes([
          { name: "./", type: "5", mode: 0o755 },
          { name: "a", body: "x".repeat(3000) },
        ]),
      },
    ],
    meta: { include_code: false, code_files: 0 },
  });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("inspect lists services, volumes with sizes and every setting that reaches beyond the project", async () => {
  const r = await inspectPackage({ package: pkg });
  assert.equal(r.valid, true, JSON.stringify(r.problems));
  assert.deepEqual(r.compose_files, ["docker-compose.yml", "ops/extra.yml"]);
  assert.deepEqual(
    r.compose.services.map((s) => s.name),
    ["web", "root", "sidecar"],
  );
  assert.equal(r.volumes[0].name, "db");
  assert.equal(r.volumes[0].size, 5120);
  const web = r.compose.services[0];
  assert.deepEqual(web.host_ports, ["8080:80", "127.0.0.1:5432:5432"]);
  assert.deepEqual(web.bind_mounts_outside, ["/", "${HOME}/.ssh"]);
  const root = r.compose.services[1];
  assert.equal(root.privileged, true);
  assert.deepEqual(root.host_namespaces, ["network_mode: host", "pid: host"]);
  assert.deepEqual(root.cap_add, ["SYS_ADMIN"]);
  const sidecar = r.compose.services[2];
  assert.deepEqual(sidecar.bind_mounts_outside, ["../../etc"]);
  assert.deepEqual(sidecar.host_ports, ["8081:80"]);
  assert.deepEqual(r.compose.external_volumes, ["legacy-data", "shared"]);
  for (const needle of [
    "runs privileged",
    "network_mode: host",
    "pid: host",
    "'/'",
    "'../../etc', outside the project folder",
    "'${HOME}/.ssh', from a variable: not interpolated here, its value may point outside the project folder",
    "external volume 'shared'",
  ])
    assert.ok(
      r.warnings.some((w) => w.includes(needle)),
      `${needle} not in ${r.warnings.join("\n")}`,
    );
  const v = await validatePackage({ package: pkg });
  assert.deepEqual(v.services, ["web", "root", "sidecar"]);
  assert.deepEqual(v.warnings, r.warnings);
});

test("packages inspect CLI: text and --json; a hostile YAML (alias bomb) is reported, not expanded", async () => {
  const t = runCli(["packages", "inspect", pkg]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /service root/);
  assert.match(t.stdout, /runs privileged/);
  assert.match(t.stdout, /volume db: 5.0 KiB/);
  const j = runCli(["--json", "packages", "inspect", pkg]);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).compose.services.length, 3);

  const bomb = join(dir, "bomb.dockpack.tar");
  const lol = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 9; i++)
    lol.push(
      `${"abcdefghij"[i]}: &${"abcdefghij"[i]} [${Array(10)
        .fill(`*${"abcdefghij"[i - 1]}`)
        .join(", ")}]`,
    );
  await craftPackage(bomb, {
    members: [
      { name: "environment/.dockpack/config.yml", body: config },
      { name: "environment/docker-compose.yml", body: `${lol.join("\n")}\nservices: {}\n` },
    ],
    meta: { include_code: false, code_files: 0 },
  });
  const r = await inspectPackage({ package: bomb });
  assert.ok(
    r.compose.unreadable.some((u) => u.startsWith("docker-compose.yml")),
    JSON.stringify(r.compose),
  );
  assert.ok(r.compose.unreadable.some((u) => u.startsWith("ops/extra.yml: not in the package")));
});
