/**
 * The run journal of a state-changing operation (export, import): every change is recorded in a
 * file *before* it is made, so that an operation killed at any moment (kill -9, power loss) is
 * finished or undone by the next dockpack command ({@link recoverDeadRuns} in recover.ts).
 *
 * File: `<state dir>/runs/<id>.jsonl` ({@link stateDir}; `$DOCKPACK_STATE_DIR`, else
 * `$XDG_STATE_HOME/dockpack`, else `~/.local/state/dockpack`). JSON lines, each appended and
 * fsynced before the change it announces:
 * - line 1, the header: `{ v: 1, id, kind, pid, start, host, started_at, repo, branch, compose_project }`
 *   (`start`: the process start time from /proc, so a reused pid is not mistaken for the owner);
 * - `{ seq, op, … }`: one change about to be made ({@link JournalEntry}); every op has an undo
 *   and a finish action (recover-undo.ts), both idempotent and checking the current state first,
 *   so they are right whether or not the change had happened when the process died;
 * - `{ mark: seq, state }`: a fact about entry `seq` (`copied`: an aside copy is complete;
 *   `done`: nothing left to undo, e.g. stopped containers were started again);
 * - `{ commit: true }`: the operation succeeded; only finish actions (drop aside copies, the stage
 *   folder) remain.
 *
 * In the live process, {@link Journal.rollback} undoes the entries newest first with the same
 * actions the recovery uses, and {@link Journal.commit} runs the finish actions; both remove the
 * file when everything succeeded (it is kept, for the next run to retry, when an undo failed).
 *
 * Interruption: the ambient abort signal (core/abort.ts: Ctrl-C in the CLI, a cancelled MCP
 * request) or `options.signal` marks the journal cancelled, aborts in-flight streams registered
 * with {@link Journal.onCancel}, and makes {@link Journal.checkpoint} throw `INTERRUPTED` at the
 * next step boundary, so the operation rolls itself back (undo and finish actions run outside the
 * aborted signal). As a safety net when the process ends first, a core/fs cleanup hook does the
 * same and waits up to 120 s. Once the commit point is passed, an interruption undoes nothing.
 */
import { readFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { homedir, hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { interrupted, onAbort, withoutSignal } from "../core/abort.js";
import { pidAlive } from "../core/exec.js";
import { onCleanup } from "../core/fs.js";
import type { Reporter } from "../core/output.js";
import type { ImageJournalEntry } from "./package-images-undo.js";

/** recover-undo.ts (the engine client, compose, git), imported where an entry is undone or finished. */
const recoverUndo = () => import("./recover-undo.js");

/** One change recorded before it is made. Paths are absolute. */
export type JournalEntry =
  /** An export's stage folder `<output>/.dockpack-export-<id>` (removed on undo and on finish). */
  | { op: "stage"; path: string }
  /** Containers an export stopped (started again on undo). */
  | { op: "containers-stopped"; project: string; ids: string[] }
  /** A worktree (and new branch, unless `keepBranch`: it existed) an import or create makes. */
  | { op: "worktree"; root: string; path: string; branch: string; keepBranch?: boolean }
  /** A Docker volume an import or create makes, labelled `io.dockpack.run=<run id>`. */
  | { op: "volume"; name: string }
  /** The `--standalone` repository folder (`existed`: it existed, empty). */
  | { op: "standalone"; dir: string; existed: boolean }
  /** A replaced environment's compose project brought down (`running`: it ran before). */
  | { op: "replaced-down"; path: string; project: string; running: boolean }
  /** A worktree moved aside (`git worktree move from to`). */
  | { op: "aside-worktree"; root: string; from: string; to: string }
  /** A plain folder moved aside (rename). */
  | { op: "aside-folder"; from: string; to: string }
  /** A branch renamed aside. */
  | { op: "aside-branch"; root: string; branch: string; aside: string }
  /** A volume copied to `aside` and then removed (mark `copied` once the copy is complete). */
  | { op: "aside-volume"; volume: string; aside: string; project: string }
  /**
   * An `env remove` under way: its worktree, the branch (null: kept) and the volumes to remove.
   * Undone by completing it (the user asked for it; a half-removed environment is of no use).
   */
  | { op: "removal"; root: string; path: string; branch: string | null; volumes: string[] }
  /** An image an import loads or tags (package-images-undo.ts). */
  | ImageJournalEntry;

/** A recorded entry with its sequence number and marks. */
export type RecordedEntry = JournalEntry & { seq: number; marks: string[] };

/** The header line of a run journal. */
export interface JournalHeader {
  v: 1;
  id: string;
  kind: "export" | "import" | "create" | "remove";
  pid: number;
  /** Process start time (clock ticks since boot, /proc/PID/stat field 22), or null off Linux. */
  start: number | null;
  host: string;
  started_at: string;
  /** Repository root, target branch and compose project of the environment concerned. */
  repo: string | null;
  branch: string;
  compose_project: string;
}

/** A parsed journal file. */
export interface JournalFile {
  path: string;
  header: JournalHeader;
  entries: RecordedEntry[];
  committed: boolean;
}

/** dockpack's per-user state folder (journals, locks); see the module docs. */
export function stateDir(): string {
  if (process.env.DOCKPACK_STATE_DIR) return process.env.DOCKPACK_STATE_DIR;
  const base = process.env.XDG_STATE_HOME || join(homedir() || tmpdir(), ".local", "state");
  return join(base, "dockpack");
}

/** The folder of run journals. */
export function runsDir(): string {
  return join(stateDir(), "runs");
}

/** Start time of process `pid` (clock ticks since boot), or null when unknown / not running. */
export function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : null;
  } catch {
    return null;
  }
}

