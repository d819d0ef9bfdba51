/**
 * `${VAR}` expansion in registry values (issue 12 A16): `"registry": "ghcr.io/${GITHUB_REPOSITORY}"`
 * is stored as written and expanded at build time from the environment, as CI systems expect.
 */
import { DockpackError } from "../core/errors.js";

/**
 * Replaces every `${NAME}` (NAME: letters, digits, `_`, not starting with a digit) in `value`
 * with `env[NAME]`; `$$` is a literal `$`. Throws `TARGETS_VARIABLE_MISSING` naming the variable
 * and where it is used (`what`) when it is not set, and `TARGETS_VARIABLE_INVALID` for a `${`
 * that is not closed or names nothing valid.
 */
export function expandVars(value: string, what: string, env: NodeJS.ProcessEnv = process.env): string {
  return value.replace(/\$\$|\$\{([^}]*)\}|\$\{[^}]*$/g, (match, name: string | undefined) => {
    if (match === "$$") return "$";
    if (name === undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new DockpackError(
        "TARGETS_VARIABLE_INVALID",
        `${what}: '${match}' is not a valid \${NAME} reference.`,
        {
          usage: true,
          hint: "Write ${NAME} with a variable name of letters, digits and '_'.",
        },
      );
    }
    const v = env[name];
    if (v === undefined) {
      throw new DockpackError("TARGETS_VARIABLE_MISSING", `${what} uses \${${name}}, which is not set.`, {
        usage: true,
        hint: `Set ${name} in the environment (e.g. export ${name}=…), or pass --registry.`,
        details: { variable: name },
      });
    }
    return v;
  });
}
