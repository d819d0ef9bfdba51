/**
 * Reading and validating `devcontainer-feature.json` (Dev Container Features spec,
 * https://containers.dev/implementors/features/ and the spec's devContainerFeature.schema.json).
 *
 * Validation never stops at the first problem: {@link validateFeatureMetadata} returns every
 * {@link FeatureProblem} it finds, each naming the feature folder, the file and the JSON path.
 */
import { type ParseError, parse, printParseErrorCode } from "jsonc-parser";
import semver from "semver";
import { jsonNestingDepth, MAX_JSON_DEPTH, tooDeepMessage } from "../core/json.js";
import { checkAgainstSchema, jsonPathMember as member, unknownProperties } from "./schema-check.js";

/** The metadata file every feature folder holds. */
export const FEATURE_FILE = "devcontainer-feature.json";
/** The entrypoint script every feature folder holds. */
export const INSTALL_SCRIPT = "install.sh";

/**
 * The ids the spec recommends: lowercase letters, digits, `-` and `_`. Other ids (upper case, `.`)
 * are accepted with a warning, as the devcontainer CLI packages them (issue 12 A10); an id must
 * equal its folder name.
 */
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

/** Semantic Versioning 2.0.0, the grammar of https://semver.org (no `v` prefix, no spaces). */
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** Top-level properties the spec's prose defines beyond its schema: known, not warned about. */
const BEYOND_SCHEMA = new Set(["$schema", "keywords", "dependsOn", "currentId"]);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
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

/** Deepest nesting of objects and arrays a metadata file may have (core/json.ts). */
export { MAX_JSON_DEPTH };

/** The deepest `{`/`[` nesting of JSONC text (strings and comments skipped), in one linear pass. */
export const maxDepth = jsonNestingDepth;

/**
 * Parses JSON with comments and trailing commas (as the devcontainer CLI reads it).
 * @returns the value, or the syntax errors as `line:column message` strings (1-based).
 */
export function parseJsonc(input: string): { value: unknown; errors: string[] } {
  // A UTF-8 byte-order mark is accepted, as the devcontainer CLI does (issue 12 A10).
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  // The parser recurses per level: a 100 000-deep document would overflow the stack (A13).
  const depth = maxDepth(text);
  if (depth > MAX_JSON_DEPTH) return { value: undefined, errors: [tooDeepMessage(depth)] };
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

/** What {@link checkFeatureMetadata} found: errors refuse the feature, warnings do not. */
export interface FeatureMetadataCheck {
  /** Problems that make the feature invalid, each `{ path (JSONPath), message }`. */
  errors: { path: string; message: string }[];
  /** Accepted, as the devcontainer CLI accepts them, but worth saying: unknown properties, unusual ids. */
  warnings: { path: string; message: string }[];
}

/** True when JSONPath `a` is `b` or one lies inside the other. */
function related(a: string, b: string): boolean {
  const inside = (x: string, y: string) => x.startsWith(y) && (x[y.length] === "." || x[y.length] === "[");
  return a === b || inside(a, b) || inside(b, a);
}

/**
 * Checks parsed feature metadata: first against the official spec schema (see schema-check.ts:
 * wrong types, missing required properties, mounts that are strings, command objects whose
 * values are not commands), then dockpack's own checks on top: `name` required (as the
 * devcontainer CLI requires it), `id` equal to `folderName`, `version` a semantic version (the
 * spec's prose), an option with both `enum` and `proposals`, an empty `enum`, a default outside
 * its `enum`, a legacy id equal to the id; and the types of `keywords`, `dependsOn` and `$schema`,
 * which the spec's prose defines beyond its schema. Properties the schema does not know and ids
 * outside `[a-z0-9_-]` are warnings (the devcontainer CLI packages them).
 * @param value the parsed JSON (any shape)
 * @param folderName the feature folder's name (the id must equal it)
 * @returns errors and warnings as `{ path, message }` (JSONPath); both empty when clean
 */
export function checkFeatureMetadata(value: unknown, folderName: string): FeatureMetadataCheck {
  const problems: { path: string; message: string }[] = [];
  const warnings: { path: string; message: string }[] = [];
  const report = (path: string, message: string) => problems.push({ path, message });
  if (!isObject(value)) {
    report("$", `the file must hold a JSON object, not ${typeName(value)}`);
    return { errors: problems, warnings };
  }
  for (const key of ["id", "version", "name"]) {
    if (value[key] === undefined) report("$", `the required property '${key}' is missing`);
  }
  for (const [key, v] of Object.entries(value)) {
    const kind = FEATURE_PROPERTIES[key];
    if (kind && !matchesKind(v, kind))
      report(member("$", key), `'${key}' must be ${KIND_TEXT[kind]}, not ${typeName(v)}`);
  }
  const { id, version, options, legacyIds, containerEnv } = value;
  if (typeof id === "string") {
    if (!FEATURE_ID_RE.test(id))
      warnings.push({
        path: "$.id",
        message: `the id '${id}' uses characters other than lowercase letters, digits, '-' and '_' (accepted, as the devcontainer CLI does)`,
      });
    if (id !== folderName) report("$.id", `the id '${id}' does not match its folder name '${folderName}'`);
  }
  // semver.valid() also takes "v1.0.0" and "=1.0.0": the spec's semver is the strict grammar (A11).
  if (typeof version === "string" && (semver.valid(version) === null || !SEMVER_RE.test(version)))
    report("$.version", `the version '${version}' is not a semantic version (e.g. 1.2.3)`);
  if (isObject(options)) validateOptions(options, report);
  if (Array.isArray(legacyIds)) {
    legacyIds.forEach((legacy, i) => {
      if (typeof legacy !== "string") return;
      if (!FEATURE_ID_RE.test(legacy))
        warnings.push({
          path: `$.legacyIds[${i}]`,
          message: `the legacy id '${legacy}' uses characters other than lowercase letters, digits, '-' and '_'`,
        });
      if (legacy === id) report(`$.legacyIds[${i}]`, "a legacy id must differ from the current id");
    });
  }
  if (isObject(containerEnv)) {
    for (const [k, v] of Object.entries(containerEnv)) {
      if (typeof v !== "string") report(member("$.containerEnv", k), `must be a string, not ${typeName(v)}`);
    }
  }
  // The schema's errors, unless dockpack's own check already named the same value (or one in it).
  const own = problems.map((p) => p.path);
  for (const f of checkAgainstSchema(value)) {
    if (!own.some((p) => related(p, f.path))) problems.push(f);
  }
  for (const f of unknownProperties(value, BEYOND_SCHEMA))
    warnings.push({ ...f, message: `${f.message}; kept as written` });
  return { errors: problems, warnings };
}

/**
 * The errors of {@link checkFeatureMetadata} (warnings left out).
 * @returns every error as `{ path, message }` (JSONPath), empty when valid
 */
export function validateFeatureMetadata(
  value: unknown,
  folderName: string,
): { path: string; message: string }[] {
  return checkFeatureMetadata(value, folderName).errors;
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
