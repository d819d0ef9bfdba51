/**
 * core/oci: the OCI distribution client (auth, blobs, manifests, referrers) and docker-config
 * credentials. See client.ts, transport.ts, credentials.ts, reference.ts, media-types.ts; also
 * content-defined chunking (cdc.ts), one file as an artifact (file-artifact.ts) and an image
 * pulled into an OCI layout (image-pull.ts).
 */
export * from "./cdc.js";
export * from "./client.js";
export * from "./credentials.js";
export * from "./file-artifact.js";
export * from "./image-pull.js";
export * from "./login.js";
export * from "./media-types.js";
export * from "./reference.js";
export * from "./transport.js";
