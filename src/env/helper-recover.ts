/**
 * Recovery of the helper containers of dead dockpack processes, from their ledgers
 * (helper-ledger.ts). A name whose create the engine answered (`=` line) is simply removed. For
 * every other name a dead process recorded and never struck (its create request may be in flight):
 *
 * - the container exists: it is removed;
 * - it does not exist: a *tombstone* is created in its place — a never-started container of that
 *   name from the helper image, with no mount and the label `io.dockpack.tombstone=<host>`. A
 *   create request of the dead process that lands later fails on the name conflict; the engine
 *   checks the name before it creates any volume of a mount (verified on Docker 20.10), so the
 *   late request can neither hold nor re-create a volume the recovery removes;
 * - the name is taken but no container answers (the late create is running right now): it is
 *   tried again until the engine settles it one way or the other.
 *
 * The ledger is then replaced by a record `helper-tombstones-<expiry>-<random>.txt` naming the
 * tombstones (it keeps the runs folder non-empty, so later commands run the recovery); a command
 * run once the record's time is up removes the tombstones older than {@link TOMBSTONE_SECONDS}. Each ledger is handled
 * under its own lock; a failure keeps the ledger for the next command.
 */

import { readdir, readFile, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { getDocker, statusCode } from "../core/docker/client.js";
import { ensureHelperImage, HELPER_IMAGE } from "../core/docker/helper-image.js";
import { toDockpackError } from "../core/errors.js";
import { withLock } from "../core/fs.js";
import type { Reporter } from "../core/output.js";
import { LEDGER_PREFIX, parseLedger } from "./helper-ledger.js";
import { ownerAlive, runsDir } from "./journal.js";

/** Label of a tombstone container; its value is the host name of the recovering process. */
export const TOMBSTONE_LABEL = "io.dockpack.tombstone";

/** Seconds a tombstone is kept: far longer than a request that was already sent takes to land. */
export const TOMBSTONE_SECONDS = 300;

const TOMBSTONES_PREFIX = "helper-tombstones-";

/**
 * Makes sure no helper container `name` exists now or can be created later (see the module
 * docs). Returns true when a tombstone now holds the name, false when the helper was removed.
 * @throws the engine's error when it refuses for another reason than the name
 */
export async function buryHelper(name: string): Promise<boolean> {
  const docker = getDocker();
  for (let attempt = 0; ; attempt++) {
    try {
      await docker.createContainer({
        name,
        Image: HELPER_IMAGE,
        Labels: { [TOMBSTONE_LABEL]: hostname() },
        NetworkDisabled: true,
        HostConfig: { NetworkMode: "none" },
      });
      return true;
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
    const container = docker.getContainer(name);
    try {
      const info = await container.inspect();
      if (info.Config?.Labels?.[TOMBSTONE_LABEL] !== undefined) return true;
      // the helper landed: remove it (it holds a volume); no create of this name can come later
      await container.remove({ force: true, v: false });
      return false;
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      // the name is reserved by a create still running in the engine: wait for it to settle
      if (attempt >= 600) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Removes helper `name`, whose create the engine answered (no tombstone needed: none is in flight). */
async function removeHelper(name: string): Promise<void> {
  try {
    await getDocker().getContainer(name).remove({ force: true, v: false });
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
  }
}

/**
 * When a tombstone record's time is up at `now` (seconds since the epoch): removes every tombstone
 * of this host older than {@link TOMBSTONE_SECONDS} — by the engine's label, so tombstones whose
 * record was lost (a removed state folder) go too — and the expired records.
 */
async function sweepTombstones(dir: string, names: string[], now: number): Promise<void> {
  const expired = names.filter(
    (n) => n.startsWith(TOMBSTONES_PREFIX) && Number(n.slice(TOMBSTONES_PREFIX.length).split("-")[0]) <= now,
  );
  if (expired.length === 0) return;
  const docker = getDocker();
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${TOMBSTONE_LABEL}=${hostname()}`] },
  });
  for (const c of list)
    if (c.Created + TOMBSTONE_SECONDS <= now)
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
  for (const n of expired) await unlink(join(dir, n)).catch(() => {});
}

/** Handles one dead process's ledger (under its lock); see the module docs. */
async function recoverLedger(path: string, reporter: Reporter): Promise<void> {
  const ledger = parseLedger(await readFile(path, "utf8").catch(() => ""));
  if (!ledger) return void (await unlink(path).catch(() => {})); // torn header: nothing was created yet
  if (ownerAlive(ledger.header)) return;
  const buried: string[] = [];
  if (ledger.names.length) {
    await ensureHelperImage(getDocker());
    reporter.debug(
      `removing ${ledger.names.length} helper container(s) of dead process ${ledger.header.pid}`,
    );
    for (const name of ledger.names)
      if (ledger.created.has(name)) await removeHelper(name);
      else if (await buryHelper(name)) buried.push(name);
  }
  if (buried.length) {
    const until = Math.floor(Date.now() / 1000) + TOMBSTONE_SECONDS;
    const rand = Math.random().toString(16).slice(2, 10);
    await writeFile(join(runsDir(), `${TOMBSTONES_PREFIX}${until}-${rand}.txt`), `${buried.join("\n")}\n`);
  }
  await unlink(path).catch(() => {});
}

/** True when the ledger at `path` belongs to a process that still runs. */
async function ledgerLive(path: string): Promise<boolean> {
  const ledger = parseLedger(await readFile(path, "utf8").catch(() => ""));
  return ledger !== null && ownerAlive(ledger.header);
}

/**
 * Handles the ledgers of dead processes and removes the tombstones whose time is up at `now`
 * (ms since the epoch; tests pass a later time). See the module docs. Never throws: a ledger that
 * could not be handled is kept, with a warning.
 */
export async function recoverHelperLedgers(reporter: Reporter, now = Date.now()): Promise<void> {
  const dir = runsDir();
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    if (!n.startsWith(LEDGER_PREFIX) || !n.endsWith(".txt")) continue;
    const path = join(dir, n);
    if (await ledgerLive(path)) continue;
    try {
      await withLock(`${path}.lock`, () => recoverLedger(path, reporter), {
        wait: true,
        timeoutSeconds: 300,
      });
    } catch (err) {
      reporter.warn(
        `could not remove the helper containers recorded in ${path}: ${toDockpackError(err).message}`,
      );
    }
  }
  await sweepTombstones(dir, await readdir(dir).catch(() => []), Math.floor(now / 1000)).catch((err) =>
    reporter.debug(`could not remove old tombstone containers: ${toDockpackError(err).message}`),
  );
}
