/**
 * Test helper: tests that need a Docker Engine call `needsEngine(t)` first. When no engine
 * answers, the test is skipped locally, and fails under DOCKPACK_REQUIRE_DOCKER=1 (CI).
 */
import { execFileSync } from "node:child_process";
import type { TestContext } from "node:test";

let answer: boolean | undefined;

/** True when `docker version` reaches an engine (cached per process). */
export function engineAnswers(): boolean {
  if (answer === undefined) {
    try {
      execFileSync("docker", ["version", "--format", "{{.Server.Version}}"], {
        stdio: "pipe",
        timeout: 20_000,
      });
      answer = true;
    } catch {
      answer = false;
    }
  }
  return answer;
}

/** Skips (locally) or fails (CI, DOCKPACK_REQUIRE_DOCKER=1) when no Docker Engine answers. Returns true when the test may go on. */
export function needsEngine(t: TestContext): boolean {
  if (engineAnswers()) return true;
  if (process.env.DOCKPACK_REQUIRE_DOCKER === "1") {
    throw new Error(
      "This test needs a Docker Engine and none answers (DOCKPACK_REQUIRE_DOCKER=1). Run scripts/setup.sh.",
    );
  }
  t.skip("no Docker Engine answers");
  return false;
}
