/**
 * The main job on the compose files of real open-source projects (test/env/real-compose/<name>/,
 * each folder's ORIGIN.md names the repository and commit), unchanged: init → create a → up a →
 * a marker into every named volume (and a git-ignored file into a bind-mounted folder where the
 * project has one) → export → import as b → up b next to a → markers and data in b, a untouched →
 * standalone import → up. dockpack's services and volumes must equal what `docker-compose
 * config` resolves. Images are the offline stand-in dockpack-fixture/rc-idle:1 re-tagged under
 * the names the files use; `build:` services build from the fixture's minimal Dockerfiles.
 * Prints one line per project. Budget: ~3 min on 2 cores (two projects at a time).
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Reporter } from "../../src/core/output.js";
import { silentReporter } from "../../src/core/output.js";
import { resolveComposeModel } from "../../src/env/compose-model.js";
import { CONFIG_FILE, type EnvConfig, parseEnvConfigText, renderEnvConfig } from "../../src/env/config.js";
import {
  createEnvironment,
  environmentDown,
  environmentUp,
  exportEnvironment,
  importPackage,
  initEnvironments,
} from "../../src/env/index.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { ensureFixture } from "../helpers/fixtures.js";
import { cleanupPrefix, commitAll, inVolume, sh } from "./engine-helpers.js";

const ROOT = fileURLToPath(new URL("./real-compose", import.meta.url));
const IDLE = "dockpack-fixture/rc-idle:1";

/** What the test needs to know about a project beyond its files. */
interface Project {
  /** Folder under test/env/real-compose. */
  name: string;
  /** `--compose-file`s given to init; omitted: compose's own lookup (incl. the override file). */
  composeFiles?: string[];
  /** Files init must pick when `composeFiles` is omitted. */
  expectFiles?: string[];
  /** Env files init must take into the config. */
  expectEnvFiles: string[];
  /** External networks the files expect (created when missing, shared by every environment). */
  externalNetworks?: string[];
  /** A git-ignored file written into a bind-mounted folder of a, expected in b. */
  boundData?: string;
  /** A bind mount outside the repository the export must name in a warning. */
  outsideBind?: string;
  /** The service the URL must point at (null: no URL). */
  web: string | null;
  /** External volumes the files expect (created when missing, shared, never packaged). */
  externalVolumes?: string[];
  /** Services that run (default: every service compose lists; fewer when a profile is off). */
  expectRunning?: string[];
  /** Bind-style driver_opts volumes: their data must be in the environment's own folder. */
  bindVolumes?: string[];
}

const PROJECTS: Project[] = [
  { name: "umami", expectFiles: ["docker-compose.yml"], expectEnvFiles: [], web: "umami" },
  {
    name: "awesome-compose-nginx-golang-postgres",
    composeFiles: ["nginx-golang-postgres/compose.yaml"],
    expectEnvFiles: [],
    web: "proxy",
  },
  {
    name: "n8n-postgres",
    composeFiles: ["docker-compose/withPostgres/docker-compose.yml"],
    expectEnvFiles: ["docker-compose/withPostgres/.env"],
    web: null,
  },
  {
    name: "nextcloud-postgres",
    composeFiles: [".examples/docker-compose/insecure/postgres/apache/compose.yaml"],
    expectEnvFiles: [".examples/docker-compose/insecure/postgres/apache/db.env"],
    web: null,
  },
  {
    name: "paperless-ngx",
    composeFiles: ["docker/compose/docker-compose.postgres.yml"],
    expectEnvFiles: ["docker/compose/.env", "docker/compose/docker-compose.env"],
    web: "webserver",
  },
  {
    name: "penpot",
    composeFiles: ["docker/images/docker-compose.yaml"],
    expectEnvFiles: [],
    web: "penpot-frontend",
  },
  { name: "outline", expectFiles: ["docker-compose.yml"], expectEnvFiles: [], web: null },
  {
    name: "healthchecks",
    composeFiles: ["docker/docker-compose.yml"],
    expectEnvFiles: ["docker/.env"],
    web: "web",
  },
  {
    name: "pure-ftpd",
    expectFiles: ["docker-compose.yml"],
    expectEnvFiles: [],
    outsideBind: "/folder_on_disk/data",
    web: null,
  },
  {
    name: "fastapi-template",
    expectFiles: ["docker-compose.yml", "docker-compose.override.yml"],
    expectEnvFiles: [".env"],
    // traefik-public is external in docker-compose.yml, not in the override: compose says per project
    web: "proxy", // publishes 80; adminer's 8080 comes later in the order 80, 443, 3000, 8000, 8080
  },
  {
    name: "mattermost",
    composeFiles: ["docker-compose.yml", "docker-compose.without-nginx.yml"],
    expectEnvFiles: [".env"],
    boundData: "volumes/app/mattermost/config/dockpack-marker.json",
    web: null,
  },
];

