/**
 * Reading and validating `devcontainer-feature.json` (Dev Container Features spec,
 * https://containers.dev/implementors/features/ and the spec's devContainerFeature.schema.json).
 *
 * Validation never stops at the first problem: {@link validateFeatureMetadata} returns every
 * {@link FeatureProblem} it finds, each naming the feature folder, the file and the JSON path.
 */
import { type ParseError, parse, printParseErrorCode } from "jsonc-parser";
import semver from "semver";

/** The metadata file every feature folder holds. */
export const FEATURE_FILE = "devcontainer-feature.json";
/** The entrypoint script every feature folder holds. */
export const INSTALL_SCRIPT = "install.sh";

/** A feature id: lowercase letters, digits, `-` and `_` (it must also equal its folder name). */
export const FEATURE_ID_RE = /^[a-z0-9_-]+$/;

/**
 * The parsed content of a `devcontainer-feature.json`: the spec's properties (only `id`,
 * `version` and `name` are required) kept verbatim, in file order, as the collection metadata
 * carries them.
 */
export interface FeatureMetadata {
  id: string;
  version: string;
  name: string;
  [property: string]: unknown;
}

/** One problem found in a feature folder. */
export interface FeatureProblem {
  /** The feature folder (absolute path). */
  feature: string;
  /** The file the problem is in (absolute path), or the folder itself for a missing file. */
  file: string;
  /** JSONPath of the offending value (`$`, `$.options.tag.default`), or undefined for file-level problems. */
  path?: string;
  /** What is wrong, one sentence. */
  message: string;
}

type Kind = "string" | "boolean" | "object" | "string[]" | "array" | "command";

/** The top-level properties of devcontainer-feature.json the spec defines, with their JSON types. */
export const FEATURE_PROPERTIES: Record<string, Kind> = {
  $schema: "string",
  id: "string",
  version: "string",
  name: "string",
  description: "string",
  documentationURL: "string",
  licenseURL: "string",
  keywords: "string[]",
  options: "object",
  containerEnv: "object",
  privileged: "boolean",
  init: "boolean",
  capAdd: "string[]",
  securityOpt: "string[]",
  entrypoint: "string",
  customizations: "object",
  dependsOn: "object",
  installsAfter: "string[]",
  legacyIds: "string[]",
  deprecated: "boolean",
  mounts: "array",
  onCreateCommand: "command",
  updateContentCommand: "command",
  postCreateCommand: "command",
  postStartCommand: "command",
  postAttachCommand: "command",
  /** Added by the devcontainer CLI when it packages a feature with legacyIds. */
  currentId: "string",
};

const OPTION_PROPERTIES = new Set(["type", "default", "description", "enum", "proposals"]);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** JSONPath member accessor: `.name` for plain names, `["odd name"]` otherwise. */
function member(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

function matchesKind(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case "string":
      return typeof v === "string";
    case "boolean":
      return typeof v === "boolean";
    case "object":
      return isObject(v);
    case "array":
      return Array.isArray(v);
    case "string[]":
      return Array.isArray(v) && v.every((x) => typeof x === "string");
    case "command":
      return (
        typeof v === "string" || (Array.isArray(v) && v.every((x) => typeof x === "string")) || isObject(v)
      );
  }
}

const KIND_TEXT: Record<Kind, string> = {
  string: "a string",
  boolean: "a boolean",
  object: "an object",
  array: "an array",
  "string[]": "an array of strings",
  command: "a string, an array of strings or an object",
};

/** Deepest nesting of objects and arrays a metadata file may have. */
export const MAX_JSON_DEPTH = 256;

/** The deepest `{`/`[` nesting of JSONC text (strings and comments skipped), in one linear pass. */
export function maxDepth(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 1;
    } else if (c === "{" || c === "[") max = Math.max(max, ++depth);
    else if (c === "}" || c === "]") depth--;
  }
  return max;
}

/**
 * Parses JSON with comments and trailing commas (as the devcontainer CLI reads it).
 * @returns the value, or the syntax errors as `line:column message` strings (1-based).
 */
export function parseJsonc(input: string): { value: unknown; errors: string[] } {
  // A UTF-8 byte-order mark is accepted, as the devcontainer CLI does (issue 12 A10).
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  // The parser recurses per level: a 100 000-deep document would overflow the stack (A13).
  const depth = maxDepth(text);
  if (depth > MAX_JSON_DEPTH)
    return {
      value: undefined,
      errors: [`nesting is ${depth} levels deep, more than the ${MAX_JSON_DEPTH} allowed`],
    };
  const errors: ParseError[] = [];
  const value = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  const lineOf = (offset: number) => {
    const before = text.slice(0, offset);
    const line = before.split("\n").length;
    const column = offset - before.lastIndexOf("\n");
    return `${line}:${column}`;
  };
  return {
    value,
    errors: errors.map((e) => `${lineOf(e.offset)} ${printParseErrorCode(e.error)}`),
  };
}

