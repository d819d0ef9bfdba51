/**
 * Test helper for tests that make their own named volumes: `docker(...)` runs the docker CLI and
 * returns its trimmed stdout (throws on a non-zero exit); `volumeScope(tag)` gives a unique name
 * prefix and a list whose volumes are removed (`docker volume rm -f`) after the test file;
 * `helpersFor(volume)` lists the IDs of dockpack's helper containers still attached to a volume;
 * `inVolume(volume, image, script)` runs a shell script with the volume at /data.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after } from "node:test";
import { HELPER_LABEL } from "../../src/core/docker/helper-image.js";

/** Runs `docker ARGS…`; returns stdout, trimmed. Throws when docker exits non-zero. */
export function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** Runs `sh -c script` in a throw-away container of `image` (no network) with `volume` at /data; returns stdout. */
export function inVolume(volume: string, image: string, script: string): string {
  return docker("run", "--rm", "--network", "none", "-v", `${volume}:/data`, image, "sh", "-c", script);
}

/** A test file's volumes: `prefix` (`dpt-<tag>-<8 hex>`) and `created`, removed after the file's tests. */
export function volumeScope(tag: string): { prefix: string; created: string[] } {
  const scope = { prefix: `dpt-${tag}-${randomBytes(4).toString("hex")}`, created: [] as string[] };
  after(() => {
    for (const v of scope.created) {
      try {
        docker("volume", "rm", "-f", v);
      } catch {
        // gone
      }
    }
  });
  return scope;
}

/** IDs (newline-separated, "" when none) of dockpack helper containers labelled with `volume`. */
export function helpersFor(volume: string): string {
  return docker(
    "ps",
    "-aq",
    "--filter",
    `label=${HELPER_LABEL}`,
    "--filter",
    `label=io.dockpack.volume=${volume}`,
  );
}
