/**
 * The file name suffix of environment packages, apart from package-format.ts (which re-exports
 * it) so that `packages list` can pick a folder's packages before it loads the reader and zod.
 */
export const PACKAGE_EXTENSION = ".dockpack.tar";