/** True when the process that wrote `header` still runs (same host, same pid and start time). */
export function ownerAlive(header: Pick<JournalHeader, "pid" | "start" | "host">): boolean {
  if (header.host !== hostname()) return true; // not ours to judge
  if (header.pid === process.pid) return header.start === null || header.start === processStart(process.pid);
  if (!pidAlive(header.pid)) return false;
  if (header.start === null) return true;
  const now = processStart(header.pid);
  return now === null ? true : now === header.start;
}

/** Parses a journal file; a torn last line (the writer died mid-append) is ignored. */
export async function readJournalFile(path: string): Promise<JournalFile | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return null;
  }
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  let header: JournalHeader | undefined;
  const entries: RecordedEntry[] = [];
  let committed = false;
  for (const line of lines) {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (!header) {
      if (rec.v !== 1 || typeof rec.id !== "string") return null;
      header = rec as unknown as JournalHeader;
    } else if (rec.commit === true) committed = true;
    else if (typeof rec.mark === "number") {
      entries.find((e) => e.seq === rec.mark)?.marks.push(String(rec.state));
    } else if (typeof rec.seq === "number" && typeof rec.op === "string") {
      entries.push({ ...(rec as unknown as JournalEntry), seq: rec.seq as number, marks: [] });
    }
  }
  return header ? { path, header, entries, committed } : null;
}

/** Every journal file in {@link runsDir}. */
export async function listJournalFiles(): Promise<string[]> {
  const dir = runsDir();
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith(".jsonl")).map((n) => join(dir, n));
}

/**
 * Undoes the entries of a journal newest first (skipping those marked `done`), keeps going when
 * one fails, and returns the failures as `what: message`.
 */
export async function undoEntries(
  entries: RecordedEntry[],
  runId: string,
  reporter: Reporter,
): Promise<string[]> {
  const { undoEntry } = await recoverUndo();
  const failed: string[] = [];
  for (const e of [...entries].reverse()) {
    if (e.marks.includes("done")) continue;
    try {
      await withoutSignal(() => undoEntry(e, runId, reporter));
    } catch (err) {
      failed.push(`undo ${e.op} (${describeEntry(e)}): ${(err as Error).message}`);
    }
  }
  return failed;
}

