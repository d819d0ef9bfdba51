import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { DockpackError, toDockpackError } from "../../src/core/errors.js";
import { createReporter, formatBytes, formatTable } from "../../src/core/output.js";

test("DockpackError carries code, message, hint and serialises to JSON", () => {
  const e = new DockpackError("PACKAGE_CHECKSUM_MISMATCH", "volumes/db.tar.zst: checksum mismatch", {
    hint: "Re-export.",
  });
  assert.deepEqual(JSON.parse(JSON.stringify(e)), {
    code: "PACKAGE_CHECKSUM_MISMATCH",
    message: "volumes/db.tar.zst: checksum mismatch",
    hint: "Re-export.",
  });
});

test("toDockpackError maps system errors to FS_<CODE> and keeps DockpackErrors", () => {
  const sys = Object.assign(new Error("ENOENT: no such file, open '/x'"), { code: "ENOENT" });
  assert.equal(toDockpackError(sys).code, "FS_ENOENT");
  const e = new DockpackError("X", "y");
  assert.equal(toDockpackError(e), e);
  assert.equal(toDockpackError("boom").code, "INTERNAL_ERROR");
});

test("Reporter writes logs to its stderr stream by level, and no progress bar when not a TTY", () => {
  let out = "";
  const stderr = new Writable({
    write(chunk, _e, cb) {
      out += chunk;
      cb();
    },
  });
  const r = createReporter({ level: "warn", stderr, color: false });
  r.info("hidden");
  r.warn("shown");
  r.error("bad");
  const p = r.progress("x", 10);
  p.increment(5);
  p.stop();
  assert.equal(out, "warning: shown\nerror: bad\n");
});

test("formatBytes and formatTable", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatTable(["A", "BB"], [["xyz", 1]]), "A    BB\nxyz  1");
});
