/**
 * `packages export --encrypt-all`: every regular-file member of `code/`, `environment/` and
 * `volumes/` is an age file (https://age-encryption.org/v1), encrypted and decrypted while it
 * streams through the `age-encryption` library's web-stream API (`Encrypter.encrypt(ReadableStream)`
 * / `Decrypter.decrypt(ReadableStream)`, 64 KiB STREAM chunks), so no member is ever held in memory.
 *
 * Keys: the export draws a fresh X25519 *package key*; every member is encrypted to its
 * recipient, and the package key itself is encrypted (once) to the user's recipients or
 * passphrase and stored, base64, in metadata.json (`encryption.key`). So a passphrase costs one
 * scrypt run per package, not one per member, and the package key's recipient is never stored:
 * no one without the package key can make a member that decrypts. The plaintext sha256 of every
 * encrypted code/environment member and of metadata.json are listed in {@link PLAIN_CHECKSUMS_MEMBER}
 * (encrypted too), which binds each member's name to its content (age itself does not) and
 * authenticates the clear metadata for whoever holds the key.
 */
import { Duplex } from "node:stream";
import type { Decrypter, Encrypter } from "age-encryption";
import { DockpackError } from "../core/errors.js";
import { ageIfLoaded, loadAge } from "./age.js";
import {
  type DecryptKeys,
  decryptBuffer,
  type EncryptOptions,
  encryptBuffer,
  readIdentities,
} from "./package-crypto.js";

export { PLAIN_CHECKSUMS_MEMBER } from "./package-format.js";

/** A package key: the X25519 identity members are encrypted to, and its wrapped form for metadata.json. */
export interface PackageKey {
  /** `AGE-SECRET-KEY-1…` */
  identity: string;
  /** base64 of the age file holding `identity`, encrypted to the user's recipients or passphrase. */
  wrapped: string;
}

/** Draws a fresh package key and wraps it for `o` (scrypt runs here once for a passphrase). */
export async function createPackageKey(o: EncryptOptions): Promise<PackageKey> {
  const identity = await (await loadAge()).generateX25519Identity();
  const wrapped = (await encryptBuffer(o, Buffer.from(identity))).toString("base64");
  return { identity, wrapped };
}

/**
 * Unwraps the package key of metadata.json with the user's keys.
 * @throws DockpackError `PACKAGE_ENCRYPTED` (no key given), `IDENTITY_INVALID`,
 *   `PACKAGE_DECRYPT_FAILED` (wrong key, or a damaged key entry)
 */
export async function unwrapPackageKey(wrapped: string, keys: DecryptKeys, label: string): Promise<string> {
  const identities = await readIdentities(keys.identityFiles ?? []);
  if (identities.length === 0 && !keys.passphrase)
    throw new DockpackError(
      "PACKAGE_ENCRYPTED",
      `${label} is encrypted (--encrypt-all): code, environment files and volume data need the key; nothing was changed.`,
      {
        hint: "Pass --identity FILE (the age identity of a recipient), or the passphrase ($DOCKPACK_PASSPHRASE, or typed on a terminal).",
      },
    );
  const plain = await decryptBuffer(
    Buffer.from(wrapped, "base64"),
    identities,
    keys.passphrase,
    `the package key of ${label}`,
  );
  const identity = plain.toString("utf8").trim();
  if (!identity.startsWith("AGE-SECRET-KEY-1"))
    throw new DockpackError("PACKAGE_DECRYPT_FAILED", `The package key of ${label} is not an age identity.`, {
      hint: "The package is damaged; export it again.",
    });
  return identity;
}

/** The recipient (`age1…`) of a package key. */
export async function packageRecipient(identity: string): Promise<string> {
  return (await loadAge()).identityToRecipient(identity);
}

/**
 * `make` applied to the age library: at once when it is loaded (as it is after {@link
 * unwrapPackageKey}, {@link createPackageKey} or {@link packageRecipient}, so that a bad key
 * throws here), else once it has loaded.
 */
function withAge<T>(make: (age: typeof import("age-encryption")) => T): () => Promise<T> {
  const age = ageIfLoaded();
  const now = age ? make(age) : undefined;
  return async () => now ?? make(await loadAge());
}

function decryptFailed(member: string, err: unknown): DockpackError {
  if (err instanceof DockpackError) return err;
  return new DockpackError(
    "PACKAGE_DECRYPT_FAILED",
    `Cannot decrypt ${member}: ${(err as Error)?.message ?? String(err)} (wrong key, or the encrypted data was changed).`,
    {
      hint: "Pass the identity (--identity FILE) or passphrase the package was encrypted to; or export it again.",
    },
  );
}

/**
 * A Node duplex over one of the library's stream functions: bytes written go to `run`'s input
 * web stream, and its output web stream is readable. Backpressure holds end to end (a write
 * completes only once the library pulled it; the output is read only as the Node side reads),
 * so memory stays at a few 64 KiB chunks. Every error it emits goes through `mapError`.
 */
function webDuplex(
  run: (input: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>,
  mapError: (err: unknown) => Error,
): Duplex {
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  let waiting: (() => void) | null = null;
  const input = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull() {
        const go = waiting;
        waiting = null;
        go?.();
      },
    },
    { highWaterMark: 4 },
  );
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const ready = run(input).then((out) => {
    reader = out.getReader();
  });
  ready.catch(() => undefined);
  const d: Duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      try {
        controller?.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (err) {
        cb(mapError(err));
        return;
      }
      if ((controller?.desiredSize ?? 0) > 0) cb();
      else waiting = () => cb();
    },
    final(cb) {
      try {
        controller?.close();
      } catch {
        // already errored: the read side reports it
      }
      cb();
    },
    read() {
      ready
        .then(async () => {
          const r = await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
          if (r.done) d.push(null);
          else d.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        })
        .catch((err) => d.destroy(mapError(err)));
    },
    destroy(err, cb) {
      try {
        controller?.error(err ?? new Error("closed"));
      } catch {
        // already closed
      }
      reader?.cancel().catch(() => undefined);
      cb(err ? mapError(err) : null);
    },
  });
  return d;
}

/** A duplex that encrypts what is written to it to `recipient` (one age file). */
export function encryptingStream(recipient: string): Duplex {
  const encrypter = withAge((age): Encrypter => {
    const e = new age.Encrypter();
    e.addRecipient(recipient);
    return e;
  });
  return webDuplex(
    async (input) => (await encrypter()).encrypt(input),
    (err) =>
      err instanceof Error
        ? err
        : new DockpackError("PACKAGE_ENCRYPT_FAILED", `Encryption failed: ${String(err)}`),
  );
}

/**
 * A duplex that decrypts one age file written to it with the package key `identity`.
 * Fails with `PACKAGE_DECRYPT_FAILED` naming `member` (wrong key, changed or cut ciphertext).
 */
export function decryptingStream(identity: string, member: string): Duplex {
  const decrypter = withAge((age): Decrypter => {
    const d = new age.Decrypter();
    d.addIdentity(identity);
    return d;
  });
  return webDuplex(
    async (input) => (await decrypter()).decrypt(input),
    (err) => decryptFailed(member, err),
  );
}

/** Encrypts a small buffer (the plaintext checksums) to the package key's recipient. */
export async function encryptSmall(recipient: string, plain: Buffer): Promise<Buffer> {
  const e = new (await loadAge()).Encrypter();
  e.addRecipient(recipient);
  return Buffer.from(await e.encrypt(new Uint8Array(plain)));
}
