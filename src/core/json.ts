/**
 * Bounds on untrusted JSON text before it is parsed or walked: V8's JSON.parse copes with any
 * depth, but every recursive consumer after it (JSON.stringify, ajv, jsonc-parser, our walkers)
 * overflows the stack on a 100 000-deep document (issue 12 A13).
 */

/** Deepest nesting of objects and arrays dockpack accepts in a JSON (or JSONC) document it reads. */
export const MAX_JSON_DEPTH = 256;

/**
 * The deepest `{`/`[` nesting of JSON or JSONC text (strings, `//` and `/* *\/` comments skipped),
 * in one linear pass without recursion. Invalid text gives a number too; parse it afterwards.
 */
export function jsonNestingDepth(text: string): number {
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

/** The sentence dockpack uses for too deep a document: `nesting is N levels deep, more than the 256 allowed`. */
export function tooDeepMessage(depth: number): string {
  return `nesting is ${depth} levels deep, more than the ${MAX_JSON_DEPTH} allowed`;
}
