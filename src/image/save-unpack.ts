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
 * member on file descriptor 3 (kind, size, name). Symlinks (the engine links a layer that
 * repeats an earlier one to its first copy) reach no script: they are read from tar's `-vv`
 * listing and resolved by name, never created on disk.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { constants, createReadStream } from "node:fs";
import { lstat, mkdir, open, realpath, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Readable, type Writable } from "node:stream";
import { interrupted, onAbort } from "../core/abort.js";
import type { AppendedMember, PackageTarWriter } from "../core/archive/file-writer.js";
import { zstdLevelArgs } from "../core/codec.js";
import { digestFile, digestStream } from "../core/digest.js";
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
  /**
   * Write each compressed layer straight into this package under construction instead of a file
   * in the directory: the script appends zstd's output through a descriptor of the package
   * opened with O_APPEND, between {@link PackageTarWriter.beginAppended} and
   * {@link PackageTarWriter.endAppended} (asked for on file descriptor 3, acknowledged on 5), so
   * the member needs no copy afterwards. The caller names each member
   * ({@link PackageTarWriter.nameAppended}); see {@link PackedMember.inPackage}.
   */
  into?: PackageTarWriter;
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
  if [ -n "$DOCKPACK_PACK_INTO" ]; then
    printf 'b %s %s\n' "$TAR_SIZE" "$n" >&3
    IFS= read -r ok <&5 && [ "$ok" = go ] || exit 4
    "$DOCKPACK_ZSTD" -q -c -T0 $DOCKPACK_PACK_LEVEL $l >&4 || exit 4
    k=p
  else
    "$DOCKPACK_ZSTD" -q -c -T0 $DOCKPACK_PACK_LEVEL $l > "$f" || exit 4
  fi
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
  // The package the script appends compressed layers to (fd 4), and the acknowledgements (fd 5).
  const into = pack?.into;
  const appender = into ? await open(into.path, constants.O_WRONLY | constants.O_APPEND) : undefined;
  // tar first: node holds only the write end of its stdin, which the CLI gets as its stdout, so
  // node never reads a byte of the stream.
  const tar = spawn(
    tarPath,
    pack
      ? // VERSION (one per layer) and repositories are never read: tar skips them without a script.
        [...common, "-v", "--exclude=VERSION", "--exclude=repositories", "--to-command", PACK_SCRIPT]
      : [...common, "-C", dir, "-m", "--no-same-owner", "--no-same-permissions"],
    {
      stdio: [
        "pipe",
        "pipe",
        "pipe",
        pack ? "pipe" : "ignore",
        appender ? appender.fd : "ignore",
        into ? "pipe" : "ignore",
      ],
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
              ...(into ? { DOCKPACK_PACK_INTO: "1" } : {}),
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
  // Node's end of the acknowledgements (`into`); closed on a kill, so that a script waiting for
  // "go" reads end-of-file and exits instead of waiting for ever.
  const ack = (tar.stdio as unknown[])[5] as Writable | null | undefined;
  ack?.on("error", () => undefined); // tar gone: its exit code tells
  const kill = () => {
    killed = true;
    for (const c of [cli, tar]) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    ack?.destroy();
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
  const links = new Map<string, string>();
  const dropped = new Map<string, number>();
  // Each compressed member is hashed as soon as zstd finished it, while the save goes on.
  const hashing: Promise<void>[] = [];
  // Closed once tar and every script it started have exited (they all hold fd 3).
  let scriptsDone: Promise<void> = Promise.resolve();
  // The writes into the package (`into`), one at a time in the script's order; the first error.
  let intoQueue: Promise<void> = Promise.resolve();
  let intoError: unknown;
  let begun: AppendedMember | undefined;
  const inPackage = (job: () => Promise<void>) => {
    intoQueue = intoQueue.then(job).catch((e: unknown) => {
      intoError ??= e;
      kill();
    });
  };
  if (pack) {
    // The script reports each member once written, on fd 3. The listing (`-vv`, so it keeps tar
    // writing to node, which dies on a broken pipe once node is gone) gives the symlinks, which
    // tar hands to no script: the engine links a layer that repeats an earlier one to it.
    lines.on("line", (line) => {
      const l = /^l\S* \S+ +\d+ \S+ \S+ ([A-Za-z0-9._/-]+) -> ([A-Za-z0-9._/-]+)$/.exec(line);
      if (l) links.set(l[1], l[2]);
    });
    const done = createInterface({ input: tar.stdio[3] as NodeJS.ReadableStream, crlfDelay: Infinity });
    done.on("line", (line) => {
      const m = /^([zrdbp]) (\d+) (\S+)$/.exec(line);
      if (!m || !(into || "zrd".includes(m[1]))) return;
      const size = Number(m[2]);
      const name = m[3];
      if (m[1] === "b") {
        // The script waits for "go" before zstd appends the member's bytes.
        inPackage(async () => {
          begun = await into?.beginAppended();
          if (!killed) ack?.write("go\n");
        });
        return;
      }
      listed.push(name);
      if (m[1] === "p") {
        const member: PackedMember = { codec: "zstd", level: pack.level, long: size > pack.longAbove, size };
        packed.set(name, member);
        onBytes?.(size);
        inPackage(async () => {
          if (!into || !begun) throw new Error(`${location}: ${name} ended before it began`);
          const m = await into.endAppended(begun);
          begun = undefined;
          const stored = m.size as number;
          member.inPackage = { file: into.path, start: m.start, size: stored, member: m };
          // To disk while the save goes on: the commit's fsync then has little left.
          into.syncSoFar();
          const hashed = digestStream(
            stored === 0
              ? Readable.from([])
              : createReadStream(into.path, { start: m.start, end: m.start + stored - 1 }),
          ).then((d) => {
            member.stored = d;
          });
          hashed.catch(() => undefined); // awaited below
          hashing.push(hashed);
        });
      } else if (m[1] === "z") {
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
    await intoQueue;
    if (intoError) throw intoError;
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
    return await ExtractedContainer.adopt(dir, location, listed, packed, dropped, links);
  } catch (e) {
    kill();
    await Promise.all([cliExit, tarExit, scriptsDone, intoQueue]);
    await Promise.all(hashing.map((h) => h.catch(() => undefined)));
    throw e;
  } finally {
    off();
    await appender?.close();
  }
}
