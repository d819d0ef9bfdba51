/**
 * Issue 14 B9: the progress line on a terminal — one steady ETA computed by dockpack, a spinner
 * for an unknown total (never "100% 0 B/?"), the terminal's width. Unit checks of the line, and a
 * real pty (`script -qfc`, util-linux) with 60 columns and 120 columns.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { formatEta, renderProgressLine } from "../../src/core/progress-line.js";

const DEMO = fileURLToPath(new URL("./fixtures/progress-demo.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");

test("the line fits the width; an unknown total draws a spinner, not a full bar", () => {
  for (const columns of [40, 80, 200]) {
    const line = renderProgressLine({
      label: "volume a-very-long-volume-name-that-goes-on",
      done: 5 * 1024 * 1024,
      total: 50 * 1024 * 1024,
      unit: "bytes",
      rate: 1024 * 1024,
      eta: 45,
      columns,
      frame: 0,
    });
    assert.ok(line.length <= columns - 1, `${columns}: ${line}`);
    if (columns >= 80) assert.match(line, /10% 5\.0 MiB\/50\.0 MiB 1\.0 MiB\/s ETA 45s$/);
  }
  const wide = renderProgressLine({ label: "x", done: 1, total: 2, unit: "items", columns: 200, frame: 0 });
  assert.match(wide, /^x \[[█░]{40}\]  50% 1\/2 ETA --$/, "a wide terminal gets the whole bar");
  const spin = renderProgressLine({
    label: "docker save",
    done: 3 * 1024 * 1024,
    unit: "bytes",
    columns: 80,
    frame: 1,
  });
  assert.match(spin, /^⠙ docker save 3\.0 MiB$/);
  assert.doesNotMatch(spin, /%|\?/);
  assert.equal(formatEta(65), "1m05s");
});

test("on a pty: spinner while the total is unknown, then a steady ETA, lines within the width", (t) => {
  for (const columns of [60, 120]) {
    const r = spawnSync(
      "script",
      [
        "-qfec",
        `stty cols ${columns} rows 20; '${process.execPath}' --import '${TSX}' '${DEMO}'`,
        "/dev/null",
      ],
      { encoding: "utf8", timeout: 60_000, env: { ...process.env, TERM: "xterm" } },
    );
    assert.equal(r.status, 0, r.stderr);
    const frames = r.stdout
      .split(/\r/)
      .map((f) => f.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "").replace(/\n/g, ""))
      .filter((f) => f.trim() !== "");
    t.diagnostic(`${columns} columns: ${frames.length} frames, e.g. ${frames[frames.length - 2]}`);
    for (const f of frames) assert.ok(f.length <= columns - 1, `${f.length} > ${columns - 1}: ${f}`);
    const spinning = frames.filter((f) => f.includes("docker save"));
    assert.ok(spinning.length >= 2, "the unknown total is drawn");
    for (const f of spinning) {
      assert.match(f, /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] docker save /, f);
      assert.doesNotMatch(f, /100%|\?/);
    }
    const etas = frames
      .filter((f) => f.startsWith("volu"))
      .map((f) => /ETA (\d+)s/.exec(f)?.[1])
      .filter((e): e is string => e !== undefined)
      .map(Number);
    assert.ok(etas.length >= 5, `ETAs: ${etas}`);
    // at a steady rate the ETA only goes down (1 s of slack for timer jitter on a loaded machine)
    for (let i = 1; i < etas.length; i++) assert.ok(etas[i] <= etas[i - 1] + 1, `ETA went up: ${etas}`);
  }
});
