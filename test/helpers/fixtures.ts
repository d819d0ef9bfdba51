/**
 * Test helper: offline fixture images, built by scripts/fixtures.sh when their tag is missing
 * and cached by tag (and the Debian root filesystems under /var/cache/dockpack-fixtures), so
 * only the first test run pays for debootstrap. Concurrent test files wait on the script's
 * per-image lock instead of building twice.
 *
 * Call `needsEngine(t)` first: the script needs a Docker Engine.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../scripts/fixtures.sh", import.meta.url));

/** The fixture names and the tags they build. */
export const FIXTURES = {
  scratch: "dockpack-fixture/scratch:1",
  busybox: "dockpack-fixture/busybox:1",
  debian: "dockpack-fixture/debian:bookworm",
  node: "dockpack-fixture/node:20",
  python: "dockpack-fixture/python:3",
  /** python3 with its full standard library (like python:3.12-slim). */
  pyslim: "dockpack-fixture/pyslim:3",
} as const;

/** A fixture name (`busybox`) or its full tag (`dockpack-fixture/busybox:1`). */
export type FixtureName = keyof typeof FIXTURES | (typeof FIXTURES)[keyof typeof FIXTURES];

const pending = new Map<string, Promise<string>>();

/**
 * Ensures the fixture image exists (building it offline when missing) and returns its tag.
 * The script's progress goes to this process's stderr. Rejects with the script's stderr tail
 * when the build fails. Time: ~1 s for scratch/busybox; first Debian-based build a few minutes
 * (debootstrap), later ones seconds (cached root filesystem).
 */
export function ensureFixture(name: FixtureName): Promise<string> {
  const tag = (FIXTURES as Record<string, string>)[name] ?? name;
  let p = pending.get(tag);
  if (!p) {
    p = new Promise<string>((resolve, reject) => {
      const child = execFile(
        "bash",
        [SCRIPT, tag],
        { maxBuffer: 16 * 1024 * 1024, timeout: 30 * 60_000 },
        (err, stdout, stderr) => {
          if (err) {
            pending.delete(tag);
            const tail = String(stderr).trim().split("\n").slice(-10).join("\n");
            reject(new Error(`scripts/fixtures.sh ${tag} failed: ${err.message}\n${tail}`));
          } else resolve(String(stdout).trim().split("\n").pop() ?? tag);
        },
      );
      child.stderr?.on("data", (d) => process.stderr.write(d));
    });
    pending.set(tag, p);
  }
  return p;
}
