/**
 * Safe tar extraction (read with the strict reader, strict.ts): writes only inside the destination and refuses entries that could reach
 * outside it or smuggle special files or privileges. Modelled on GNU tar's safety checks
 * (`--no-overwrite-dir`, refusing `..` members) and on the CVE classes of tar slip and
 * symlink/hardlink traversal (e.g. CVE-2018-20834, CVE-2021-32803).
 *
 * Rules: entry names must be relative with no `..` component; parent directories in the
 * destination must be real directories (a symlink is never followed when writing, also one the
 * archive created earlier); symlink targets must be relative and resolve inside the destination
 * (resolved through the links already there); hardlinks must name a regular file inside it;
 * device nodes and fifos are refused; setuid/setgid bits are refused unless `allowSetuid`.
 */
import { constants, type Stats } from "node:fs";
import {
  chmod,
  chown,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readlink,
  realpath,
  symlink,
  unlink,
  utimes,
} from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { DockpackError } from "../errors.js";
import type { TarHeader } from "./reader.js";
import { readTarStrict } from "./strict.js";

/**
 * The reason a tar entry name is unsafe to extract, or null when it is fine: empty, contains a
 * NUL byte, absolute (`/…`), or has a `..` component. `./a`, `a/./b` and `a/` are fine.
 */
export function checkEntryPath(name: string): string | null {
  if (name.length === 0) return "the name is empty";
  if (name.includes("\0")) return "the name contains a NUL byte";
  if (name.startsWith("/")) return "it is an absolute path";
  if (name.split("/").includes("..")) return "it has a '..' component";
  return null;
}

/** Options of {@link extractTarSafe}. */
export interface ExtractOptions {
  /** Keep setuid/setgid bits instead of refusing such entries. Default false. */
  allowSetuid?: boolean;
  /** Apply the entries' uid/gid (only when running as root; ignored otherwise). Default false. */
  preserveOwner?: boolean;
}

/** Result of {@link extractTarSafe}: entries extracted and bytes of file content written. */
export interface ExtractResult {
  entries: number;
  bytes: number;
}

const MAX_LINK_HOPS = 40;

/** `a/./b/` → `a/b`; `./` → "". */
function normalise(name: string): string {
  return name
    .split("/")
    .filter((p) => p !== "" && p !== ".")
    .join("/");
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR")
      return null;
    throw err;
  }
}

/**
 * Extracts the tar stream `input` into `dest` (created when missing), which should be an empty
 * directory: existing files with the same names are replaced, existing directories and symlinks
 * are not. File modes and mtimes are applied; directory modes and mtimes at the end.
 * @returns entries extracted and bytes of file content written
 * @throws DockpackError `ARCHIVE_UNSAFE_ENTRY` naming the entry and the reason (details
 *   `{ entry, reason }`) for the cases above; `ARCHIVE_INVALID` for a corrupt archive; file-system
 *   errors. On error, what was extracted so far stays in `dest` (callers extract into a temp dir).
 */
