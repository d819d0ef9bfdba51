/**
 * Issue 14 C18: `tool list` sorts tool ids with compareToolIds instead of localeCompare (whose
 * first call loads ICU's collator); the order must stay exactly localeCompare's for every id the
 * manifest schema accepts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { compareToolIds } from "../../src/tools/manifest.js";

const FIRST = "abcdefghijklmnopqrstuvwxyz0123456789";
const REST = `${FIRST}_-`;

/** A pseudo-random valid tool id (`^[a-z0-9][a-z0-9_-]{0,62}$`), deterministic from `seed`. */
function id(seed: number): string {
  let x = seed * 2654435761 + 1;
  const next = (n: number) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
  let s = FIRST[next(FIRST.length)];
  const len = next(8);
  for (let i = 0; i < len; i++) s += REST[next(REST.length)];
  return s;
}

test("compareToolIds orders valid tool ids exactly as localeCompare does", () => {
  const ids = Array.from({ length: 400 }, (_, i) => id(i));
  ids.push("a", "a-b", "a_b", "ab", "a0", "a-", "a_", "a--", "a__", "shout-count", "shout_count", "shout1");
  for (const a of ids)
    for (const b of ids)
      assert.equal(Math.sign(compareToolIds(a, b)), Math.sign(a.localeCompare(b)), `${a} vs ${b}`);
});

test("compareToolIds falls back to localeCompare outside the id alphabet", () => {
  assert.equal(Math.sign(compareToolIds("Ab", "ab")), Math.sign("Ab".localeCompare("ab")));
  assert.equal(Math.sign(compareToolIds("é", "e")), Math.sign("é".localeCompare("e")));
});