// Not a real project (see its ORIGIN.md): the shapes none of the real ones has.
PROJECTS.push({
  name: "_synthetic-shapes",
  composeFiles: ["app/compose.yaml"],
  expectEnvFiles: ["app/.env"],
  externalVolumes: ["dockpack-rc-synthetic-shared"],
  expectRunning: ["web", "worker"],
  bindVolumes: ["uploads"],
  web: "web", // its container-only 8080 on all interfaces, not the localhost-only 8000s
});

const run = Math.random().toString(36).slice(2, 7);
const addedTags: string[] = [];
const createdNetworks: string[] = [];
const lines: string[] = [];
const outsideFolders = ["/folder_on_disk"].filter((d) => !existsSync(d));

function recorder(): Reporter & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentReporter(), warn: (m: string) => warnings.push(m), warnings };
}

function compose(dir: string, files: string[], args: string[]): string {
  return sh("docker-compose", [...files.flatMap((f) => ["-f", f]), ...args], dir);
}

function running(composeProject: string): Map<string, string> {
  const out = sh("docker", [
    "ps",
    "--filter",
    `label=com.docker.compose.project=${composeProject}`,
    "--format",
    '{{.ID}} {{.Label "com.docker.compose.service"}}',
  ]);
  const m = new Map<string, string>();
  for (const l of out.trim().split("\n").filter(Boolean)) {
    const [id, service] = l.split(" ");
    m.set(service as string, id as string);
  }
  return m;
}

/**
 * Tags the stand-in image under every image name of services without `build:`; returns the
 * image names of `build:` services (compose tags its builds so).
 */
function tagImages(doc: Record<string, unknown>): string[] {
  const built: string[] = [];
  for (const def of Object.values(doc.services as Record<string, { image?: string; build?: unknown }>)) {
    const ref = def.image && (/:[^/]+$/.test(def.image) ? def.image : `${def.image}:latest`);
    if (def.build && ref) built.push(ref);
    if (!ref || def.build) continue;
    if (addedTags.includes(ref)) continue;
    const exists = sh("docker", ["images", "-q", ref]).trim() !== "";
    if (exists) continue;
    sh("docker", ["tag", IDLE, ref]);
    addedTags.push(ref);
  }
  return built;
}

