/**
 * core/oci: the OCI distribution client (auth, blobs, manifests, referrers) and docker-config
 * credentials. See client.ts, transport.ts, credentials.ts, reference.ts, media-types.ts.
 */
export * from "./client.js";
export * from "./credentials.js";
export * from "./login.js";
export * from "./media-types.js";
export * from "./reference.js";
export * from "./transport.js";
