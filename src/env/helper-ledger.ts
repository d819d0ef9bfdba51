/**
 * The helper-container ledger of this process. Every helper container (core/docker/volumes.ts:
 * created, never started, with a volume mounted, to read or write its files) is recorded by name
 * in `<runs dir>/helpers-<host>-<pid>-<start>.txt` BEFORE its create request is sent, and struck
 * once it is removed; the file is deleted when nothing is left in it.
 *
 * Why: a dockpack process killed with SIGKILL may leave a create request in flight. The engine
 * may create that container after the next command's recovery looked for it, and then it holds
 * the volume the recovery is removing, or re-creates it (a mount of a missing named volume creates
 * the volume). The recovery (helper-recover.ts) takes every name of a dead process's ledger and
 * either removes the container or, when it does not exist (yet), creates a "tombstone" of that
 * name, so that a create landing later fails on the name, before the engine creates any volume.
 *
 * Format: a JSON header line `{v:1,pid,start,host}`, then `+<name> <volume>` (recorded), `=<name>`
 * (the engine answered the create: no request of it can land later) and `-<name>` (removed) lines.
 * Writes are synchronous appends (no fsync: a SIGKILL keeps what was written; a power loss also
 * ends the engine's in-flight requests, and the pid label sweep covers what it created).
 *
 * Installed by importing this module (every env module that reads or writes volume files does).
 *
 * Test hook: `DOCKPACK_TEST_HOLD_HELPER=<text>` makes the process, once it recorded a helper
 * whose volume name contains `<text>`, print `dockpack-test: holding helper <name> of <volume>`
 * on stderr and wait forever instead of sending the create request (a kill then lands exactly
 * between the record and the request). Not meant for users.
 */
import { appendFileSync, mkdirSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { setHelperHooks } from "../core/docker/helper-hooks.js";
import { processStart, runsDir } from "./journal.js";

/** File name prefix of helper ledgers in the runs folder. */
export const LEDGER_PREFIX = "helpers-";

const outstanding = new Set<string>();
let path: string | null = null;

function ledgerPath(): string {
  return join(
    runsDir(),
    `${LEDGER_PREFIX}${hostname()}-${process.pid}-${processStart(process.pid) ?? 0}.txt`,
  );
}

async function hold(name: string, volume: string): Promise<void> {
  const text = process.env.DOCKPACK_TEST_HOLD_HELPER;
  if (!text || !volume.includes(text)) return;
  process.stderr.write(`dockpack-test: holding helper ${name} of ${volume}\n`);
  await new Promise(() => {
    setInterval(() => {}, 1 << 30);
  });
}

/** Records helper `name` (mounting `volume`) before its create request; see the module docs. */
export async function recordHelper(name: string, volume: string): Promise<void> {
  if (!path) {
    const p = ledgerPath();
    mkdirSync(runsDir(), { recursive: true });
    const header = { v: 1, pid: process.pid, start: processStart(process.pid), host: hostname() };
    writeFileSync(p, `${JSON.stringify(header)}\n`, { mode: 0o600 });
    path = p;
  }
  appendFileSync(path, `+${name} ${volume}\n`);
  outstanding.add(name);
  await hold(name, volume);
}

/** Notes that the engine created helper `name` (no create request of it is in flight any more). */
export function createdHelper(name: string): void {
  if (!path || !outstanding.has(name)) return;
  try {
    appendFileSync(path, `=${name}\n`);
  } catch {
    // the state folder went away
  }
}

/** Strikes helper `name` (removed, or its create refused); deletes the ledger when it is empty. */
export function strikeHelper(name: string): void {
  if (!path || !outstanding.delete(name)) return;
  try {
    if (outstanding.size === 0) {
      unlinkSync(path);
      path = null;
    } else appendFileSync(path, `-${name}\n`);
  } catch {
    // the state folder went away: nothing to keep up to date
    path = null;
  }
}

/** A parsed ledger: its owner, the names recorded and not struck, and those of them created. */
export interface Ledger {
  header: { v: 1; pid: number; start: number | null; host: string };
  names: string[];
  /** Names whose create the engine answered: no request of theirs is in flight. */
  created: Set<string>;
}

/** Parses a ledger's text (a torn last line is ignored); null when it has no valid header. */
export function parseLedger(text: string): Ledger | null {
  const [first, ...lines] = text.split("\n");
  let header: Ledger["header"];
  try {
    header = JSON.parse(first ?? "");
  } catch {
    return null;
  }
  if (header?.v !== 1 || typeof header.pid !== "number" || typeof header.host !== "string") return null;
  const names = new Set<string>();
  const created = new Set<string>();
  for (const line of lines) {
    const name = line.slice(1).split(" ")[0] ?? "";
    if (!/^dockpack-helper-[0-9a-f]{12}$/.test(name)) continue;
    if (line.startsWith("+")) names.add(name);
    else if (line.startsWith("=")) created.add(name);
    else if (line.startsWith("-")) names.delete(name);
  }
  return { header, names: [...names], created };
}

setHelperHooks({ beforeCreate: recordHelper, created: createdHelper, removed: strikeHelper });
