/**
 * Writes the `code/` and `environment/` members of a package into a worktree, immune by
 * construction to links the package (or the checkout) holds:
 *
 * - every member name is checked again with the validator's rules (checkMemberName: canonical,
 *   inside a section, never `.git`);
 * - every parent folder is walked component by component with lstat from the worktree root,
 *   created when missing, and must be a real directory: a member whose path passes through a
 *   symlink is refused (`PACKAGE_UNSAFE_PATH`);
 * - regular files are created with O_CREAT|O_EXCL|O_NOFOLLOW (a symlink or file already at the
 *   name is unlinked first, never followed), written while their sha256 is checked against
 *   checksums.sha256, then given the member's permission bits (`& 0o777`: no setuid/setgid);
 * - the package's symlinks are created last, after every file was written, and only when their
 *   target, resolved through the package's symlinks and those already on disk, stays inside
 *   the worktree; so no write of the restore ever goes through a link.
 */
import { constants, createReadStream, lstatSync, readlinkSync } from "node:fs";
import { type FileHandle, lstat, mkdir, open, rmdir, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { readTarStrict } from "../core/archive.js";
import { sha256Hex, verifyingStream } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import { decryptingStream } from "./package-crypto-stream.js";
import { checkMemberName, resolveInside, UNSAFE_MODE_BITS } from "./package-format.js";

/**
 * `--encrypt-all`: the package key and the plaintext sha256 of each member (checksums.plain.age,
 * already checked by the verification read); each file is decrypted while it is written.
 */
export interface SealedRestore {
  identity: string;
  plain: Map<string, string>;
}

function unsafe(member: string, why: string): DockpackError {
  return new DockpackError("PACKAGE_UNSAFE_PATH", `member '${member}' is refused: ${why}`, {
    hint: "The package may be malicious; nothing outside the new worktree was written. Do not import it.",
    details: { member, reason: why },
  });
}

function changed(member: string): DockpackError {
  return new DockpackError(
    "PACKAGE_CHANGED",
    `member '${member}' differs from what was verified (the package file changed during the import)`,
    { hint: "Do not modify the package while importing; run the import again." },
  );
}

/**
 * Makes sure every parent folder of `rel` under `root` is a real directory (creating missing
 * ones), walking with lstat so that no symlink is followed. Returns the absolute path of `rel`.
 * @throws DockpackError `PACKAGE_UNSAFE_PATH` when a parent is a symlink or not a directory
 */
export async function safeParents(root: string, rel: string, member: string): Promise<string> {
  const parts = rel.split("/");
  let dir = root;
  for (let i = 0; i < parts.length - 1; i++) {
    dir = join(dir, parts[i]);
    const st = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return null;
      throw e;
    });
    if (!st) {
      await mkdir(dir, { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "EEXIST") throw e;
      });
      const again = await lstat(dir);
      if (!again.isDirectory() || again.isSymbolicLink())
        throw unsafe(member, `'${parts.slice(0, i + 1).join("/")}' changed while restoring`);
    } else if (st.isSymbolicLink())
      throw unsafe(
        member,
        `its parent '${parts.slice(0, i + 1).join("/")}' is a symlink, and symlinks are never followed`,
      );
    else if (!st.isDirectory())
      throw unsafe(member, `its parent '${parts.slice(0, i + 1).join("/")}' is not a directory`);
  }
  return join(root, rel);
}

/** Removes what is at `abs` unless it is a directory (an empty one is removed too). */
async function clearSpot(abs: string, member: string): Promise<void> {
  const st = await lstat(abs).catch(() => null);
  if (!st) return;
  if (st.isDirectory() && !st.isSymbolicLink()) {
    await rmdir(abs).catch(() => {
      throw new DockpackError(
        "IMPORT_PATH_CONFLICT",
        `member '${member}' would replace the non-empty folder ${abs}`,
        {
          hint: "Import into a fresh branch (--target-branch) or with --standalone.",
        },
      );
    });
    return;
  }
  await unlink(abs);
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
}

