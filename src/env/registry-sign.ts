/**
 * Signatures of environment packages in a registry: an SSH signature (`ssh-keygen -Y sign`,
 * the SSHSIG format git and OpenSSH use) over the package's manifest bytes, attached as a
 * referrer artifact (OCI distribution spec 1.1 `subject`; fallback tag schema where the registry
 * has no referrers API).
 *
 * Why SSH signatures: every machine with OpenSSH can make and check them with keys developers
 * already have (no PKI, no transparency log or network service as sigstore needs), and the format
 * is stable and documented (OpenSSH PROTOCOL.sshsig).
 *
 * Signature artifact: manifest with `artifactType` {@link SIGNATURE_ARTIFACT_TYPE}, the empty
 * config, one layer {@link SIGNATURE_MEDIA_TYPE} (the armored signature), `subject` = the package
 * manifest. Namespace (`-n`) {@link SIGNATURE_NAMESPACE}.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { sha256Hex } from "../core/digest.js";
import { DockpackError } from "../core/errors.js";
import { run } from "../core/exec.js";
import type { OciRepository } from "../core/oci/client.js";
import {
  EMPTY_DIGEST,
  EMPTY_JSON,
  type ImageManifest,
  OCI_EMPTY,
  OCI_MANIFEST,
} from "../core/oci/media-types.js";

/** artifactType of a package signature. */
export const SIGNATURE_ARTIFACT_TYPE = "application/vnd.dockpack.signature.v1+sshsig";
/** Media type of the signature layer (armored `-----BEGIN SSH SIGNATURE-----`). */
export const SIGNATURE_MEDIA_TYPE = "application/vnd.dockpack.signature.v1.sshsig";
/** The ssh-keygen -Y namespace of package signatures. */
export const SIGNATURE_NAMESPACE = "dockpack-package";

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "dockpack-sig-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Signs `manifestBytes` with the SSH private key at `keyFile` and pushes the signature as a
 * referrer of the manifest. Returns the signature manifest's digest.
 * @throws DockpackError `PACKAGE_SIGN_FAILED` (ssh-keygen refused: wrong key, passphrase), `OCI_*`.
 */
export async function signPackageManifest(
  repo: OciRepository,
  manifestBytes: Buffer,
  keyFile: string,
): Promise<string> {
  const signature = await withTemp(async (dir) => {
    const data = join(dir, "manifest.json");
    await writeFile(data, manifestBytes);
    try {
      await run("ssh-keygen", ["-Y", "sign", "-q", "-f", keyFile, "-n", SIGNATURE_NAMESPACE, data], {
        stdin: "ignore",
      });
    } catch (e) {
      throw new DockpackError("PACKAGE_SIGN_FAILED", `cannot sign with ${keyFile}: ${(e as Error).message}`, {
        hint: "Pass an SSH private key without a passphrase, or load it into ssh-agent and pass the public key.",
        cause: e,
      });
    }
    return readFile(`${data}.sig`);
  });
  const sigDigest = `sha256:${sha256Hex(signature)}`;
  await repo.pushBlob(EMPTY_DIGEST, 2, { open: (from) => Readable.from([EMPTY_JSON.subarray(from)]) });
  await repo.pushBlob(sigDigest, signature.length, {
    open: (from) => Readable.from([signature.subarray(from)]),
  });
  const subject = {
    mediaType: OCI_MANIFEST,
    digest: `sha256:${sha256Hex(manifestBytes)}`,
    size: manifestBytes.length,
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SIGNATURE_ARTIFACT_TYPE,
    config: { mediaType: OCI_EMPTY, digest: EMPTY_DIGEST, size: 2 },
    layers: [{ mediaType: SIGNATURE_MEDIA_TYPE, digest: sigDigest, size: signature.length }],
    subject,
    annotations: { "org.opencontainers.image.created": new Date().toISOString() },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const desc = {
    mediaType: OCI_MANIFEST,
    digest: `sha256:${sha256Hex(bytes)}`,
    size: bytes.length,
    artifactType: SIGNATURE_ARTIFACT_TYPE,
  };
  return repo.pushReferrer(bytes, desc, subject.digest);
}

/**
 * Checks that at least one signature referrer of the manifest verifies with the SSH public key
 * at `publicKeyFile` (`ssh-keygen -Y verify` with a one-line allowed-signers file).
 * @throws DockpackError `PACKAGE_SIGNATURE_MISSING` (no signature), `PACKAGE_SIGNATURE_INVALID`
 *   (none verifies with this key).
 */
export async function verifyPackageSignature(
  repo: OciRepository,
  manifestBytes: Buffer,
  publicKeyFile: string,
  label: string,
): Promise<{ signature: string }> {
  const digest = `sha256:${sha256Hex(manifestBytes)}`;
  const refs = await repo.referrers(digest, SIGNATURE_ARTIFACT_TYPE);
  if (refs.length === 0)
    throw new DockpackError("PACKAGE_SIGNATURE_MISSING", `${label} is not signed`, {
      hint: "Ask for a package pushed with --sign, or drop --verify-key to accept it unsigned.",
    });
  const pub = (await readFile(publicKeyFile, "utf8")).trim().split("\n")[0];
  if (!/^(ssh-|ecdsa-|sk-)/.test(pub))
    throw new DockpackError("PACKAGE_SIGNATURE_INVALID", `${publicKeyFile} is not an SSH public key`, {
      usage: true,
    });
  return withTemp(async (dir) => {
    const allowed = join(dir, "allowed_signers");
    await writeFile(allowed, `dockpack ${pub}\n`);
    for (const ref of refs.slice(0, 16)) {
      const m = (await repo.getManifest(ref.digest)).json as unknown as ImageManifest;
      const layer = m.layers?.[0];
      if (m.subject?.digest !== digest || layer?.mediaType !== SIGNATURE_MEDIA_TYPE || layer.size > 64 * 1024)
        continue;
      const chunks: Buffer[] = [];
      for await (const c of await repo.openBlob(layer.digest)) chunks.push(c as Buffer);
      const sig = join(dir, "sig");
      await writeFile(sig, Buffer.concat(chunks));
      try {
        await run(
          "ssh-keygen",
          ["-Y", "verify", "-f", allowed, "-I", "dockpack", "-n", SIGNATURE_NAMESPACE, "-s", sig],
          {
            input: manifestBytes,
          },
        );
        return { signature: ref.digest };
      } catch {
        // try the next signature
      }
    }
    throw new DockpackError(
      "PACKAGE_SIGNATURE_INVALID",
      `${label}: no signature verifies with ${publicKeyFile}`,
      {
        hint: "The package was signed with another key or changed after signing; nothing was written.",
      },
    );
  });
}
