/**
 * OCI distribution client (distribution spec 1.1) for one repository: blobs (HEAD, monolithic
 * and chunked upload with resume, cross-repository mount, streaming verified download with
 * resume), manifests and indexes, tags, referrers (API, with the fallback tag schema
 * `sha256-<hex>` when the registry lacks it). A source and sink like go-containerregistry's
 * `remote`.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DIGEST_RE, digestFile, sha256Hex, verifyingStream } from "../digest.js";
import { DockpackError } from "../errors.js";
import { getCredentials } from "./credentials.js";
import { type Descriptor, type ImageIndex, MANIFEST_ACCEPT, OCI_INDEX } from "./media-types.js";
import { type OciReference, parseReference } from "./reference.js";
import { type RegistryOptions, type RegistryResponse, RegistryTransport } from "./transport.js";

/** Largest manifest accepted (bytes); the spec recommends registries accept at least 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Default PATCH chunk size for chunked uploads (bytes). */
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

/** A fetched manifest: exact bytes, media type and digest. */
export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
  json: Record<string, unknown>;
}

/** Outcome of a blob push. */
export interface PushBlobResult {
  digest: string;
  size: number;
  /** `exists` (HEAD hit), `mounted` (cross-repo mount), or `uploaded`. */
  how: "exists" | "mounted" | "uploaded";
  /** Bytes sent in this run (less than size when resumed). */
  sent: number;
}

/** Options of {@link OciRepository.pushBlob}. */
export interface PushBlobOptions {
  /** Opens the blob's bytes from offset `start` (bytes). */
  open: (start: number) => Readable;
  /** Uploads larger than this go in PATCH chunks of this size (default 16 MiB). */
  chunkSize?: number;
  /** Another repository of the same registry holding the blob (mount instead of upload). */
  mountFrom?: string;
  /** Called with bytes sent so far. */
  onProgress?: (sent: number) => void;
}

function uploadStateDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "dockpack", "oci-uploads");
}

