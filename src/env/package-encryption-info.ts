/**
 * What `packages inspect` / `validate` say about a package's encryption, read without the key.
 */
import type { VerifyResult } from "./package-reader.js";

/** The encryption summary of a verified package. */
export interface PackageEncryptionInfo {
  scheme: "age";
  /** True for `--encrypt-all` (code, environment files and volume data); false: env files only. */
  all: boolean;
  /** The encrypted members, in package order. */
  members: string[];
  /**
   * Whether their content was decrypted and checked (a key was given). Env files only: always
   * false here (import decrypts them).
   */
  decrypted: boolean;
}

/** The encryption summary of `res`, or null when nothing in it is encrypted. */
export function encryptionInfo(res: VerifyResult): PackageEncryptionInfo | null {
  const enc = res.metadata?.encryption;
  if (res.sealed)
    return { scheme: "age", all: true, members: res.sealed.members, decrypted: res.sealed.decrypted };
  if (enc?.members.length) return { scheme: "age", all: false, members: enc.members, decrypted: false };
  return null;
}