/**
 * Restores the members under `prefix` (`code/` or `environment/`) into `dest` as the module docs
 * describe, checking each against `checksums` (member → `sha256:<hex>`) again.
 * @returns the paths written, relative to `dest` (files and symlinks)
 * @throws DockpackError `PACKAGE_UNSAFE_PATH`, `PACKAGE_CHANGED`, `PACKAGE_MEMBER_UNLISTED`,
 *   `PACKAGE_MEMBER_TYPE_INVALID`, `IMPORT_PATH_CONFLICT`, `DIGEST_MISMATCH`, `ARCHIVE_*`
 */
export async function restoreMembers(
  file: string,
  prefix: "code/" | "environment/",
  dest: string,
  checksums: Map<string, string>,
  sealed?: SealedRestore,
): Promise<Set<string>> {
  const written = new Set<string>();
  const links: { member: string; rel: string; target: string }[] = [];
  // the section's members are all known (verified, each once): the read stops after the last one
  // instead of reading the volume data that follows
  let left = [...checksums.keys()].filter((m) => m.startsWith(prefix)).length;
  const stop = new Error("section read");
  await readTarStrict(createReadStream(file, { highWaterMark: 1024 * 1024 }), async (entry, body) => {
    if (left === 0) throw stop;
    if (!entry.name.startsWith(prefix)) return;
    left--;
    const name = entry.name;
    const bad = checkMemberName(name);
    if (bad) throw unsafe(name, bad);
    const rel = name.slice(prefix.length);
    const expected = checksums.get(name);
    if (!expected)
      throw new DockpackError(
        "PACKAGE_MEMBER_UNLISTED",
        `member '${name}' is not listed in checksums.sha256`,
      );
    if (entry.type === "symlink") {
      if (`sha256:${sha256Hex(entry.linkname)}` !== expected) throw changed(name);
      links.push({ member: name, rel, target: entry.linkname });
      written.add(rel);
      return;
    }
    if (entry.type !== "file")
      throw new DockpackError("PACKAGE_MEMBER_TYPE_INVALID", `member '${name}' is a ${entry.type}`);
    if ((entry.mode & UNSAFE_MODE_BITS) !== 0)
      throw new DockpackError(
        "PACKAGE_MODE_UNSAFE",
        `member '${name}' has mode ${(entry.mode & 0o7777).toString(8)}; setuid, setgid, sticky and world-writable bits are refused`,
        { hint: "The package was changed or crafted; do not import it." },
      );
    let plain: string | undefined;
    if (sealed) {
      plain = sealed.plain.get(name);
      if (!plain) throw changed(name);
    }
    await writeMember(
      dest,
      rel,
      name,
      entry.mode,
      body,
      expected,
      sealed && plain ? { identity: sealed.identity, plain } : undefined,
    );
    written.add(rel);
  }).catch((e) => {
    if (e !== stop) throw e;
  });
  const byRel = new Map(links.map((l) => [l.rel, l.target]));
  const onDisk = (rel: string): string | undefined => {
    const known = byRel.get(rel);
    if (known !== undefined) return known;
    try {
      return lstatSync(join(dest, rel)).isSymbolicLink() ? readlinkSync(join(dest, rel)) : undefined;
    } catch {
      return undefined;
    }
  };
  for (const l of links) {
    const r = resolveInside(l.rel.split("/").slice(0, -1), l.target, onDisk);
    if (typeof r === "string") throw unsafe(l.member, r);
  }
  for (const l of links) {
    const abs = await safeParents(dest, l.rel, l.member);
    await clearSpot(abs, l.member);
    await symlink(l.target, abs);
  }
  return written;
}

async function writeMember(
  dest: string,
  rel: string,
  member: string,
  mode: number,
  body: Readable,
  expected: string,
  sealed?: { identity: string; plain: string },
): Promise<void> {
  const abs = await safeParents(dest, rel, member);
  await clearSpot(abs, member);
  const fh = await open(
    abs,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        writeAll(fh, chunk).then(() => cb(), cb);
      },
    });
    await (sealed
      ? pipeline(
          body,
          verifyingStream(expected, member),
          decryptingStream(sealed.identity, member),
          verifyingStream(sealed.plain, `${member} (decrypted)`),
          sink,
        )
      : pipeline(body, verifyingStream(expected, member), sink)
    ).catch((err) => {
      if ((err as DockpackError).code === "DIGEST_MISMATCH") throw changed(member);
      throw err;
    });
    await fh.chmod(mode & 0o777);
  } finally {
    await fh.close();
  }
}
