/**
 * Test helpers for env tests on the real engine: a temporary git repository holding a copy of
 * examples/compose-app with a unique project name, volume listings through a busybox container,
 * and clean-up of everything a project prefix created (containers, volumes, networks).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { renderEnvConfig } from "../../src/env/config.js";
import { initEnvironments, loadEnvConfig } from "../../src/env/index.js";
import { ensureFixture } from "../helpers/fixtures.js";

export const BUSYBOX = "dockpack-fixture/busybox:1";
const EXAMPLE = fileURLToPath(new URL("../../examples/compose-app", import.meta.url));

/** Runs a program and returns its stdout (throws with stderr on failure). */
export function sh(cmd: string, args: string[], cwd?: string, input?: string): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    input,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** Commits everything in `dir`. */
export function commitAll(dir: string, message: string): void {
  sh("git", ["add", "-A"], dir);
  sh(
    "git",
    ["-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "--allow-empty", "-m", message],
    dir,
  );
}

/** A temp folder with `app/`, a git repository holding a copy of examples/compose-app. */
export function makeAppRepo(prefix: string): { work: string; app: string } {
  const work = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const app = join(work, "app");
  cpSync(EXAMPLE, app, { recursive: true });
  sh("git", ["init", "-q", "-b", "main"], app);
  commitAll(app, "app");
  return { work, app };
}

/** What {@link initAppRepo} made: the temp folder, the repository in it, and the state folder ("" when none). */
export interface AppRepo {
  work: string;
  app: string;
  state: string;
}

/**
 * The set-up of an engine test: the busybox fixture, {@link makeAppRepo}, `dockpack env init` for
 * compose project `project` committed. `state`: a DOCKPACK_STATE_DIR of its own, set in
 * `process.env` (remove with {@link tearDownAppRepo}). `ownPorts`: a host port range of its own,
 * so environments of tests running at the same time never collide.
 */
export async function initAppRepo(
  prefix: string,
  project: string,
  options: { state?: boolean; ownPorts?: boolean } = {},
): Promise<AppRepo> {
  await ensureFixture("busybox");
  const { work, app } = makeAppRepo(prefix);
  const state = options.state ? mkdtempSync(join(tmpdir(), `${prefix}-state-`)) : "";
  await initEnvironments({ cwd: app, project });
  if (options.ownPorts) {
    const lo = 30000 + Math.floor(Math.random() * 90) * 100;
    const config = await loadEnvConfig(app);
    writeFileSync(
      join(app, ".dockpack/config.yml"),
      renderEnvConfig({ ...config, port_range: [lo, lo + 99] }),
    );
  }
  commitAll(app, "dockpack config");
  if (state) process.env.DOCKPACK_STATE_DIR = state;
  return { work, app, state };
}

/** Undoes {@link initAppRepo}: everything named after `project`, the temp and state folders. */
export function tearDownAppRepo(repo: AppRepo, project: string): void {
  if (repo.state) {
    delete process.env.DOCKPACK_STATE_DIR;
    rmSync(repo.state, { recursive: true, force: true });
  }
  if (repo.work) cleanupPrefix(project, repo.work);
}

/**
 * Two age X25519 identities written under `work`: `key` (the one `recipient` encrypts to, mode
 * 0600, with a comment line as age-keygen writes) and `other` (a wrong key).
 */
export async function ageKeys(work: string): Promise<{ key: string; other: string; recipient: string }> {
  const identity = await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  const key = join(work, "key.txt");
  writeFileSync(key, `# created: test\n${identity}\n`, { mode: 0o600 });
  const other = join(work, "other.txt");
  writeFileSync(other, `${await generateX25519Identity()}\n`, { mode: 0o600 });
  return { key, other, recipient };
}

/** Runs a shell script in a busybox container with `volume` mounted at /data. */
export function inVolume(volume: string, script: string, readOnly = false): string {
  return sh("docker", [
    "run",
    "--rm",
    "--network",
    "none",
    "-v",
    `${volume}:/data${readOnly ? ":ro" : ""}`,
    BUSYBOX,
    "sh",
    "-c",
    script,
  ]);
}

/** `path|type|uid:gid|mode|size|links[|->target]|sha256` for every entry of a volume, sorted. */
export function volumeListing(volume: string): string[] {
  return inVolume(
    volume,
    'cd /data && find . | sort | while read -r f; do s=$(stat -c "%F|%u:%g|%a|%s|%h" "$f"); ' +
      'h=-; if [ -f "$f" ] && [ ! -L "$f" ]; then h=$(sha256sum "$f" | cut -d" " -f1); fi; ' +
      'if [ -L "$f" ]; then s="$s|->$(readlink "$f")"; fi; echo "$f|$s|$h"; done',
    true,
  )
    .trim()
    .split("\n");
}

/** Names of Docker volumes starting with `prefix`. */
export function volumesWithPrefix(prefix: string): string[] {
  return sh("docker", ["volume", "ls", "-q", "--filter", `name=${prefix}`])
    .trim()
    .split("\n")
    .filter((v) => v.startsWith(prefix));
}

/** Removes containers, volumes and networks whose names start with `prefix`, and the folder `work`. */
export function cleanupPrefix(prefix: string, work?: string): void {
  const ids = sh("docker", ["ps", "-aq", "--filter", `name=${prefix}`])
    .trim()
    .split("\n")
    .filter(Boolean);
  if (ids.length) sh("docker", ["rm", "-f", ...ids]);
  const vols = volumesWithPrefix(prefix);
  if (vols.length) sh("docker", ["volume", "rm", "-f", ...vols]);
  const nets = sh("docker", ["network", "ls", "-q", "--filter", `name=${prefix}`])
    .trim()
    .split("\n")
    .filter(Boolean);
  if (nets.length) sh("docker", ["network", "rm", ...nets]);
  if (work) rmSync(work, { recursive: true, force: true });
}

/** Fills `volume` with `mib` MiB: half /dev/urandom in `/data/<name>.bin`, half log-like text in `/data/<name>.log`. */
export function fillHalfRandom(volume: string, name: string, mib: number): void {
  const half = Math.max(1, Math.floor(mib / 2));
  inVolume(
    volume,
    `dd if=/dev/urandom of=/data/${name}.bin bs=1M count=${half} 2>/dev/null && ` +
      `seq 1 9999999 | sed 's/$/ INFO GET \\/api\\/items status=200 bytes=512/' | head -c $((${half} * 1048576)) > /data/${name}.log`,
  );
}
