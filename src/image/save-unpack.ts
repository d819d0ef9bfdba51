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
 *
 * With `pack` (delta create `-m layer`, which ships whole layers compressed), each layer tar
 * (`<id>/layer.tar`, the layout of Docker < 25) is compressed by zstd while it streams, through
 * tar's `--to-command`, so the save, the unpacking and the compression overlap like `docker save
 * | zstd -T0` does, and the uncompressed layers are never written (layers the caller will not
 * read are dropped: neither compressed nor written); node hashes each compressed layer as soon
 * as zstd finished it, while the save goes on. Tar then creates nothing
 * itself: a small sh script writes each member, refusing names other than plain relative paths
 * of `[A-Za-z0-9._/-]` without `..` (the engine's names are IDs), and reports each finished
 * member on file descriptor 3 (kind, size, name).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { lstat, mkdir, realpath, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { interrupted, onAbort } from "../core/abort.js";
import { zstdLevelArgs } from "../core/codec.js";
import { digestFile } from "../core/digest.js";
import { dockerHost } from "../core/docker/client.js";
import { DockpackError } from "../core/errors.js";
import { findProgram } from "../core/exec.js";
import { ExtractedContainer, type MemberHook, type PackedMember } from "./extract.js";

let gnuTar: Promise<string | null> | undefined;

/**
 * The path of GNU tar, or null when `tar` is missing or another tar (cached; `tar --version`
 * runs once, without blocking the event loop, so it overlaps the engine's inspections).
 */
function findGnuTar(): Promise<string | null> {
  gnuTar ??= new Promise((resolve) => {
    const tar = findProgram("tar");
    if (!tar) return resolve(null);
    execFile(tar, ["--version"], { encoding: "utf8" }, (err, out) =>
      resolve(!err && out.startsWith("tar (GNU tar)") ? tar : null),
    );
  });
  return gnuTar;
}

/** True when {@link unpackSave} can run here (docker CLI, a Unix-socket engine, GNU tar). */
export async function canUnpackNatively(): Promise<boolean> {
  return (
    process.env.DOCKPACK_NODE_UNPACK !== "1" &&
    findProgram("docker") !== null &&
    dockerHost().startsWith("unix://") &&
    (await findGnuTar()) !== null
  );
}

/** Compression of layer members on the way (see the module doc). */
export interface PackOptions {
  /** zstd level (see core/codec's zstdLevelArgs). */
  level: number;
  /** Layers above this many bytes get `--long=27`. */
  longAbove: number;
  /**
   * Positions (0 = bottom) of layers the caller will not read (the target has them): such a
   * layer is read from the stream and dropped, neither compressed nor written (listed with its
   * size; see {@link ExtractedContainer.dropped}). Applies to a save of one image; a layer's
   * position is known from its `json` member's parent chain when its parent came first in the
   * stream, else the layer is compressed like the others. Only speed depends on this: the caller
   * uses {@link ExtractedContainer.packed} and checks that every dropped layer is one of these.
   */
  drop?: number[];
}

/**
 * The `--to-command` of a packing unpack (tar runs it with `sh -c` per regular member, the
 * member's bytes on stdin and its name and size in TAR_FILENAME and TAR_SIZE).
 */
const PACK_SCRIPT = `umask 077
n=\${TAR_FILENAME#./}
case $n in ''|/*|*..*|*//*|*[!A-Za-z0-9._/-]*) echo "unexpected member name: $n" >&2; exit 3;; esac
f=$DOCKPACK_PACK_DIR/$n
x=\${n%/*}
S=$DOCKPACK_PACK_STATE
case $n in */*) d=\${f%/*}; [ -d "$d" ] || mkdir -p "$d" || exit 3;; esac
k=r
case $n in */layer.tar)
  i=-; [ -r "$S/$x" ] && read -r i < "$S/$x"
  case " $DOCKPACK_PACK_SKIP " in *" $i "*) k=d;; *) k=z;; esac;;
esac
if [ $k = z ]; then
  l=; [ "$TAR_SIZE" -gt "$DOCKPACK_PACK_LONG_ABOVE" ] && l=--long=27
  "$DOCKPACK_ZSTD" -q -c -T0 $DOCKPACK_PACK_LEVEL $l > "$f" || exit 4
elif [ $k = d ]; then cat > /dev/null || exit 4
else cat > "$f" || exit 4; fi
case $n in */json)
  j=; IFS= read -r j < "$f"
  case $j in
  '{"id":"'"$x"'","parent":"'*)
    p=\${j#*'","parent":"'}; p=\${p%%'"'*}; e=
    case $p in *[!0-9a-f]*|'') ;; *) [ -r "$S/$p" ] && read -r e < "$S/$p";; esac
    case $e in *[!0-9]*|'') ;; *) echo $((e + 1)) > "$S/$x";; esac;;
  '{"id":"'"$x"'",'*) echo 0 > "$S/$x";;
  esac;;