export async function extractTarSafe(
  input: Readable,
  dest: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  await mkdir(dest, { recursive: true });
  const root = await realpath(dest);
  const asRoot = process.getuid?.() === 0;
  const owners = options.preserveOwner === true && asRoot;
  const knownDirs = new Set<string>([""]);
  const dirs: { abs: string; header: TarHeader }[] = [];
  let entries = 0;
  let bytes = 0;

  await readTarStrict(input, async (entry, body) => {
    const header: TarHeader = { ...entry, mtime: new Date(entry.mtime * 1000) };
    const name = header.name;
    const refuse = (reason: string) =>
      new DockpackError("ARCHIVE_UNSAFE_ENTRY", `Refusing tar entry '${name}': ${reason}.`, {
        hint: "The archive may be malicious or not meant to be extracted here; inspect it with 'tar -tvf'.",
        details: { entry: name, reason },
      });

    const bad = checkEntryPath(name);
    if (bad) throw refuse(bad);
    const type = header.type ?? "file";
    if (type === "character-device" || type === "block-device" || type === "fifo")
      throw refuse(`it is a ${type.replace("-", " ")}, which is never extracted`);
    const mode = (header.mode ?? 0o644) & 0o7777;
    if (type !== "symlink" && mode & 0o6000 && !options.allowSetuid)
      throw refuse(`it has the setuid/setgid bit set (mode ${mode.toString(8).padStart(4, "0")})`);
    const rel = normalise(name);
    if (rel === "") {
      if (type === "directory") {
        entries++;
        return;
      }
      throw refuse("it names the destination itself");
    }

    /** Makes sure every parent of `path` is a real directory inside root, creating missing ones. */
    const ensureParents = async (path: string, create: boolean) => {
      const parts = path.split("/").slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const p = parts.slice(0, i).join("/");
        if (knownDirs.has(p)) continue;
        const st = await lstatOrNull(join(root, p));
        if (!st) {
          if (!create) throw refuse(`'${p}' does not exist in the destination`);
          await mkdir(join(root, p), { mode: 0o755 });
        } else if (st.isSymbolicLink()) {
          throw refuse(`its parent '${p}' is a symlink, and symlinks are never followed when extracting`);
        } else if (!st.isDirectory()) {
          throw refuse(`its parent '${p}' is not a directory`);
        }
        knownDirs.add(p);
      }
    };

    /** Removes an existing non-directory at `abs`; refuses to replace a directory. */
    const clear = async (abs: string, existing: Stats | null) => {
      if (!existing) return;
      if (existing.isDirectory()) throw refuse("it would replace a directory");
      await unlink(abs);
    };

    /**
     * Where a symlink target leads, resolved through the links already in the destination:
     * null when inside, else the reason.
     */
    const escapes = async (stack: string[], target: string, hops: number): Promise<string | null> => {
      if (hops > MAX_LINK_HOPS) return "its target has too many levels of symlinks";
      if (target.startsWith("/")) return `its target '${header.linkname}' is absolute`;
      const parts = target.split("/");
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i];
        if (part === "" || part === ".") continue;
        if (part === "..") {
          if (stack.length === 0) return `its target '${header.linkname}' points outside the destination`;
          stack.pop();
          continue;
        }
        stack.push(part);
        const st = await lstatOrNull(join(root, ...stack));
        if (st?.isSymbolicLink()) {
          stack.pop();
          const why = await escapes(stack, await readlink(join(root, ...stack, part)), hops + 1);
          if (why) return why;
        } else if (!st?.isDirectory() && parts.slice(i + 1).includes("..")) {
          return `its target '${header.linkname}' goes through '${stack.join("/")}', which is not a directory, and then '..'`;
        }
      }
      return null;
    };

    await ensureParents(rel, true);
    const abs = join(root, rel);
    const existing = await lstatOrNull(abs);

    switch (type) {
      case "directory": {
        if (existing && !existing.isDirectory()) await unlink(abs);
        if (!existing?.isDirectory()) await mkdir(abs, { mode: 0o755 });
        knownDirs.add(rel);
        dirs.push({ abs, header });
        break;
      }
      case "file":
      case "contiguous-file": {
        await clear(abs, existing);
        const fh = await open(
          abs,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
        try {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
          }
          if (owners) await fh.chown(header.uid ?? 0, header.gid ?? 0);
          await fh.chmod(mode);
          if (header.mtime) await fh.utimes(header.mtime, header.mtime);
        } finally {
          await fh.close();
        }
        bytes += header.size ?? 0;
        break;
      }
      case "symlink": {
        const target = header.linkname ?? "";
        if (target === "") throw refuse("its target is empty");
        const why = await escapes(rel.split("/").slice(0, -1), target, 0);
        if (why) throw refuse(why);
        if (existing?.isSymbolicLink()) {
          if ((await readlink(abs)) !== target) throw refuse("it would replace an existing symlink");
          break;
        }
        await clear(abs, existing);
        await symlink(target, abs);
        if (owners) await lchown(abs, header.uid ?? 0, header.gid ?? 0);
        if (header.mtime) await lutimes(abs, header.mtime, header.mtime);
        break;
      }
      case "link": {
        const target = header.linkname ?? "";
        const badTarget = checkEntryPath(target);
        if (badTarget) throw refuse(`its hardlink target '${target}' is unsafe: ${badTarget}`);
        const trel = normalise(target);
        if (trel === "") throw refuse("its hardlink target is the destination itself");
        await ensureParents(trel, false);
        const tst = await lstatOrNull(join(root, trel));
        if (!tst?.isFile())
          throw refuse(`its hardlink target '${target}' is not a regular file in the destination`);
        if (tst.mode & 0o6000 && !options.allowSetuid)
          throw refuse(`its hardlink target '${target}' has the setuid/setgid bit set`);
        if (trel === rel) break;
        await clear(abs, existing);
        await link(join(root, trel), abs);
        break;
      }
      default:
        throw refuse(`its type '${type}' is not supported`);
    }
    entries++;
  });

  // Directory modes and mtimes last: writing children changes a directory's mtime, and a
  // read-only directory mode would have stopped the writes.
  for (const { abs, header } of dirs.reverse()) {
    if (owners) await chown(abs, header.uid ?? 0, header.gid ?? 0);
    await chmod(abs, (header.mode ?? 0o755) & 0o7777);
    if (header.mtime) await utimes(abs, header.mtime, header.mtime);
  }
  return { entries, bytes };
}
