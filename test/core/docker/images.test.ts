import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, test } from "node:test";
import {
  imageExists,
  inspectImage,
  isSafeImageRef,
  loadImage,
  saveImage,
  tagImage,
} from "../../../src/core/docker/images.js";
import { needsEngine } from "../../helpers/engine.js";
import { ensureFixture } from "../../helpers/fixtures.js";

const repo = `dpt-img-${randomBytes(4).toString("hex")}/bb`;

after(() => {
  for (const tag of [`${repo}:1`, `${repo}:latest`]) {
    try {
      execFileSync("docker", ["rmi", tag], { stdio: "ignore" });
    } catch {
      // not there
    }
  }
});

test("tag, inspect, save and load an image through the engine", async (t) => {
  if (!needsEngine(t)) return;
  const busybox = await ensureFixture("busybox");
  const info = await inspectImage(busybox);
  assert.match(info.Id, /^sha256:[a-f0-9]{64}$/);
  assert.equal(info.RootFS.Layers?.length, 1);

  await tagImage(info.Id, `${repo}:1`);
  assert.equal(await imageExists(`${repo}:1`), true);
  await tagImage(`${repo}:1`, repo);
  assert.equal(await imageExists(`${repo}:latest`), true);

  // save → (untag) → load: the tag comes back, with the same id.
  const chunks: Buffer[] = [];
  for await (const c of await saveImage([`${repo}:1`])) chunks.push(c as Buffer);
  const archive = Buffer.concat(chunks);
  assert.ok(archive.length > 1_000_000, "the docker-archive holds the busybox layer");
  assert.ok(archive.includes(Buffer.from("manifest.json")));
  execFileSync("docker", ["rmi", `${repo}:1`], { stdio: "ignore" });
  assert.equal(await imageExists(`${repo}:1`), false);
  const res = await loadImage(Readable.from([archive]));
  assert.deepEqual(res.loaded, [`${repo}:1`]);
  assert.equal((await inspectImage(`${repo}:1`)).Id, info.Id);
});

test("missing images, bad tags and broken archives fail clearly", async (t) => {
  if (!needsEngine(t)) return;
  const missing = `${repo}-missing:nope`;
  assert.equal(await imageExists(missing), false);
  await assert.rejects(inspectImage(missing), (err: Error & { code?: string }) => {
    assert.equal(err.code, "IMAGE_NOT_FOUND");
    assert.match(err.message, /-missing:nope/);
    return true;
  });
  await assert.rejects(saveImage([missing]), { code: "IMAGE_NOT_FOUND" });
  await assert.rejects(tagImage(missing, `${repo}:x`), { code: "IMAGE_NOT_FOUND" });
  await assert.rejects(tagImage("dockpack-fixture/scratch:1", "Bad Name:1"), { code: "IMAGE_TAG_INVALID" });
  await ensureFixture("scratch");
  await assert.rejects(
    loadImage(Readable.from([Buffer.from("not a docker archive ".repeat(100))])),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, "IMAGE_LOAD_FAILED");
      assert.match(err.message, /docker load failed/);
      return true;
    },
  );
});

test("references that would change the Engine API path are refused without a request (no redirect to another host)", async (t) => {
  if (!needsEngine(t)) return;
  for (const ref of [
    "/etc/passwd",
    "//evil.example/x",
    "a/../../containers/json",
    "x?all=1",
    "a b",
    "%2e%2e",
  ]) {
    assert.equal(isSafeImageRef(ref), false, ref);
    assert.equal(await imageExists(ref), false, ref);
    await assert.rejects(
      inspectImage(ref),
      (e: any) => e.code === "IMAGE_NOT_FOUND" && e.message.includes("not an image"),
    );
  }
  for (const ref of ["app:1", "localhost:5000/a/b:1", `a@sha256:${"a".repeat(64)}`, "9a684af0f9f6"])
    assert.equal(isSafeImageRef(ref), true, ref);
});