esac
printf '%s %s %s\\n' "$k" "$TAR_SIZE" "$n" >&3
`;

/** True when {@link unpackSave} can pack (zstd installed besides {@link canUnpackNatively}). */
export async function canPackNatively(): Promise<boolean> {
  return findProgram("zstd") !== null && (await canUnpackNatively());
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
 * file and size), before the save ends; `onBytes` with each member's size. With `pack`, layer
 * tars are stored zstd-compressed (see the module doc and {@link ExtractedContainer.packed}) and
 * `onMember` is called for the other members only. The ambient abort signal kills both
 * programs; they (and tar's scripts) have exited before this returns or throws, so the caller
 * may remove `dir` at once. Throws `IMAGE_FAILED` (the CLI's, tar's or zstd's message),
 * `INTERRUPTED`.
 */
export async function unpackSave(
  names: string[],
  dir: string,
  location: string,
  onMember?: MemberHook,
  onBytes?: (n: number) => void,
  pack?: PackOptions,
): Promise<ExtractedContainer> {
  const tarPath = (await findGnuTar()) as string;
  const docker = findProgram("docker") as string;
  const common = ["-x", "-v", "-f", "-", "-b", "256", "-B"];
  // The script's notes (each layer directory's position), removed before the directory is read.
  const state = join(dir, ".dockpack-pack");
  if (pack) await mkdir(state);
  // tar first: node holds only the write end of its stdin, which the CLI gets as its stdout, so
  // node never reads a byte of the stream.
  const tar = spawn(
    tarPath,
    pack
      ? [...common, "--to-command", PACK_SCRIPT]
      : [...common, "-C", dir, "-m", "--no-same-owner", "--no-same-permissions"],
    {
      stdio: ["pipe", "pipe", "pipe", pack ? "pipe" : "ignore"],
      env: {
        ...process.env,
        LC_ALL: "C",
        ...(pack
          ? {
              DOCKPACK_PACK_DIR: dir,
              DOCKPACK_ZSTD: findProgram("zstd") as string,
              DOCKPACK_PACK_LEVEL: zstdLevelArgs(pack.level).join(" "),
              DOCKPACK_PACK_LONG_ABOVE: String(pack.longAbove),
              DOCKPACK_PACK_SKIP: (pack.drop ?? []).join(" "),
              DOCKPACK_PACK_STATE: state,
            }
          : {}),
      },
    },
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
  const packed = new Map<string, PackedMember>();
  const dropped = new Map<string, number>();
  // Each compressed member is hashed as soon as zstd finished it, while the save goes on.
  const hashing: Promise<void>[] = [];
  // Closed once tar and every script it started have exited (they all hold fd 3).
  let scriptsDone: Promise<void> = Promise.resolve();
  if (pack) {
    // The listing only keeps tar writing to node (it dies on a broken pipe once node is gone);
    // the script reports each member once written, on fd 3.
    lines.on("line", () => undefined);
    const done = createInterface({ input: tar.stdio[3] as NodeJS.ReadableStream, crlfDelay: Infinity });
    done.on("line", (line) => {
      const m = /^([zrd]) (\d+) (\S+)$/.exec(line);
      if (!m) return;
      const size = Number(m[2]);
      const name = m[3];
      listed.push(name);
      if (m[1] === "z") {
        const member: PackedMember = { codec: "zstd", level: pack.level, long: size > pack.longAbove, size };
        packed.set(name, member);
        onBytes?.(size);
        const hashed = digestFile(join(dir, name)).then((d) => {
          member.stored = d;
        });
        hashed.catch(() => undefined); // awaited below
        hashing.push(hashed);
      } else if (m[1] === "d") {
        dropped.set(name, size);
        onBytes?.(size);
      } else notified.push(complete(name));
    });
    scriptsDone = new Promise<void>((resolve) => done.once("close", () => resolve()));
    notified.push(scriptsDone);
  } else {
    lines.on("line", (line) => {
      const prev = listed.at(-1);
      listed.push(line);
      if (prev !== undefined) notified.push(complete(prev));
    });
  }
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
    if (!pack && last !== undefined) notified.push(complete(last));
    await Promise.all(notified);
    await Promise.all(hashing);
    if (pack) await rm(state, { recursive: true, force: true });
    return await ExtractedContainer.adopt(dir, location, listed, packed, dropped);
  } catch (e) {
    kill();
    await Promise.all([cliExit, tarExit, scriptsDone, ...hashing.map((h) => h.catch(() => undefined))]);
    throw e;
  } finally {
    off();
  }
}
