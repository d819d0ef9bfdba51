/**
 * Checking `devcontainer-feature.json` against the official Dev Container Feature schema
 * (`schema/devContainerFeature.schema.json`, vendored from github.com/devcontainers/spec, MIT; see
 * `schema/README.md`), with ajv (JSON Schema draft-07).
 *
 * The schema closes every object (`additionalProperties: false`), yet the official devcontainer
 * CLI packages features with unknown properties (`x-vendor`, an option `title`). dockpack follows
 * the CLI there (issue 12 A10): a property the schema does not know is a warning, kept as written;
 * everything else the schema forbids (a wrong type, a missing required property, a mount that is
 * a string, a command object whose values are not commands) is an error (A11).
 */
import { Ajv, type ErrorObject } from "ajv";
import schema from "./schema/devContainerFeature.schema.json" with { type: "json" };

/** A JSON schema node, as far as this module reads one. */
interface SchemaNode {
  $ref?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  [keyword: string]: unknown;
}

/** One finding of {@link checkAgainstSchema}: where (JSONPath) and what. */
export interface SchemaFinding {
  /** JSONPath of the value (`$`, `$.options.tag`, `$.mounts[0]`). */
  path: string;
  /** One sentence. */
  message: string;
}

const ROOT = schema as unknown as SchemaNode;

/** A copy of the schema with every `additionalProperties: false` removed (unknown properties allowed). */
function openSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(openSchema);
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "additionalProperties" && v === false) continue;
    out[k] = openSchema(v);
  }
  return out;
}

let validator: ReturnType<Ajv["compile"]> | undefined;
function validate(value: unknown): ErrorObject[] {
  // Compiled on first use: ajv code generation costs ~20 ms, and only `features` needs it.
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(openSchema(ROOT) as object);
  return validator(value) ? [] : [...(validator.errors ?? [])];
}

/** JSONPath member accessor: `.name` for plain names, `["odd name"]` otherwise. */
export function jsonPathMember(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Converts an ajv instancePath (JSON pointer) into JSONPath, using `value` to tell indexes from keys. */
function toJsonPath(pointer: string, value: unknown): string {
  let path = "$";
  let node = value;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node)) {
      path += `[${key}]`;
      node = node[Number(key)];
    } else {
      path = jsonPathMember(path, key);
      node = node !== null && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined;
    }
  }
  return path;
}

function describe(err: ErrorObject): string {
  const p = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case "type":
      return `must be ${String(p.type).split(",").join(" or ")} (spec schema)`;
    case "required":
      return `the required property '${String(p.missingProperty)}' is missing (spec schema)`;
    case "enum":
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")} (spec schema)`;
    case "anyOf":
      return "matches none of the option forms of the spec schema: a boolean option with a boolean default, or a string option with a string default (and 'enum' or 'proposals')";
    default:
      return `${err.message ?? err.keyword} (spec schema)`;
  }
}

/**
 * Validates a parsed `devcontainer-feature.json` against the official schema, unknown properties
 * aside (see {@link unknownProperties}).
 * @param value the parsed JSON (any shape)
 * @returns the schema's errors, one per offending value: the alternatives inside an `anyOf` are
 *   folded into one error at the option, and the root `oneOf` wrapper is left out.
 */
export function checkAgainstSchema(value: unknown): SchemaFinding[] {
  const seen = new Set<string>();
  const out: SchemaFinding[] = [];
  for (const err of validate(value)) {
    if (err.schemaPath.includes("/anyOf/") || err.keyword === "oneOf" || err.keyword === "if") continue;
    const finding = { path: toJsonPath(err.instancePath, value), message: describe(err) };
    const key = `${finding.path}\0${finding.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(finding);
    }
  }
  return out;
}

function deref(node: SchemaNode): SchemaNode {
  let n = node;
  for (let i = 0; n.$ref && i < 16; i++) {
    const parts = n.$ref.replace(/^#\//, "").split("/");
    let target: unknown = ROOT;
    for (const part of parts) target = (target as Record<string, unknown>)?.[part];
    n = target as SchemaNode;
  }
  return n;
}

/** The node and the alternatives of its anyOf/oneOf (dereferenced): the shapes a value may take. */
function shapes(node: SchemaNode): SchemaNode[] {
  const n = deref(node);
  const alternatives = [...(n.anyOf ?? []), ...(n.oneOf ?? [])];
  return [n, ...alternatives.flatMap(shapes)];
}

/**
 * The properties the schema does not define where it closes an object (`additionalProperties:
 * false`): for an option, a property none of its forms defines.
 * @param value the parsed JSON
 * @param ignore top-level property names not to report (properties the spec's prose defines
 *   beyond the schema, such as `keywords` and `dependsOn`)
 * @returns one finding per unknown property, at the property's JSONPath
 */
export function unknownProperties(value: unknown, ignore: ReadonlySet<string> = new Set()): SchemaFinding[] {
  const out: SchemaFinding[] = [];
  const walk = (node: SchemaNode, v: unknown, path: string) => {
    const all = shapes(node);
    if (Array.isArray(v)) {
      const items = all.find((s) => s.items)?.items;
      if (items)
        v.forEach((x, i) => {
          walk(items, x, `${path}[${i}]`);
        });
      return;
    }
    if (v === null || typeof v !== "object") return;
    const closed = all.some((s) => s.additionalProperties === false);
    for (const [key, child] of Object.entries(v)) {
      const at = jsonPathMember(path, key);
      const defined = all.find((s) => s.properties?.[key]);
      if (defined?.properties) walk(defined.properties[key], child, at);
      else if (path === "$" && ignore.has(key)) continue;
      else if (closed) out.push({ path: at, message: `unknown property '${key}' (not in the spec schema)` });
      else {
        const extra = all.find((s) => typeof s.additionalProperties === "object")?.additionalProperties;
        if (extra && typeof extra === "object") walk(extra, child, at);
      }
    }
  };
  walk(ROOT, value, "$");
  return out;
}
