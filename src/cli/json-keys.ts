/**
 * One key casing for every JSON document the CLI (`--json`) and the MCP server (structured
 * content) print: camelCase. Library results keep their own shapes (a package's metadata.json
 * keeps its documented snake_case field names in the file); only what is printed is renamed.
 *
 * Values that are documents or maps owned by someone else are copied verbatim — their keys are
 * data, not field names (see {@link VERBATIM_KEYS}).
 */

/**
 * Keys whose value is copied as it is:
 * - a tool's input, output and per-step outputs, and its JSON Schemas (`result`, `steps`, `input`,
 *   `inputSchema`/`outputSchema`, `exampleInput`): the tool author's field names;
 * - maps keyed by user names: compose service → port (`ports`, `hostPorts`), `labels`,
 *   `annotations`, `buildArgs`, `driverOpts`, `env`, `containerEnv`, feature `options`;
 * - embedded documents with their own specification: a package's `metadata` (metadata.json of
 *   docs/formats, as written in the file), an OCI image `config`, a compose `doc`,
 *   a devcontainer `customizations` block, an OCI `platform`.
 */
export const VERBATIM_KEYS: ReadonlySet<string> = new Set([
  "result",
  "steps",
  "input",
  "inputSchema",
  "outputSchema",
  "exampleInput",
  "ports",
  "hostPorts",
  "labels",
  "annotations",
  "buildArgs",
  "driverOpts",
  "env",
  "containerEnv",
  "options",
  "metadata",
  "config",
  "doc",
  "customizations",
  "platform",
]);

/** `created_at` → `createdAt`; keys without an underscore between letters/digits are unchanged. */
export function camelKey(key: string): string {
  return /^[a-z][a-zA-Z0-9]*(_[a-zA-Z0-9]+)+$/.test(key)
    ? key.replace(/_([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase())
    : key;
}

/**
 * A copy of `value` whose object keys are camelCase ({@link camelKey}), at every depth, except
 * inside the values of {@link VERBATIM_KEYS}. A class instance is renamed through its `toJSON()`
 * when it has one, else left to JSON.stringify.
 */
export function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value === null || typeof value !== "object") return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const toJSON = (value as { toJSON?: () => unknown }).toJSON;
    return typeof toJSON === "function" ? camelKeys(toJSON.call(value)) : value;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = camelKey(k);
    out[key] = VERBATIM_KEYS.has(key) ? v : camelKeys(v);
  }
  return out;
}
