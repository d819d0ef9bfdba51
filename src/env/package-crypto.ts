/**
 * Secrets at rest in environment packages: the env files (the members of `environment/` named by
 * the config's `env_files`) encrypted with age (https://age-encryption.org/v1, through the
 * `age-encryption` library) to X25519 recipients (`age1…`) or to a passphrase (scrypt).
 *
 * An encrypted member keeps its name; its content is the binary age file, and the package's
 * checksums cover those encrypted bytes, so `packages validate` checks everything without the
 * key. metadata.json lists the encrypted members under `encryption: { scheme: "age", members }`
 * (an added key, which readers of format 1.x ignore). Import decrypts them in memory before
 * anything changes (wrong or missing key: nothing is created), then writes the plaintext over the
 * restored member with mode 0600.
 */
import { constants, createReadStream } from "node:fs";
import { open, readFile } from "node:fs/promises";
import type { Encrypter } from "age-encryption";
import { readTar } from "../core/archive/reader.js";
import { DockpackError } from "../core/errors.js";
import { loadAge } from "./age.js";
import { METADATA_MEMBER } from "./package-format.js";

/** How to encrypt: recipients (`age1…`, repeatable) or one passphrase, not both. */
export interface EncryptOptions {
  recipients?: string[];
  passphrase?: string;
}

/** How to decrypt: identity files (`AGE-SECRET-KEY-1…` lines) and/or a passphrase. */
export interface DecryptKeys {
  identityFiles?: string[];
  passphrase?: string;
}

/** The `encryption` entry of metadata.json. */
export interface PackageEncryption {
  scheme: "age";
  /** Encrypted members, e.g. `environment/.env`. */
  members: string[];
}

/** True when the options ask for encryption. Throws `ENCRYPTION_OPTIONS_INVALID` for both kinds at once. */
export function wantsEncryption(o: EncryptOptions | undefined): boolean {
  const r = o?.recipients?.length ?? 0;
  if (r > 0 && o?.passphrase)
    throw new DockpackError(
      "ENCRYPTION_OPTIONS_INVALID",
      "A package is encrypted to recipients or to a passphrase, not both (age allows a passphrase only alone).",
      { hint: "Drop --encrypt-to or the passphrase.", usage: true },
    );
  return r > 0 || Boolean(o?.passphrase);
}

/**
 * An age Encrypter for the options.
 * @throws DockpackError `ENCRYPTION_RECIPIENT_INVALID` naming a recipient that is not `age1…`
 */
async function encrypter(o: EncryptOptions): Promise<Encrypter> {
  const e = new (await loadAge()).Encrypter();
  if (o.passphrase) e.setPassphrase(o.passphrase);
  for (const r of o.recipients ?? []) {
    try {
      e.addRecipient(r.trim());
    } catch (err) {
      throw new DockpackError(
        "ENCRYPTION_RECIPIENT_INVALID",
        `--encrypt-to ${r}: not an age recipient (${(err as Error).message}).`,
        {
          hint: "Pass an X25519 recipient 'age1…' (age-keygen -y KEYFILE prints it).",
          usage: true,
        },
      );
    }
  }
  return e;
}

/** Encrypts a small buffer (an env file) as a binary age file. */
export async function encryptBuffer(o: EncryptOptions, plain: Buffer): Promise<Buffer> {
  return Buffer.from(await (await encrypter(o)).encrypt(new Uint8Array(plain)));
}

/**
 * Reads identity files: every `AGE-SECRET-KEY-1…` line (comments and blank lines skipped).
 * @throws DockpackError `IDENTITY_INVALID` naming the file when it holds none or cannot be read
 */
export async function readIdentities(files: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, "utf8");
    } catch (err) {
      throw new DockpackError("IDENTITY_INVALID", `--identity ${f}: ${(err as Error).message}`, {
        hint: "Pass an age identity file (age-keygen -o KEYFILE).",
      });
    }
    const keys = text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith("AGE-SECRET-KEY-"));
    if (keys.length === 0)
      throw new DockpackError("IDENTITY_INVALID", `--identity ${f} holds no AGE-SECRET-KEY-1… line.`, {
        hint: "Pass an age identity file (age-keygen -o KEYFILE).",
      });
    out.push(...keys);
  }
  return out;
}