function validateOptions(options: Record<string, unknown>, report: (path: string, message: string) => void) {
  for (const [key, option] of Object.entries(options)) {
    const at = member("$.options", key);
    if (!isObject(option)) {
      report(at, `option '${key}' must be an object, not ${typeName(option)}`);
      continue;
    }
    for (const prop of Object.keys(option)) {
      if (!OPTION_PROPERTIES.has(prop))
        report(
          member(at, prop),
          `unknown option property '${prop}' (allowed: ${[...OPTION_PROPERTIES].join(", ")})`,
        );
    }
    if (option.description !== undefined && typeof option.description !== "string")
      report(`${at}.description`, `must be a string, not ${typeName(option.description)}`);
    const type = option.type;
    if (type !== "boolean" && type !== "string") {
      report(
        `${at}.type`,
        `option type must be "boolean" or "string", not ${JSON.stringify(type) ?? "missing"}`,
      );
      continue;
    }
    const hasEnum = option.enum !== undefined;
    const hasProposals = option.proposals !== undefined;
    if (type === "boolean") {
      if (hasEnum) report(`${at}.enum`, "a boolean option takes no 'enum'");
      if (hasProposals) report(`${at}.proposals`, "a boolean option takes no 'proposals'");
      if (option.default === undefined) report(`${at}.default`, "the option has no 'default' (required)");
      else if (typeof option.default !== "boolean")
        report(
          `${at}.default`,
          `the default of a boolean option must be true or false, not ${JSON.stringify(option.default)}`,
        );
      continue;
    }
    if (hasEnum && hasProposals)
      report(at, "an option has either 'enum' (closed list) or 'proposals' (suggestions), not both");
    for (const listName of ["enum", "proposals"] as const) {
      const list = option[listName];
      if (list === undefined) continue;
      if (!Array.isArray(list) || !list.every((x) => typeof x === "string"))
        report(`${at}.${listName}`, `'${listName}' must be an array of strings`);
      else if (listName === "enum" && list.length === 0)
        report(`${at}.enum`, "'enum' must list at least one value");
    }
    if (option.default === undefined) report(`${at}.default`, "the option has no 'default' (required)");
    else if (typeof option.default !== "string")
      report(
        `${at}.default`,
        `the default of a string option must be a string, not ${JSON.stringify(option.default)}`,
      );
    else if (hasEnum && Array.isArray(option.enum) && !option.enum.includes(option.default))
      report(
        `${at}.default`,
        `the default ${JSON.stringify(option.default)} is not one of its 'enum' values`,
      );
  }
}

/**
 * Validates parsed feature metadata against the spec's rules: `id`, `version` (semver) and `name`
 * required; `id` equal to `folderName` and made of lowercase letters, digits, `-`, `_`; known
 * top-level properties with the right JSON types (unknown ones are problems too); options of type
 * `boolean` or `string`, not both `enum` and `proposals`, a `default` of the option's type and,
 * with `enum`, one of its values; `legacyIds` valid ids other than `id`.
 * @param value the parsed JSON (any shape)
 * @param folderName the feature folder's name (the id must equal it)
 * @returns every problem as `{ path, message }` (JSONPath), empty when valid
 */
export function validateFeatureMetadata(
  value: unknown,
  folderName: string,
): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const report = (path: string, message: string) => problems.push({ path, message });
  if (!isObject(value)) {
    report("$", `the file must hold a JSON object, not ${typeName(value)}`);
    return problems;
  }
  for (const key of ["id", "version", "name"]) {
    if (value[key] === undefined) report("$", `the required property '${key}' is missing`);
  }
  for (const [key, v] of Object.entries(value)) {
    const kind = FEATURE_PROPERTIES[key];
    if (!kind) {
      report(member("$", key), `unknown property '${key}' (not in the Dev Container Features spec)`);
      continue;
    }
    if (!matchesKind(v, kind))
      report(member("$", key), `'${key}' must be ${KIND_TEXT[kind]}, not ${typeName(v)}`);
  }
  const { id, version, options, legacyIds, containerEnv, mounts } = value;
  if (typeof id === "string") {
    if (!FEATURE_ID_RE.test(id))
      report("$.id", `the id '${id}' may only use lowercase letters, digits, '-' and '_'`);
    if (id !== folderName) report("$.id", `the id '${id}' does not match its folder name '${folderName}'`);
  }
  if (typeof version === "string" && semver.valid(version) === null)
    report("$.version", `the version '${version}' is not a semantic version (e.g. 1.2.3)`);
  if (isObject(options)) validateOptions(options, report);
  if (Array.isArray(legacyIds)) {
    legacyIds.forEach((legacy, i) => {
      if (typeof legacy !== "string") return;
      if (!FEATURE_ID_RE.test(legacy))
        report(
          `$.legacyIds[${i}]`,
          `the legacy id '${legacy}' may only use lowercase letters, digits, '-' and '_'`,
        );
      if (legacy === id) report(`$.legacyIds[${i}]`, "a legacy id must differ from the current id");
    });
  }
  if (isObject(containerEnv)) {
    for (const [k, v] of Object.entries(containerEnv)) {
      if (typeof v !== "string") report(member("$.containerEnv", k), `must be a string, not ${typeName(v)}`);
    }
  }
  if (Array.isArray(mounts)) {
    mounts.forEach((m, i) => {
      if (typeof m === "string") return;
      if (!isObject(m) || !["bind", "volume"].includes(String(m.type)) || typeof m.target !== "string")
        report(
          `$.mounts[${i}]`,
          "a mount is a string or an object with type 'bind' or 'volume', source and target",
        );
    });
  }
  return problems;
}

/**
 * The metadata the devcontainer CLI publishes for a feature: the parsed file, plus
 * `currentId: id` when `legacyIds` is non-empty (devcontainer CLI `features package` adds it to
 * both the collection metadata and the packaged devcontainer-feature.json).
 */
export function publishedMetadata(meta: FeatureMetadata): { metadata: FeatureMetadata; rewritten: boolean } {
  if (Array.isArray(meta.legacyIds) && meta.legacyIds.length > 0)
    return { metadata: { ...meta, currentId: meta.id }, rewritten: true };
  return { metadata: meta, rewritten: false };
}
