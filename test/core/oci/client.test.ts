/** The OCI client against a real registry (docker-registry 2.8): plain HTTP and TLS + basic auth. */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import {
  EMPTY_DIGEST,
  EMPTY_JSON,
  eraseCredentials,
  getCredentials,
  type ImageManifest,
  OCI_EMPTY,
  OCI_MANIFEST,
  openRepository,
  parseReference,
  storeCredentials,
} from "../../../src/core/oci/index.js";
import { startRegistry, type TestRegistry } from "../../helpers/registry.js";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const opener = (b: Buffer) => (start: number) => Readable.from([b.subarray(start)]);

describe("OCI client, plain HTTP registry", () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
  });

  test("references parse as docker does", () => {
    assert.deepEqual(parseReference("debian"), {
      registry: "docker.io",
      repository: "library/debian",
      tag: "latest",
    });
    assert.deepEqual(parseReference("docker://127.0.0.1:5000/a/b:1.2"), {
      registry: "127.0.0.1:5000",
      repository: "a/b",
      tag: "1.2",
    });
    assert.throws(() => parseReference("a/B:x"), /OCI_REFERENCE_INVALID|invalid reference/);
  });

  test("blobs: monolithic, chunked, HEAD hit, mount, verified download", async () => {
    const { repo } = await openRepository(`${reg.host}/t/blobs`, { credentials: null });
    const small = randomBytes(1000);
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const r1 = await repo.pushBlob(sha(small), small.length, { open: opener(small) });
    assert.equal(r1.how, "uploaded");
    const r2 = await repo.pushBlob(sha(small), small.length, { open: opener(small) });
    assert.equal(r2.how, "exists");
    const r3 = await repo.pushBlob(sha(big), big.length, { open: opener(big), chunkSize: 1024 * 1024 });
    assert.equal(r3.how, "uploaded");
    assert.equal(await repo.blobSize(sha(big)), big.length);
    // a chunked upload interrupted between chunks resumes at the registry's offset
    const mid = randomBytes(5 * 1024 * 1024);
    const cut = (start: number) => {
      if (start >= 3 * 1024 * 1024) throw new Error("interrupted");
      return Readable.from([mid.subarray(start)]);
    };
    await assert.rejects(repo.pushBlob(sha(mid), mid.length, { open: cut, chunkSize: 1024 * 1024 }));
    const resumed = await repo.pushBlob(sha(mid), mid.length, { open: opener(mid), chunkSize: 1024 * 1024 });
    assert.deepEqual([resumed.how, resumed.sent], ["uploaded", 2 * 1024 * 1024]);
    const { repo: other } = await openRepository(`${reg.host}/t/other`, { credentials: null });
    const r4 = await other.pushBlob(sha(big), big.length, { open: opener(big), mountFrom: "t/blobs" });
    assert.equal(r4.how, "mounted");
    const dir = await mkdtemp(join(tmpdir(), "dockpack-oci-"));
    try {
      const file = join(dir, "blob");
      await writeFile(file, big.subarray(0, 1000)); // a partial download, resumed
      await other.downloadBlob({ mediaType: "x", digest: sha(big), size: big.length }, file);
      assert.ok((await readFile(file)).equals(big));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("manifests, tags and referrers (fallback tag schema)", async () => {
    const { repo } = await openRepository(`${reg.host}/t/art`, { credentials: null });
    const layer = Buffer.from("hello");
    await repo.pushBlob(EMPTY_DIGEST, 2, { open: opener(EMPTY_JSON) });
    await repo.pushBlob(sha(layer), layer.length, { open: opener(layer) });
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: "application/vnd.dockpack.test",
      config: { mediaType: OCI_EMPTY, digest: EMPTY_DIGEST, size: 2 },
      layers: [{ mediaType: "text/plain", digest: sha(layer), size: layer.length }],
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const { digest } = await repo.putManifest("v1", bytes, OCI_MANIFEST);
    assert.equal(await repo.resolve("v1"), digest);
    const got = await repo.getManifest("v1");
    assert.ok(got.bytes.equals(bytes));
    assert.deepEqual(await repo.listTags(), ["v1"]);
    const sig: ImageManifest = {
      ...manifest,
      artifactType: "application/vnd.dockpack.sig",
      subject: { mediaType: OCI_MANIFEST, digest, size: bytes.length },
    };
    const sigBytes = Buffer.from(JSON.stringify(sig));
    await repo.pushReferrer(
      sigBytes,
      {
        mediaType: OCI_MANIFEST,
        digest: sha(sigBytes),
        size: sigBytes.length,
        artifactType: sig.artifactType,
      },
      digest,
    );
    const refs = await repo.referrers(digest, "application/vnd.dockpack.sig");
    assert.equal(refs.length, 1);
    assert.equal(refs[0].digest, sha(sigBytes));
    await assert.rejects(repo.getManifest("nope"), (e: { code: string }) => e.code === "OCI_NOT_FOUND");
  });
});

describe("OCI client, TLS + htpasswd registry", () => {
  let reg: TestRegistry;
  let configDir: string;
  const saved = process.env.DOCKER_CONFIG;
  before(async () => {
    reg = await startRegistry({ tls: true, users: { alice: "s3cret" } });
    configDir = await mkdtemp(join(tmpdir(), "dockpack-dockercfg-"));
    process.env.DOCKER_CONFIG = configDir;
  });
  after(async () => {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
    await rm(configDir, { recursive: true, force: true });
    await reg?.stop();
  });

  test("an untrusted certificate is OCI_TLS_FAILED; --ca-file trusts it", async () => {
    await assert.rejects(
      openRepository(`${reg.host}/t/x`, { credentials: null }),
      (e: { code: string }) => e.code === "OCI_TLS_FAILED",
    );
    await openRepository(`${reg.host}/t/x`, { credentials: null, caFile: reg.caFile });
  });

  test("wrong password is OCI_UNAUTHORIZED; stored credentials work; logout erases", async () => {
    const { repo } = await openRepository(`${reg.host}/t/x`, {
      caFile: reg.caFile,
      credentials: { username: "alice", password: "wrong" },
    });
    await assert.rejects(repo.listTags(), (e: { code: string }) => e.code === "OCI_UNAUTHORIZED");
    const { repo: anon } = await openRepository(`${reg.host}/t/x`, { caFile: reg.caFile });
    await assert.rejects(anon.listTags(), (e: { code: string }) => e.code === "OCI_UNAUTHORIZED");
    await storeCredentials(reg.host, { username: "alice", password: "s3cret" });
    const cfg = JSON.parse(await readFile(join(configDir, "config.json"), "utf8"));
    assert.equal(cfg.auths[reg.host].auth, Buffer.from("alice:s3cret").toString("base64"));
    const { repo: ok } = await openRepository(`${reg.host}/t/x`, { caFile: reg.caFile });
    assert.deepEqual(await ok.listTags(), []);
    const blob = randomBytes(100);
    assert.equal((await ok.pushBlob(sha(blob), 100, { open: opener(blob) })).how, "uploaded");
    assert.equal(await eraseCredentials(reg.host), true);
    assert.equal(await getCredentials(reg.host), null);
  });
});