/** Runs the finish actions of a committed journal; returns the failures. */
export async function finishEntries(entries: RecordedEntry[], reporter: Reporter): Promise<string[]> {
  const { finishEntry } = await recoverUndo();
  const failed: string[] = [];
  for (const e of entries) {
    try {
      await withoutSignal(() => finishEntry(e, reporter));
    } catch (err) {
      failed.push(`finish ${e.op} (${describeEntry(e)}): ${(err as Error).message}`);
    }
  }
  return failed;
}

/** A short description of an entry for messages. */
export function describeEntry(e: JournalEntry): string {
  switch (e.op) {
    case "stage":
    case "standalone":
      return "path" in e ? e.path : e.dir;
    case "containers-stopped":
      return `${e.ids.length} container(s) of ${e.project}`;
    case "worktree":
      return `${e.path}, branch ${e.branch}`;
    case "volume":
      return e.name;
    case "replaced-down":
      return e.project;
    case "aside-worktree":
    case "aside-folder":
      return `${e.from} → ${e.to}`;
    case "aside-branch":
      return `${e.branch} → ${e.aside}`;
    case "aside-volume":
      return `${e.volume} → ${e.aside}`;
    case "removal":
      return `${e.path}${e.branch ? `, branch ${e.branch}` : ""}, ${e.volumes.length} volume(s)`;
    case "image":
      return `${e.id.slice(0, 19)} ${e.tags.map((t) => t.tag).join(" ")}`;
  }
}

/** Options of {@link Journal.open}. */
export interface JournalOpenOptions {
  kind: JournalHeader["kind"];
  repo: string | null;
  branch: string;
  composeProject: string;
  signal?: AbortSignal;
}

/** See the module docs. */
export class Journal {
  private entries: RecordedEntry[] = [];
  private legacyUndo: { at: number; what: string; fn: () => Promise<void> }[] = [];
  private legacyAfter: { what: string; fn: () => Promise<void> }[] = [];
  private cancelHooks = new Set<() => void>();
  private unregister: () => void = () => {};
  private settled = false;
  private committing = false;
  private seq = 0;
  private settle!: () => void;
  private readonly finished = new Promise<void>((resolve) => {
    this.settle = resolve;
  });
  /** True once an interruption was received (before the commit point). */
  cancelled = false;
  /** The step running now (named in errors). */
  step = "start";

  private constructor(
    private readonly reporter: Reporter,
    /** The journal file. */
    readonly path: string,
    /** The run id (also the `io.dockpack.run` label of volumes an import creates). */
    readonly id: string,
  ) {}