async function mainJob(p: Project): Promise<string> {
  const started = Date.now();
  const project = `rc${run}${p.name.replace(/[^a-z0-9]/g, "").slice(0, 12)}`;
  const work = mkdtempSync(join(tmpdir(), `dockpack-rc-${p.name}-`));
  const app = join(work, "app");
  const steps: string[] = [];
  let mark = Date.now();
  const lap = () => {
    const s = ((Date.now() - mark) / 1000).toFixed(1);
    mark = Date.now();
    return `${s}s`;
  };
  const built: string[] = [];
  try {
    cpSync(join(ROOT, p.name, "repo"), app, { recursive: true });
    sh("git", ["init", "-q", "-b", "main"], app);
    sh("git", ["add", "-A", "-f"], app);
    // env files the project git-ignores stay untracked, as in a user's checkout
    const ignored = p.expectEnvFiles.filter((f) => isIgnored(app, f));
    if (ignored.length) sh("git", ["rm", "-q", "--cached", "--", ...ignored], app);
    commitAll(app, "project");
    for (const n of p.externalNetworks ?? [])
      if (sh("docker", ["network", "ls", "-q", "--filter", `name=^${n}$`]).trim() === "") {
        sh("docker", ["network", "create", "--label", "io.dockpack.test=real-compose", n]);
        createdNetworks.push(n);
      }
    for (const v of p.externalVolumes ?? [])
      if (sh("docker", ["volume", "ls", "-q", "--filter", `name=^${v}$`]).trim() === "") {
        sh("docker", ["volume", "create", "--label", "io.dockpack.test=real-compose", v]);
      }

    // init: compose resolves the model; dockpack's view equals compose's
    const init = await initEnvironments({ cwd: app, project, composeFiles: p.composeFiles });
    const files = init.config.compose_files;
    if (p.expectFiles) assert.deepEqual(files, p.expectFiles, "compose files init picked");
    assert.deepEqual([...init.config.env_files].sort(), [...p.expectEnvFiles].sort(), "env files");
    const model = await resolveComposeModel(app, files);
    const all = compose(app, files, ["config", "--services"]).trim().split("\n").sort();
    assert.deepEqual([...model.services].sort(), all, "services equal docker-compose config");
    const services = p.expectRunning ?? all;
    const composeVolumes = compose(app, files, ["config", "--volumes"]).trim().split("\n").filter(Boolean);
    assert.deepEqual(
      [...init.config.volumes, ...model.externalVolumes].sort(),
      composeVolumes.sort(),
      "volumes equal docker-compose config",
    );
    built.push(...tagImages(model.doc));
    // each project its own host port range, away from other tests' 20000–29999
    const cfgPath = join(app, CONFIG_FILE);
    const lo = 31000 + PROJECTS.indexOf(p) * 120;
    const cfg = { ...parseEnvConfigText(readFileSync(cfgPath, "utf8")), port_range: [lo, lo + 119] };
    writeFileSync(cfgPath, renderEnvConfig(cfg as EnvConfig));
    commitAll(app, "dockpack config");
    steps.push(`init ${all.length} services/${init.config.volumes.length} volumes ${lap()}`);

    // a
    await createEnvironment({ cwd: app, branch: "a" });
    const a = await environmentUp({ cwd: app, branch: "a" });
    const upA = running(a.composeProject);
    assert.deepEqual([...upA.keys()].sort(), services, `every service of a runs`);
    const published = model.ports.filter((x) => x.host !== 0).length;
    assert.equal(
      Object.keys(a.ports).filter((k) => model.ports.find((x) => x.key === k)?.host).length,
      published,
      "every published port has a host port of a",
    );
    if (p.web) assert.match(a.url ?? "", /^http:\/\/localhost:\d+\/$/, "a's URL");
    if (p.web) {
      const webKey = Object.entries(a.ports).find(([, v]) => a.url?.includes(`:${v}/`))?.[0] ?? "";
      assert.ok(webKey.startsWith(`${p.web}:`), `the URL is the web service's (${webKey})`);
    } else assert.equal(a.url, null, "no URL for a project without a web service on all interfaces");
    for (const v of a.volumes) inVolume(v.volume, `echo '${p.name} a ${v.name}' > /data/.dockpack-marker`);
    for (const n of p.externalNetworks ?? []) assert.ok(a.shared.networks.includes(n), `shared network ${n}`);
    assert.equal(a.shared.volumes.length, p.externalVolumes?.length ?? 0, "shared volumes listed");
    for (const v of p.bindVolumes ?? [])
      assert.ok(
        existsSync(join(a.path, ".dockpack/volumes", v, ".dockpack-marker")),
        `${v}'s data is in a's own folder`,
      );
    if (p.boundData) {
      mkdirSync(join(a.path, p.boundData, ".."), { recursive: true });
      writeFileSync(join(a.path, p.boundData), `{"from":"a"}\n`);
    }
    steps.push(`up a (${upA.size} containers, ${Object.keys(a.ports).length} ports) ${lap()}`);

    // export → import as b → up b next to a
    const rep = recorder();
    const exp = await exportEnvironment({ cwd: app, branch: "a", outputDir: join(work, "pkg") }, rep);
    for (const f of p.expectEnvFiles) assert.ok(exp.metadata.environment_files.includes(f), `packaged ${f}`);
    if (p.boundData) assert.ok(exp.metadata.environment_files.includes(p.boundData), "bind data packaged");
    if (p.outsideBind)
      assert.ok(
        rep.warnings.some((w) => w.includes(p.outsideBind as string)),
        `export warns about ${p.outsideBind}: ${rep.warnings.join("; ")}`,
      );
    await importPackage({ cwd: app, package: exp.package, targetBranch: "b" });
    const b = await environmentUp({ cwd: app, branch: "b" });
    const upB = running(b.composeProject);
    assert.deepEqual([...upB.keys()].sort(), services, "every service of b runs");
    const aHosts = new Set(Object.values(a.ports));
    for (const port of Object.values(b.ports)) assert.ok(!aHosts.has(port), `b's host port ${port} is a's`);
    for (const v of b.volumes)
      assert.equal(inVolume(v.volume, "cat /data/.dockpack-marker", true).trim(), `${p.name} a ${v.name}`);
    if (p.boundData) assert.equal(readFileSync(join(b.path, p.boundData), "utf8"), `{"from":"a"}\n`);
    for (const v of p.bindVolumes ?? [])
      assert.ok(existsSync(join(b.path, ".dockpack/volumes", v, ".dockpack-marker")), `${v} in b's folder`);
    // a untouched: same containers still running, markers in place
    assert.deepEqual(running(a.composeProject), upA, "a's containers were not replaced");
    for (const v of a.volumes)
      assert.equal(inVolume(v.volume, "cat /data/.dockpack-marker", true).trim(), `${p.name} a ${v.name}`);
    steps.push(`export ${(exp.size / 1024).toFixed(0)} KiB + import/up b ${lap()}`);

    // standalone import → up
    const alone = join(work, "standalone");
    // its own compose project, under this test's prefix (projects run concurrently on one engine)
    const s = await importPackage({
      package: exp.package,
      standalone: alone,
      targetBranch: "s",
      project: `${project}sa`,
    });
    const upS = await environmentUp({ cwd: s.repository, branch: "s" });
    assert.deepEqual([...running(upS.composeProject).keys()].sort(), services, "every service of s runs");
    for (const v of upS.volumes)
      assert.equal(inVolume(v.volume, "cat /data/.dockpack-marker", true).trim(), `${p.name} a ${v.name}`);
    steps.push(`standalone import+up ${lap()}`);
    for (const [cwd, branch] of [
      [app, "a"],
      [app, "b"],
      [s.repository, "s"],
    ] as const)
      await environmentDown({ cwd, branch });
    return `real-compose ${p.name}: ok — ${steps.join(", ")} (${((Date.now() - started) / 1000).toFixed(1)} s)`;
  } catch (err) {
    lines.push(`real-compose ${p.name}: FAILED after ${steps.join(", ") || "nothing"}`);
    throw err;
  } finally {
    cleanupPrefix(project, work);
    // by name, never by ID: a build on the stand-in may share its image ID with other tags in use
    const refs = sh("docker", [
      "images",
      "--format",
      "{{.Repository}}:{{.Tag}}",
      "--filter",
      `reference=${project}*`,
    ]);
    for (const ref of new Set([...refs.trim().split("\n"), ...built].filter(Boolean))) untag(ref);
  }
}

