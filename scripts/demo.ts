/**
 * `npm run demo`: the whole dockpack story on the embedded example (examples/compose-app), in a
 * temporary copy, offline, on the local fixture image dockpack-fixture/busybox:1:
 *
 *   init → create environment demo-a → up → write data (db records, media files of several
 *   owners and modes, a symlink, a hardlink, an empty folder) → export → validate → list →
 *   import as demo-b → start it (both run side by side) → compare the volumes file by file →
 *   summary → clean up (also on failure or Ctrl-C).
 *
 * Every step runs the real CLI (`node --import tsx src/cli/main.ts …`) and prints the command.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");
/** tsx resolved from here: Node resolves --import from the cwd, which is a temp folder. */
const TSX = import.meta.resolve("tsx");
const IMAGE = "dockpack-fixture/busybox:1";
const bold = (s: string) => (process.stdout.isTTY ? `\u001b[1m${s}\u001b[0m` : s);

let work = "";
let app = "";
const created: string[] = [];

function step(title: string): void {
  console.log(`\n${bold(`== ${title}`)}`);
}

/** Runs `dockpack args…` in the app folder, echoing the command; returns parsed JSON under --json. */
// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON results, read field by field below
function dockpack(args: string[], opts: { json?: boolean; allowFail?: boolean } = {}): any {
  const full = opts.json ? ["--json", ...args] : args;
  console.log(`$ dockpack ${full.join(" ")}`);
  const res = spawnSync(process.execPath, ["--import", TSX, MAIN, ...full], {
    cwd: app,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  if (!opts.json && res.stdout.trim()) process.stdout.write(`${res.stdout.trimEnd().replace(/^/gm, "  ")}\n`);
  if (res.status !== 0 && !opts.allowFail)
    throw new Error(`dockpack ${full.join(" ")} failed (exit ${res.status})`);
  return opts.json ? JSON.parse(res.stdout) : res.stdout;
}

function sh(cmd: string, args: string[], cwd = app): string {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** path|type|uid:gid|mode|size|links|sha256 for every entry of a volume, sorted. */
function listing(volume: string): string[] {
  const script =
    'cd /data && find . | sort | while read -r f; do s=$(stat -c "%F|%u:%g|%a|%s|%h" "$f"); ' +
    'h=-; if [ -f "$f" ] && [ ! -L "$f" ]; then h=$(sha256sum "$f" | cut -d" " -f1); fi; ' +
    'if [ -L "$f" ]; then s="$s|->$(readlink "$f")"; fi; echo "$f|$s|$h"; done';
  return sh("docker", [
    "run",
    "--rm",
    "--network",
    "none",
    "-v",
    `${volume}:/data:ro`,
    IMAGE,
    "sh",
    "-c",
    script,
  ])
    .trim()
    .split("\n");
}

async function httpStatus(url: string): Promise<string> {
  for (let i = 0; i < 20; i++) {
    try {
      const res = await fetch(url);
      return `${res.status} ${(await res.text()).match(/<h1>(.*)<\/h1>/)?.[1] ?? ""}`;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return "no answer";
}

function cleanup(): void {
  if (!app) return;
  console.log(`\n${bold("== clean up")}`);
  for (const b of created.reverse())
    dockpack(["env", "remove", b, "--volumes", "--delete-branch", "--force"], { allowFail: true });
  if (work) rmSync(work, { recursive: true, force: true });
  app = "";
}

async function main(): Promise<void> {
  const t0 = Date.now();
  step("fixture image (built offline, cached)");
  sh("bash", [join(ROOT, "scripts/fixtures.sh"), "busybox"], ROOT);
  console.log(`  ${IMAGE}`);

  step("a temporary copy of examples/compose-app as a git repository");
  work = mkdtempSync(join(tmpdir(), "dockpack-demo-"));
  app = join(work, "compose-app");
  cpSync(join(ROOT, "examples/compose-app"), app, { recursive: true });
  sh("git", ["init", "-q", "-b", "main"]);
  sh("git", ["add", "-A"]);
  sh("git", ["-c", "user.name=demo", "-c", "user.email=demo@localhost", "commit", "-q", "-m", "demo app"]);
  console.log(`  ${app}`);

  step("init");
  dockpack(["env", "init", "--project", "dpdemo"]);
  sh("git", ["add", ".dockpack/config.yml"]);
  sh("git", [
    "-c",
    "user.name=demo",
    "-c",
    "user.email=demo@localhost",
    "commit",
    "-q",
    "-m",
    "dockpack config",
  ]);

  step("create environment demo-a and start it");
  created.push("demo-a");
  dockpack(["env", "create", "demo-a"]);
  const a = dockpack(["env", "up", "demo-a"], { json: true });
  console.log(`  ${a.composeProject}: ${a.status}, ${a.url}`);

  step("write data: db records, media files of several owners and modes");
  const db = a.containers.find((c: { service: string }) => c.service === "db").name;
  const web = a.containers.find((c: { service: string }) => c.service === "web").name;
  for (const text of ["alice signed up", "bob ordered 3 widgets", "carol left a review"])
    console.log(`  ${sh("docker", ["exec", db, "sh", "/app/db.sh", "insert", text]).trim()}: ${text}`);
  sh("docker", [
    "exec",
    web,
    "sh",
    "-c",
    "cd /srv/www/media && mkdir -p photos/2024 uploads/empty private && " +
      "dd if=/dev/urandom of=photos/2024/cat.jpg bs=1k count=300 2>/dev/null && chown 1000:1000 photos/2024/cat.jpg && chmod 644 photos/2024/cat.jpg && " +
      "echo secret > private/key.txt && chown 2000:3000 private/key.txt && chmod 600 private/key.txt && chmod 700 private && " +
      "echo '#!/bin/sh' > run.sh && chmod 755 run.sh && ln -s photos/2024/cat.jpg latest.jpg && ln photos/2024/cat.jpg photos/cat-hardlink.jpg && " +
      "chown 33:33 uploads && chmod 2775 uploads",
  ]);
  console.log(
    `  media: ${listing(`${a.composeProject}_media`).length} entries; web says: ${await httpStatus(a.url)}`,
  );

  step("export");
  const exp = dockpack(["packages", "export", "demo-a", "--output-dir", "packages"], { json: true });
  console.log(
    `  ${exp.package}\n  ${exp.size} bytes, ${exp.metadata.volumes.length} volumes, ${exp.seconds.toFixed(2)} s`,
  );

  step("validate and list");
  dockpack(["packages", "validate", exp.package]);
  dockpack(["packages", "list", "--package-dir", "packages"]);

  step("import as demo-b and start it next to demo-a");
  created.push("demo-b");
  const imp = dockpack(["packages", "import", exp.package, "--target-branch", "demo-b"], { json: true });
  console.log(`  imported in ${imp.seconds.toFixed(2)} s into ${imp.environment.path}`);
  const b = dockpack(["env", "up", "demo-b"], { json: true });
  console.log(`  demo-a ${a.url} → ${await httpStatus(a.url)}`);
  console.log(`  demo-b ${b.url} → ${await httpStatus(b.url)}`);
  dockpack(["env", "list"]);

  step("check the data is identical");
  let identical = true;
  const rows: string[] = [];
  for (const v of ["db", "media"]) {
    const la = listing(`${a.composeProject}_${v}`);
    const lb = listing(`${b.composeProject}_${v}`);
    const same = JSON.stringify(la) === JSON.stringify(lb);
    identical &&= same;
    rows.push(
      `  volume ${v}: ${la.length} entries in demo-a, ${lb.length} in demo-b: ${same ? "identical" : "DIFFERENT"}`,
    );
    if (!same) for (const line of la.filter((l) => !lb.includes(l))) rows.push(`    only in demo-a: ${line}`);
  }
  console.log(rows.join("\n"));
  const dbB = b.containers.find((c: { service: string }) => c.service === "db").name;
  console.log(`  db records in demo-b: ${sh("docker", ["exec", dbB, "sh", "/app/db.sh", "count"]).trim()}`);

  step("summary");
  console.log(
    [
      `  package:  ${exp.package.split("/").pop()} (${exp.size} bytes)`,
      `  export:   ${exp.seconds.toFixed(2)} s   import: ${imp.seconds.toFixed(2)} s`,
      `  demo-a:   ${a.url}   demo-b: ${b.url} (both running)`,
      `  volumes:  ${identical ? "identical after the round trip (path, type, owner, mode, size, links, sha256)" : "DIFFERENT"}`,
      `  total:    ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    ].join("\n"),
  );
  if (!identical) throw new Error("the imported volumes differ");
}

for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => {
    cleanup();
    process.exit(130);
  });

main()
  .then(() => cleanup())
  .catch((err) => {
    console.error(`demo failed: ${(err as Error).message}`);
    cleanup();
    process.exitCode = 1;
  });
