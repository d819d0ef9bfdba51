/** The container image model: readers, writers and references (see image.ts). */
export * from "./container.js";
export * from "./docker-archive.js";
export * from "./extract.js";
export * from "./image.js";
export * from "./oci-layout.js";
export * from "./open.js";
export * from "./write.js";
