/**
 * Progress bars on a TTY (B9): `env create --copy-data-from` draws the bytes copied from each
 * source volume (total: the volume's size), and an export of a running environment counts the
 * containers it stops (items). The Reporter writes to a fake TTY, so the bars are really drawn.
 * Real engine, fixture busybox image; ~20 s.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, test } from "node:test";
import { createReporter, type Reporter } from "../../src/core/output.js";
import { createEnvironment, environmentUp, exportEnvironment } from "../../src/env/index.js";
import { engineAnswers, needsEngine } from "../helpers/engine.js";
import { cleanupPrefix, initAppRepo, inVolume } from "./engine-helpers.js";

const project = `dpb${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let app = "";

interface Bar {
  label: string;
  total?: number;
  unit?: string;
  done: number;
}

/** A TTY Reporter (bars drawn to a fake terminal) that also records every bar's last state. */
function ttyReporter(): { reporter: Reporter; bars: Bar[]; text: () => string } {
  const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
  let text = "";
  stderr.on("data", (c: Buffer) => {
    text += c.toString();
  });
  const inner = createReporter({ stderr, color: false });
  const bars: Bar[] = [];
  const reporter: Reporter = {
    ...inner,
    progress(label, total, unit) {
      const p = inner.progress(label, total, unit);
      const b: Bar = { label, total, unit, done: 0 };
      bars.push(b);
      return {
        update: (n) => {
          b.done = n;
          p.update(n);
        },
        increment: (n) => {
          b.done += n;
          p.increment(n);
        },
        setTotal: (t) => {
          b.total = t;
          p.setTotal(t);
        },
        stop: () => p.stop(),
      };
    },
  };
  return { reporter, bars, text: () => text };
}

before(async () => {
  if (!engineAnswers()) return;
  ({ work, app } = await initAppRepo("dockpack-bars", project));
  await createEnvironment({ cwd: app, branch: "a" });
  await environmentUp({ cwd: app, branch: "a" });
  inVolume(`${project}-a_media`, "dd if=/dev/urandom of=/data/blob bs=1M count=8 2>/dev/null");
});

after(() => {
  if (work) cleanupPrefix(project, work);
});

test("an export of a running environment counts the containers it stops", async (t) => {
  if (!needsEngine(t)) return;
  const { reporter, bars, text } = ttyReporter();
  await exportEnvironment({ cwd: app, branch: "a", outputDir: join(work, "out"), codec: "none" }, reporter);
  const stop = bars.find((b) => b.label === `stopping ${project}-a`);
  assert.ok(stop, JSON.stringify(bars));
  assert.equal(stop.unit, "items");
  assert.ok((stop.total ?? 0) >= 1);
  assert.equal(stop.done, stop.total, "every container counted");
  assert.match(text(), new RegExp(`stopping ${project}-a`));
});

test("env create --copy-data-from draws the bytes copied against the source volume's size", async (t) => {
  if (!needsEngine(t)) return;
  const { reporter, bars, text } = ttyReporter();
  await createEnvironment({ cwd: app, branch: "b", copyDataFrom: "a" }, reporter);
  const copy = bars.find((b) => b.label === `copy ${project}-a_media`);
  assert.ok(copy, JSON.stringify(bars));
  assert.equal(copy.unit, undefined, "bytes (the default unit)");
  assert.ok((copy.total ?? 0) >= 8 * 1024 * 1024, JSON.stringify(copy));
  assert.ok(copy.done >= 8 * 1024 * 1024 * 0.9 && copy.done <= (copy.total ?? 0), JSON.stringify(copy));
  assert.match(text(), new RegExp(`copy ${project}-a_media`));
  assert.equal(inVolume(`${project}-b_media`, "wc -c < /data/blob").trim(), String(8 * 1024 * 1024));
});
