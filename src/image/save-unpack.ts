/**
 * `docker save` unpacked without node touching the bytes: the docker CLI writes straight into
 * GNU tar (`docker save NAMES | tar -x`), one file per member in a temporary directory, and node
 * only reads tar's listing (`-v`, one line per member as it starts) to learn when each member is
 * complete.
 *
 * Why: node unpacking the stream itself (read from the CLI's pipe, parse, write each member)
 * cost 2.7–4.5 s of CPU for the 480 MiB of the delta bench pair, GNU tar 0.7 s; on a 2-core
 * machine that CPU is wall time. Used only when the bytes need no hashing on the way (the engine
 * checks every layer against its diff_id while saving; see image/open's `hashLayers`), the
 * engine is a Unix socket and GNU tar and the docker CLI are installed; otherwise the caller
 * unpacks in node ({@link ExtractedContainer.extract}).
 *
 * Safety: the stream is the engine's own output (names are IDs it generates), and GNU tar is run
 * so that nothing lands outside the directory (it drops leading `/`, refuses `..`, writes
 * symlinks pointing up or out only after everything else, keeps no owner or mode); the
 * directory is then read with lstat only ({@link ExtractedContainer.adopt}).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { lstat, realpath } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { interrupted, onAbort } from "../core/abort.js";
import { dockerHost } from "../core/docker/client.js";
import { DockpackError } from "../core/errors.js";
import { findProgram } from "../core/exec.js";
import { ExtractedContainer, type MemberHook } from "./extract.js";

let gnuTar: string | null | undefined;

/** The path of GNU tar, or null when `tar` is missing or another tar (cached). */
function findGnuTar(): string | null {
  if (gnuTar !== undefined) return gnuTar;
  const tar = findProgram("tar");
  gnuTar = null;
  if (tar) {
    try {
      if (execFileSync(tar, ["--version"], { encoding: "utf8" }).startsWith("tar (GNU tar)")) gnuTar = tar;
    } catch {
      // not usable
    }
  }
  return gnuTar;
}

/** True when {@link unpackSave} can run here (docker CLI, a Unix-socket engine, GNU tar). */
export function canUnpackNatively(): boolean {
  return (
    process.env.DOCKPACK_NODE_UNPACK !== "1" &&
    findProgram("docker") !== null &&
    dockerHost().startsWith("unix://") &&
    findGnuTar() !== null
  );
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once("error", () => resolve(-1));
    child.once("close", (code) => resolve(code));
  });
}

/**
 * Runs `docker save names | tar -x -C dir` (see the module doc) and returns the unpacked
 * container. `onMember` is called for each regular member once tar has moved past it (its path,
 * file and size), before the save ends; `onBytes` with each member's size. The ambient abort
 * signal kills both programs; they have exited before this returns or throws, so the caller may
 * remove `dir` at once. Throws `IMAGE_FAILED` (the CLI's or tar's message), `INTERRUPTED`.
 */
export async function unpackSave(
  names: string[],
  dir: string,
  location: string,
  onMember?: MemberHook,
  onBytes?: (n: number) => void,
): Promise<ExtractedContainer> {
  const tarPath = findGnuTar() as string;
  const docker = findProgram("docker") as string;
  // tar first: node holds only the write end of its stdin, which the CLI gets as its stdout, so
  // node never reads a byte of the stream.
  const tar = spawn(
    tarPath,
    ["-x", "-v", "-f", "-", "-C", dir, "-m", "--no-same-owner", "--no-same-permissions", "-b", "256", "-B"],
    { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } },
  );
  const cli = spawn(docker, ["save", ...names], {
    stdio: ["ignore", tar.stdin, "pipe"],
    env: { ...process.env, DOCKER_HOST: dockerHost() },
  });
  tar.stdin?.destroy();
  let stderr = "";
  for (const [who, child] of [
    ["docker save", cli],
    ["tar", tar],
  ] as const) {
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => {
      stderr = `${stderr}${who}: ${d}`.slice(-4096);
    });
  }
  const cliExit = exitOf(cli);
  const tarExit = exitOf(tar);
  let killed = false;
  const kill = () => {
    killed = true;
    for (const c of [cli, tar]) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  };
  const off = onAbort(kill);
  const listed: string[] = [];
  let root: string | undefined;
  const notified: Promise<void>[] = [];
  // A member is complete once tar names the next one (or exits).
  const complete = async (path: string): Promise<void> => {
    if (path.endsWith("/")) return;
    const file = join(dir, path);
    try {
      const st = await lstat(file);
      root ??= await realpath(dir);
      // Only a regular file reached through real directories (no symlink on the way).
      if (!st.isFile() || (await realpath(file)) !== join(root, path)) return;
      onBytes?.(st.size);
      onMember?.({ path, file, size: st.size });
    } catch {
      // a name tar quoted, or gone: the final walk decides
    }
  };
  const lines = createInterface({ input: tar.stdout as NodeJS.ReadableStream, crlfDelay: Infinity });
  lines.on("line", (line) => {
    const prev = listed.at(-1);
    listed.push(line);
    if (prev !== undefined) notified.push(complete(prev));
  });
  const linesDone = new Promise<void>((resolve) => lines.once("close", () => resolve()));
  try {
    const [cliCode, tarCode] = await Promise.all([cliExit, tarExit, linesDone]);
    if (killed) throw interrupted();
    if (cliCode !== 0 || tarCode !== 0) {
      throw new DockpackError(
        "IMAGE_FAILED",
        `${location} failed (docker save exit ${cliCode}, tar exit ${tarCode})${stderr.trim() ? `: ${stderr.trim()}` : ""}`,
        { hint: "Check the engine (docker info), free space in its data root and in the temp folder." },
      );
    }
    const last = listed.at(-1);
    if (last !== undefined) notified.push(complete(last));
    await Promise.all(notified);
    return await ExtractedContainer.adopt(dir, location, listed);
  } catch (e) {
    kill();
    await Promise.all([cliExit, tarExit]);
    throw e;
  } finally {
    off();
  }
}