/**
 * Decrypts one encrypted member.
 * @throws DockpackError `PACKAGE_DECRYPT_FAILED` naming the member (wrong key or damaged data)
 */
export async function decryptBuffer(
  cipher: Buffer,
  identities: string[],
  passphrase: string | undefined,
  member: string,
): Promise<Buffer> {
  const d = new (await loadAge()).Decrypter();
  try {
    for (const i of identities) d.addIdentity(i);
    if (passphrase) d.addPassphrase(passphrase);
    return Buffer.from(await d.decrypt(new Uint8Array(cipher)));
  } catch (err) {
    throw new DockpackError(
      "PACKAGE_DECRYPT_FAILED",
      `Cannot decrypt ${member}: ${(err as Error).message}.`,
      {
        hint: "Pass the identity (--identity FILE) or passphrase the package was encrypted to.",
      },
    );
  }
}

/**
 * The `encryption` entry of a package's metadata.json (read raw: the first member, at most
 * 1 MiB), or null when the package has no encrypted member.
 */
export async function readPackageEncryption(file: string): Promise<PackageEncryption | null> {
  const fh = await open(file, "r");
  try {
    const header = Buffer.alloc(512);
    await fh.read(header, 0, 512, 0);
    if (header.toString("utf8", 0, 100).replace(/\0.*$/s, "") !== METADATA_MEMBER) return null;
    const size = Number.parseInt(header.toString("ascii", 124, 136).replace(/\0.*$/s, "").trim(), 8);
    if (!Number.isInteger(size) || size <= 0 || size > 1024 * 1024) return null;
    const body = Buffer.alloc(size);
    await fh.read(body, 0, size, 512);
    const enc = (JSON.parse(body.toString("utf8")) as { encryption?: unknown }).encryption as
      | PackageEncryption
      | undefined;
    if (enc?.scheme !== "age" || !Array.isArray(enc.members)) return null;
    return {
      scheme: "age",
      members: enc.members.filter((m) => typeof m === "string" && m.startsWith("environment/")),
    };
  } catch {
    return null;
  } finally {
    await fh.close();
  }
}

/**
 * Reads the named members (each at most 1 MiB) of a package and decrypts them. Returns member →
 * plaintext. Used by import before anything changes, so a wrong key changes nothing.
 * @throws DockpackError `PACKAGE_ENCRYPTED` (no key given; `details.encrypted`), `PACKAGE_DECRYPT_FAILED`
 */
export async function decryptMembers(
  file: string,
  enc: PackageEncryption,
  keys: DecryptKeys,
): Promise<Map<string, Buffer>> {
  const identities = await readIdentities(keys.identityFiles ?? []);
  if (identities.length === 0 && !keys.passphrase)
    throw new DockpackError(
      "PACKAGE_ENCRYPTED",
      `${file} holds encrypted env files (${enc.members.join(", ")}); nothing was changed.`,
      {
        hint: "Pass --identity FILE (the age identity of a recipient), or run on a terminal to type the passphrase.",
        details: { encrypted: enc.members },
      },
    );
  const want = new Set(enc.members);
  const out = new Map<string, Buffer>();
  const ciphers = new Map<string, Buffer>();
  await readTar(createReadStream(file, { highWaterMark: 1024 * 1024 }), async (header, body) => {
    if (!want.has(header.name) || ciphers.has(header.name) || (header.size ?? 0) > 1024 * 1024) {
      body.resume();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    ciphers.set(header.name, Buffer.concat(chunks));
  });
  for (const [name, cipher] of ciphers)
    out.set(name, await decryptBuffer(cipher, identities, keys.passphrase, name));
  for (const m of want)
    if (!out.has(m))
      throw new DockpackError(
        "PACKAGE_MEMBER_MISSING",
        `The encrypted member '${m}' is missing from ${file}.`,
      );
  return out;
}

/** Writes a decrypted env file over the restored (encrypted) one, mode 0600, never through a link. */
export async function writePlain(path: string, plain: Buffer): Promise<void> {
  const fh = await open(
    path,
    constants.O_WRONLY | constants.O_TRUNC | constants.O_CREAT | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    await fh.writeFile(plain);
    await fh.chmod(0o600);
  } finally {
    await fh.close();
  }
}
