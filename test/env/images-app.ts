/**
 * The two-image environment of the image-section tests (test/env/images*.test.ts): service `app`
 * built from `svc/Dockerfile` (the caller's text), service `side` running the image `side` (a
 * re-tagged fixture), both sleeping with no network, in a git repository with dockpack's config.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { initEnvironments } from "../../src/env/index.js";
import { commitAll, sh } from "./engine-helpers.js";

/** Writes the app into `app` (files under svc/ from `files`), commits it and runs `env init`. */
export async function writeImagesApp(
  app: string,
  project: string,
  side: string,
  files: Record<string, string>,
): Promise<void> {
  mkdirSync(join(app, "svc"), { recursive: true });
  writeFileSync(
    join(app, "docker-compose.yml"),
    [
      'version: "2.4"',
      "services:",
      "  app:",
      "    build: ./svc",
      '    command: ["sh", "-c", "cat /hello.txt; sleep 3600"]',
      "    network_mode: none",
      "  side:",
      `    image: ${side}`,
      '    command: ["sleep", "3600"]',
      "    network_mode: none",
      "",
    ].join("\n"),
  );
  for (const [name, text] of Object.entries(files)) writeFileSync(join(app, "svc", name), text);
  sh("git", ["init", "-q", "-b", "main"], app);
  commitAll(app, "app");
  await initEnvironments({ cwd: app, project });
  commitAll(app, "dockpack config");
}

/** ID of the engine's image `ref`, or null when it has none. */
export function imageId(ref: string): string | null {
  try {
    return sh("docker", ["image", "inspect", "-f", "{{.Id}}", ref]).trim();
  } catch {
    return null;
  }
}

/** Removes the tag `ref` (absent: nothing). */
export function rmTag(ref: string): void {
  try {
    sh("docker", ["rmi", ref]);
  } catch {
    // absent already
  }
}

/**
 * Asserts that compose project `composeProject` runs exactly `app` and `side`, each from the
 * image ID `ids` names, and that the engine saw no pull of an image naming `project` since
 * `since` (epoch seconds).
 */
export function assertStartedWithoutPull(
  composeProject: string,
  ids: Record<string, string>,
  project: string,
  since: number,
): void {
  const label = `label=com.docker.compose.project=${composeProject}`;
  const running = sh("docker", [
    "ps",
    "--filter",
    label,
    "--format",
    '{{.Label "com.docker.compose.service"}}',
  ])
    .trim()
    .split("\n")
    .sort();
  assert.deepEqual(running, ["app", "side"]);
  for (const service of running) {
    const cid = sh("docker", [
      "ps",
      "-q",
      "--filter",
      label,
      "--filter",
      `label=com.docker.compose.service=${service}`,
    ]).trim();
    assert.equal(sh("docker", ["inspect", "-f", "{{.Image}}", cid]).trim(), ids[service]);
  }
  const until = Math.floor(Date.now() / 1000) + 1;
  const pulls = sh(
    "docker",
    ["events", "--since", String(since), "--until", String(until)].concat([
      "--filter",
      "type=image",
      "--filter",
      "event=pull",
      "--format",
      "{{.Actor.ID}}",
    ]),
  ).trim();
  assert.equal(
    pulls
      .split("\n")
      .filter((l) => l.includes(project))
      .join(),
    "",
    "no pull attempted",
  );
}