function header(res: RegistryResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first error. */
export async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** One repository on one registry, e.g. `127.0.0.1:5000/acme/shop`. */
export class OciRepository {
  readonly transport: RegistryTransport;
  readonly repository: string;
  readonly registry: string;

  constructor(transport: RegistryTransport, repository: string) {
    this.transport = transport;
    this.repository = repository;
    this.registry = transport.registry;
  }

  get #pull(): string[] {
    return [`repository:${this.repository}:pull`];
  }
  get #push(): string[] {
    return [`repository:${this.repository}:pull,push`];
  }

  /** Size of the blob when the repository has it, else null (HEAD /v2/<name>/blobs/<digest>). */
  async blobSize(digest: string): Promise<number | null> {
    const res = await this.transport.request({
      method: "HEAD",
      path: `/v2/${this.repository}/blobs/${digest}`,
      scopes: this.#pull,
    });
    if (res.status !== 200 && res.status !== 404) return this.transport.fail(res, `HEAD blob ${digest}`);
    await res.body.dump();
    if (res.status === 200) return Number(header(res, "content-length") ?? -1);
    return null;
  }

  /**
   * Pushes a blob unless the repository has it: HEAD, then a cross-repository mount when
   * `mountFrom` is given, then a monolithic PUT (size ≤ chunkSize) or PATCH chunks with
   * Content-Range. A chunked upload records its session in ~/.cache/dockpack/oci-uploads after
   * each chunk, so a run killed mid-upload resumes at the registry's offset (GET upload status).
   * @throws DockpackError `OCI_*` from the registry; `DIGEST_INVALID` (the registry's check).
   */
  async pushBlob(digest: string, size: number, options: PushBlobOptions): Promise<PushBlobResult> {
    if (!DIGEST_RE.test(digest)) throw new DockpackError("DIGEST_INVALID", `not a sha256 digest: ${digest}`);
    if ((await this.blobSize(digest)) !== null) return { digest, size, how: "exists", sent: 0 };
    const base = `/v2/${this.repository}/blobs/uploads/`;
    const scopes = options.mountFrom ? [...this.#push, `repository:${options.mountFrom}:pull`] : this.#push;
    if (options.mountFrom && options.mountFrom !== this.repository) {
      const res = await this.transport.request({
        method: "POST",
        path: `${base}?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(options.mountFrom)}`,
        scopes,
      });
      await res.body.dump();
      if (res.status === 201) return { digest, size, how: "mounted", sent: 0 };
      if (res.status === 202) await this.#cancel(res); // mount refused: an upload session was opened instead
    }
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (size <= chunkSize) {
      const location = await this.#startUpload();
      const res = await this.transport.request({
        method: "PUT",
        path: withDigest(location, digest),
        headers: { "content-type": "application/octet-stream" },
        body: { open: () => options.open(0), length: size },
        scopes: this.#push,
      });
      if (res.status !== 201) return this.transport.fail(res, `upload of blob ${digest}`);
      await res.body.dump();
      options.onProgress?.(size);
      return { digest, size, how: "uploaded", sent: size };
    }
    return this.#chunked(digest, size, chunkSize, options);
  }

  async #cancel(res: RegistryResponse): Promise<void> {
    const loc = header(res, "location");
    if (!loc) return;
    const del = await this.transport.request({ method: "DELETE", path: this.#abs(loc), scopes: this.#push });
    await del.body.dump();
  }

  #abs(location: string): string {
    return new URL(location, `${this.transport.base}/`).toString();
  }

  async #startUpload(): Promise<string> {
    const res = await this.transport.request({
      method: "POST",
      path: `/v2/${this.repository}/blobs/uploads/`,
      scopes: this.#push,
    });
    const loc = header(res, "location");
    if (res.status !== 202 || !loc) return this.transport.fail(res, "starting a blob upload");
    await res.body.dump();
    return this.#abs(loc);
  }

  async #chunked(
    digest: string,
    size: number,
    chunkSize: number,
    options: PushBlobOptions,
  ): Promise<PushBlobResult> {
    const key = sha256Hex(`${this.registry}/${this.repository}@${digest}`);
    const stateFile = join(uploadStateDir(), `${key}.json`);
    let location: string | undefined;
    let offset = 0;
    try {
      const saved = JSON.parse(await readFile(stateFile, "utf8")) as { location: string };
      const res = await this.transport.request({ method: "GET", path: saved.location, scopes: this.#push });
      await res.body.dump();
      const range = header(res, "range");
      if (res.status === 204 && range) {
        location = this.#abs(header(res, "location") ?? saved.location);
        offset = Number(range.split("-")[1]) + 1;
      }
    } catch {
      // no saved session, or it is gone: start over
    }
    if (!location) location = await this.#startUpload();
    const resumedAt = offset;
    await mkdir(uploadStateDir(), { recursive: true });
    while (offset < size) {
      const end = Math.min(size, offset + chunkSize) - 1;
      const start = offset;
      const res = await this.transport.request({
        method: "PATCH",
        path: location,
        headers: { "content-type": "application/octet-stream", "content-range": `${start}-${end}` },
        body: { open: () => limitStream(options.open(start), end - start + 1), length: end - start + 1 },
        scopes: this.#push,
      });
      if (res.status !== 202) return this.transport.fail(res, `chunk ${start}-${end} of blob ${digest}`);
      await res.body.dump();
      location = this.#abs(header(res, "location") ?? location);
      const range = header(res, "range");
      offset = range ? Number(range.split("-")[1]) + 1 : end + 1;
      await writeFile(stateFile, JSON.stringify({ location, offset }));
      options.onProgress?.(offset);
    }
    const res = await this.transport.request({
      method: "PUT",
      path: withDigest(location, digest),
      scopes: this.#push,
    });
    await rm(stateFile, { force: true });
    if (res.status !== 201) return this.transport.fail(res, `completing the upload of blob ${digest}`);
    await res.body.dump();
    return { digest, size, how: "uploaded", sent: size - resumedAt };
  }

  /**
   * Streams a blob, verified: the returned stream fails with `DIGEST_MISMATCH` at its end when
   * the bytes do not match `digest`. `start` (bytes) asks for a Range (resume); verification
   * then covers only the caller's concatenation, see {@link downloadBlob}.
   * @throws DockpackError `OCI_NOT_FOUND` and the transport's errors.
   */
  async openBlob(digest: string, start = 0): Promise<Readable> {
    const res = await this.transport.request({
      method: "GET",
      path: `/v2/${this.repository}/blobs/${digest}`,
      headers: start > 0 ? { range: `bytes=${start}-` } : {},
      scopes: this.#pull,
    });
    if (res.status === 200 && start === 0) {
      const verified = verifyingStream(digest, `blob ${digest} from ${this.registry}/${this.repository}`);
      // pipe() does not pass a failing body on: a cut connection must fail the stream, not stall it
      res.body.on("error", (e) => verified.destroy(e));
      return res.body.pipe(verified);
    }
    if (res.status === 206 || (res.status === 200 && start > 0)) return res.body;
    return this.transport.fail(res, `GET blob ${digest}`);
  }

  /**
   * Streams a blob's bytes as the registry sends them, unverified: the caller hashes them
   * (registry-stream.ts checks each chunk while it streams into an import).
   * @throws DockpackError `OCI_NOT_FOUND` and the transport's errors.
   */
  async openRaw(digest: string): Promise<Readable> {
    const res = await this.transport.request({
      method: "GET",
      path: `/v2/${this.repository}/blobs/${digest}`,
      scopes: this.#pull,
    });
    if (res.status === 200) return res.body;
    return this.transport.fail(res, `GET blob ${digest}`);
  }

  /**
   * Downloads a blob into `path` (created or resumed: existing bytes are kept and the rest is
   * fetched with a Range request), then checks size and digest of the whole file.
   * @throws DockpackError `DIGEST_MISMATCH` (the file is removed), `OCI_*`.
   */
  async downloadBlob(desc: Descriptor, path: string, onProgress?: (done: number) => void): Promise<void> {
    let have = 0;
    try {
      have = (await stat(path)).size;
    } catch {
      // fresh
    }
    if (have > desc.size) {
      await rm(path, { force: true });
      have = 0;
    }
    if (have < desc.size) {
      const src = await this.openBlob(desc.digest, have);
      let done = have;
      const counted = limitStream(src, desc.size - have);
      counted.on("data", (c: Buffer) => {
        done += c.length;
        onProgress?.(done);
      });
      await pipeline(counted, createWriteStream(path, { flags: have > 0 ? "a" : "w" }));
    }
    const got = await digestFile(path);
    if (got.digest !== desc.digest || got.size !== desc.size) {
      await rm(path, { force: true });
      throw new DockpackError(
        "DIGEST_MISMATCH",
        `blob ${desc.digest} from ${this.registry}/${this.repository}: got ${got.digest} (${got.size} bytes, expected ${desc.size})`,
        {
          hint: "The registry served corrupt data; nothing was kept. Retry or report it to the registry's operator.",
        },
      );
    }
  }

  /**
   * Fetches a manifest or index by tag or digest (bytes capped at {@link MAX_MANIFEST_BYTES};
   * a digest reference is verified).
   * @throws DockpackError `OCI_NOT_FOUND`, `OCI_MANIFEST_TOO_LARGE`, `DIGEST_MISMATCH`, `OCI_MANIFEST_INVALID`.
   */
  async getManifest(reference: string, accept: string[] = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const res = await this.transport.request({
      method: "GET",
      path: `/v2/${this.repository}/manifests/${reference}`,
      headers: { accept: accept.join(", ") },
      scopes: this.#pull,
    });
    if (res.status !== 200) return this.transport.fail(res, `GET manifest ${this.repository}:${reference}`);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new DockpackError(
          "OCI_MANIFEST_TOO_LARGE",
          `manifest ${this.repository}:${reference} exceeds ${MAX_MANIFEST_BYTES} bytes`,
        );
      }
      chunks.push(c as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (reference.startsWith("sha256:") && digest !== reference)
      throw new DockpackError("DIGEST_MISMATCH", `manifest ${this.repository}@${reference}: got ${digest}`);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
    } catch {
      throw new DockpackError("OCI_MANIFEST_INVALID", `manifest ${this.repository}:${reference} is not JSON`);
    }
    const mediaType =
      (json.mediaType as string | undefined) ?? (header(res, "content-type") ?? "").split(";")[0];
    return { bytes, mediaType, digest, json };
  }

  /** Digest of a manifest by tag (HEAD), or null when the tag does not exist. */
  async resolve(reference: string): Promise<string | null> {
    const res = await this.transport.request({
      method: "HEAD",
      path: `/v2/${this.repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT.join(", ") },
      scopes: this.#pull,
    });
    if (res.status !== 200 && res.status !== 404)
      return this.transport.fail(res, `HEAD manifest ${this.repository}:${reference}`);
    await res.body.dump();
    if (res.status === 404) return null;
    return header(res, "docker-content-digest") ?? (await this.getManifest(reference)).digest;
  }

  /**
   * Puts a manifest under a tag or its digest. Returns its digest and whether the registry
   * processed `subject` (the `OCI-Subject` header, spec 1.1).
   */
  async putManifest(
    reference: string,
    bytes: Buffer,
    mediaType: string,
  ): Promise<{ digest: string; subjectAccepted: boolean }> {
    const res = await this.transport.request({
      method: "PUT",
      path: `/v2/${this.repository}/manifests/${reference}`,
      headers: { "content-type": mediaType },
      body: bytes,
      scopes: this.#push,
    });
    if (res.status !== 201) return this.transport.fail(res, `PUT manifest ${this.repository}:${reference}`);
    await res.body.dump();
    return { digest: `sha256:${sha256Hex(bytes)}`, subjectAccepted: Boolean(header(res, "oci-subject")) };
  }

  /** Deletes a manifest by digest. */
  async deleteManifest(digest: string): Promise<void> {
    const res = await this.transport.request({
      method: "DELETE",
      path: `/v2/${this.repository}/manifests/${digest}`,
      scopes: this.#push,
    });
    if (res.status !== 202) return this.transport.fail(res, `DELETE manifest ${digest}`);
    await res.body.dump();
  }

  /** All tags (follows `Link` pagination); [] when the repository does not exist. */
  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${this.repository}/tags/list?n=1000`;
    while (path) {
      const res = await this.transport.request({ method: "GET", path, scopes: this.#pull });
      if (res.status === 404) {
        await res.body.dump();
        return tags;
      }
      if (res.status !== 200) return this.transport.fail(res, `tags of ${this.repository}`);
      const body = JSON.parse(await res.body.text()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const link = header(res, "link");
      const m = link ? /<([^>]+)>/.exec(link) : null;
      path = m ? m[1] : undefined;
    }
    return tags;
  }

  /**
   * Referrers of `digest` (manifests whose `subject` is it), optionally of one artifactType:
   * GET /v2/<name>/referrers/<digest>, or the fallback tag `sha256-<hex>` (an index) when the
   * registry has no referrers API.
   */
  async referrers(digest: string, artifactType?: string): Promise<Descriptor[]> {
    const res = await this.transport.request({
      method: "GET",
      path: `/v2/${this.repository}/referrers/${digest}${artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ""}`,
      headers: { accept: OCI_INDEX },
      scopes: this.#pull,
    });
    let list: Descriptor[];
    const ctype = header(res, "content-type") ?? "";
    if (res.status === 200 && ctype.startsWith(OCI_INDEX)) {
      list = ((JSON.parse(await res.body.text()) as ImageIndex).manifests ?? []) as Descriptor[];
    } else {
      await res.body.dump();
      list = (await this.#fallbackIndex(digest))?.manifests ?? [];
    }
    return artifactType ? list.filter((d) => d.artifactType === artifactType) : list;
  }

  async #fallbackIndex(digest: string): Promise<ImageIndex | null> {
    try {
      return (await this.getManifest(fallbackTag(digest), [OCI_INDEX])).json as unknown as ImageIndex;
    } catch (e) {
      if ((e as DockpackError).code === "OCI_NOT_FOUND") return null;
      throw e;
    }
  }

  /**
   * Pushes a manifest that has a `subject`, by digest; when the registry does not process the
   * subject (no referrers API), adds its descriptor to the fallback tag index `sha256-<hex>`.
   */
  async pushReferrer(bytes: Buffer, desc: Descriptor, subjectDigest: string): Promise<string> {
    const { digest, subjectAccepted } = await this.putManifest(desc.digest, bytes, desc.mediaType);
    if (!subjectAccepted) {
      const index: ImageIndex = (await this.#fallbackIndex(subjectDigest)) ?? {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [],
      };
      if (!index.manifests.some((m) => m.digest === digest)) index.manifests.push(desc);
      await this.putManifest(fallbackTag(subjectDigest), Buffer.from(JSON.stringify(index)), OCI_INDEX);
    }
    return digest;
  }
}

/** The referrers fallback tag of a digest: `sha256-<hex>` (distribution spec 1.1). */
export function fallbackTag(digest: string): string {
  return digest.replace(":", "-");
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set("digest", digest);
  return u.toString();
}

/** Passes at most `n` bytes of `src` on, then ends (and destroys `src`). */
export function limitStream(src: Readable, n: number): Readable {
  let left = n;
  async function* gen() {
    if (left <= 0) return;
    for await (const c of src) {
      const buf = c as Buffer;
      if (buf.length >= left) {
        yield buf.subarray(0, left);
        left = 0;
        break;
      }
      left -= buf.length;
      yield buf;
    }
    src.destroy();
  }
  return Readable.from(gen(), { objectMode: false });
}

/**
 * Opens a repository from a reference: looks up credentials (docker config) unless given,
 * pings the registry.
 */
export async function openRepository(
  ref: string | OciReference,
  options: RegistryOptions = {},
): Promise<{ repo: OciRepository; ref: OciReference }> {
  const parsed = typeof ref === "string" ? parseReference(ref) : ref;
  const creds =
    options.credentials === undefined ? await getCredentials(parsed.registry) : options.credentials;
  const transport = new RegistryTransport(parsed.registry, creds, options);
  await transport.ping();
  return { repo: new OciRepository(transport, parsed.repository), ref: parsed };
}

/** A read stream of a file range [start, end) used as a blob source. */
export function fileRange(path: string, start: number, end: number): (from: number) => Readable {
  return (from) => createReadStream(path, { start: start + from, end: end - 1, highWaterMark: 1024 * 1024 });
}