/** Removes one image name (an image that keeps other names stays); a name already gone is fine. */
function untag(ref: string): void {
  try {
    sh("docker", ["rmi", ref]);
  } catch (err) {
    if (!/No such image/.test(String((err as { stderr?: unknown }).stderr ?? err))) throw err;
  }
}

function isIgnored(dir: string, file: string): boolean {
  try {
    sh("git", ["check-ignore", "-q", "--no-index", file], dir);
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  if (!engineAnswers()) return;
  await ensureFixture("busybox");
  if (sh("docker", ["images", "-q", IDLE]).trim() === "")
    sh("docker", ["build", "-q", "-t", IDLE, join(ROOT, "_image")]);
});

after(() => {
  // The re-tagged stand-ins (one image under many names) and the synthetic project's empty
  // external volume stay, like the other fixtures: a concurrent run of this file (another
  // checkout's CI on the same engine) may be using them right now.
  if (addedTags.length) console.log(`# real-compose: stand-in tags kept: ${addedTags.join(" ")}`);
  for (const n of createdNetworks) sh("docker", ["network", "rm", n]);
  for (const d of outsideFolders) rmSync(d, { recursive: true, force: true });
  for (const l of lines) console.log(l);
});

const only = process.env.DOCKPACK_RC_ONLY?.split(",");
describe("real compose projects", { concurrency: 4 }, () => {
  for (const p of PROJECTS.filter((x) => !only || only.includes(x.name)))
    test(`main job: ${p.name}`, async (t) => {
      if (!needsEngine(t)) return;
      const line = await mainJob(p);
      lines.push(line);
    });
});
