/**
 * Whether an import's argument is a registry reference or a file — on its own, so that `packages
 * import FILE` does not load the registry client (and with it the image and delta code) just to
 * ask (issue 17: an import's start-up is on its critical path).
 */
import { existsSync } from "node:fs";

/**
 * True when `arg` names a registry artifact rather than a file: `docker://…`, or not an existing
 * path and of the form `host[:port]/repo[:tag|@digest]` with a host containing `.` or `:` or
 * being `localhost`.
 */
export function isRegistryReference(arg: string): boolean {
  if (arg.startsWith("docker://")) return true;
  if (existsSync(arg)) return false;
  const first = arg.split("/")[0];
  return (
    arg.includes("/") &&
    (first.includes(".") || first.includes(":") || first === "localhost") &&
    !arg.endsWith(".tar")
  );
}
