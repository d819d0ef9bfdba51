/**
 * Test hook for failure injection: when the environment variable `DOCKPACK_FAIL_AT` names a step
 * (e.g. `import:volumes`, `export:volume`), {@link failAt} throws `INJECTED_FAILURE` right after
 * that step has done its work, so tests can check that everything is rolled back. Documented in
 * docs/commands/packages.md; not meant for users.
 */
import { DockpackError } from "../core/errors.js";

/** Throws `INJECTED_FAILURE` when `DOCKPACK_FAIL_AT` equals `step`. */
export function failAt(step: string): void {
  if (process.env.DOCKPACK_FAIL_AT === step)
    throw new DockpackError("INJECTED_FAILURE", `Injected failure after step '${step}' (DOCKPACK_FAIL_AT).`, {
      hint: "Unset DOCKPACK_FAIL_AT; it is a test hook.",
    });
}
