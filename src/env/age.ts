/**
 * The `age-encryption` library, imported on first use: its elliptic-curve code does ~40 ms of
 * set-up when it loads, which `packages inspect`, `validate` and `import` of a package without
 * encrypted members never need (issue 14 C18).
 */
type Age = typeof import("age-encryption");

let loaded: Age | undefined;

/** The age library, imported on the first call (later calls return the same module). */
export async function loadAge(): Promise<Age> {
  loaded ??= await import("age-encryption");
  return loaded;
}

/** The age library when an earlier {@link loadAge} has imported it, else undefined. */
export function ageIfLoaded(): Age | undefined {
  return loaded;
}