  /**
   * Creates the journal file (header fsynced) and starts listening for interruptions.
   * @throws the file system's error when the state folder cannot be written
   */
  static async open(options: JournalOpenOptions, reporter: Reporter): Promise<Journal> {
    // node:crypto on first use: loading it costs start-up time of commands that never journal (issue 14 C18)
    const { randomBytes } = await import("node:crypto");
    const id = `${options.kind}-${new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15)}-${randomBytes(4).toString("hex")}`;
    await mkdir(runsDir(), { recursive: true });
    const journal = new Journal(reporter, join(runsDir(), `${id}.jsonl`), id);
    const header: JournalHeader = {
      v: 1,
      id,
      kind: options.kind,
      pid: process.pid,
      start: processStart(process.pid),
      host: hostname(),
      started_at: new Date().toISOString(),
      repo: options.repo,
      branch: options.branch,
      compose_project: options.composeProject,
    };
    await journal.append(header, "wx");
    const cancel = () => {
      if (journal.committing || journal.settled) return;
      journal.cancelled = true;
      for (const hook of journal.cancelHooks) hook();
    };
    const unregisterCleanup = onCleanup(async () => {
      cancel();
      const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 120_000).unref());
      if ((await Promise.race([journal.finished, timeout])) === "timeout") await journal.rollback();
    });
    // the ambient abort signal (core/abort.ts: Ctrl-C in the CLI, a cancelled MCP request) and
    // an explicit one
    const offAmbient = onAbort(cancel);
    const offExplicit =
      options.signal && options.signal !== undefined ? onAbort(cancel, options.signal) : () => {};
    journal.unregister = () => {
      unregisterCleanup();
      offAmbient();
      offExplicit();
    };
    return journal;
  }

  private async append(record: unknown, flags = "a"): Promise<void> {
    const fh = await open(this.path, flags, 0o600);
    try {
      await fh.write(`${JSON.stringify(record)}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  /** Throws `INTERRUPTED` when an interruption was received; call at step boundaries. */
  checkpoint(): void {
    if (this.cancelled) throw interrupted();
  }

  /** Registers an abort action for in-flight work (e.g. destroy a stream); returns its unregister. */
  onCancel(fn: () => void): () => void {
    this.cancelHooks.add(fn);
    if (this.cancelled) fn();
    return () => this.cancelHooks.delete(fn);
  }

  /** Records (fsynced) a change about to be made. Returns its sequence number for {@link mark}. */
  async will(entry: JournalEntry): Promise<number> {
    const seq = ++this.seq;
    await this.append({ seq, ...entry });
    this.entries.push({ ...entry, seq, marks: [] });
    return seq;
  }

  /**
   * Records a fact about entry `seq` (`done`: nothing left to undo; `copied`; `stopping:ID`: a
   * stop of container ID is about to be asked of the engine).
   */
  async mark(seq: number, state: "done" | "copied" | `stopping:${string}`): Promise<void> {
    await this.append({ mark: seq, state });
    this.entries.find((e) => e.seq === seq)?.marks.push(state);
  }

  /** Records an in-process undo action (not survivable by a kill; prefer {@link will}). */
  added(what: string, fn: () => Promise<void>): void {
    this.legacyUndo.push({ at: this.seq, what, fn });
  }

  /** Records an in-process action to run after success (prefer {@link will}'s finish actions). */
  afterSuccess(what: string, fn: () => Promise<void>): void {
    this.legacyAfter.push({ what, fn });
  }

  /**
   * The commit point: records `commit`, then runs the finish actions (failures only warned about;
   * the journal is kept for the next run to retry them) and removes the journal file. An
   * interruption received from here on is ignored.
   */
  async commit(): Promise<void> {
    if (this.settled) return;
    this.committing = true;
    try {
      await withoutSignal(() => this.append({ commit: true }));
      const failed = await finishEntries(this.entries, this.reporter);
      for (const a of this.legacyAfter) {
        await withoutSignal(a.fn).catch((err) => failed.push(`${a.what}: ${(err as Error).message}`));
      }
      for (const f of failed)
        this.reporter.warn(`after ${this.id}: ${f} (the next dockpack command retries)`);
      if (failed.length === 0) await unlink(this.path).catch(() => {});
    } finally {
      this.settled = true;
      this.unregister();
      this.settle();
    }
  }

  /**
   * Undoes everything recorded, newest first, and removes the journal file when all undo actions
   * succeeded. Returns the undo actions that failed (then the file is kept for the next run).
   */
  async rollback(): Promise<string[]> {
    if (this.settled) return [];
    this.settled = true;
    const failed: string[] = [];
    try {
      // legacy (in-process) undo actions interleave with recorded ones by position
      const recorded = [...this.entries];
      const legacy = [...this.legacyUndo];
      while (recorded.length || legacy.length) {
        const r = recorded[recorded.length - 1];
        const l = legacy[legacy.length - 1];
        if (l && (!r || l.at >= r.seq)) {
          legacy.pop();
          this.reporter.info(`rollback: ${l.what}`);
          await withoutSignal(l.fn).catch((err) => failed.push(`${l.what}: ${(err as Error).message}`));
        } else if (r) {
          recorded.pop();
          if (r.marks.includes("done")) continue;
          this.reporter.info(`rollback: ${r.op} ${describeEntry(r)}`);
          failed.push(...(await undoEntries([r], this.id, this.reporter)));
        }
      }
      if (failed.length === 0) await unlink(this.path).catch(() => {});
    } finally {
      this.unregister();
      this.settle();
    }
    return failed;
  }
}
