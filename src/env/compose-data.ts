/**
 * Data next to the code: the files an environment keeps in bind-mounted folders of its worktree
 * that git ignores (uploads, config written by the app, a database folder), which a package
 * therefore carries as environment files, and the bind mounts outside the repository, which a
 * package cannot carry and export names in a warning.
 *
 * Reads the bind mounts from the environment's compose file (`.dockpack/compose.yml`, the model
 * compose resolved, so every source path is absolute): short syntax `SRC:DST[:MODE]` with an
 * absolute `SRC`, and long syntax `{type: bind, source}`.
 */
import { lstat, readFile } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import { git } from "../core/git.js";
import type { Reporter } from "../core/output.js";
import { DOCKPACK_DIR } from "./config.js";
import { ENV_COMPOSE_FILE } from "./settings.js";

/** One bind mount of the environment's compose model. */
export interface BindMount {
  service: string;
  /** Absolute host path. */
  source: string;
}

/** Most git-ignored files carried from bind-mounted folders; more are named in a warning. */
export const MAX_BIND_DATA_FILES = 20_000;

/** The bind mounts of a resolved compose document (services' `volumes`). */
export function bindMounts(doc: Record<string, unknown>): BindMount[] {
  const out: BindMount[] = [];
  const services = (doc.services ?? {}) as Record<string, { volumes?: unknown }>;
  for (const [service, def] of Object.entries(services)) {
    const list = Array.isArray(def?.volumes) ? def.volumes : [];
    for (const v of list) {
      if (typeof v === "string") {
        const src = v.split(":")[0] ?? "";
        if (isAbsolute(src)) out.push({ service, source: src });
      } else if (v && typeof v === "object") {
        const o = v as { type?: unknown; source?: unknown };
        if (o.type === "bind" && typeof o.source === "string" && isAbsolute(o.source))
          out.push({ service, source: o.source });
      }
    }
  }
  return out;
}

function within(root: string, path: string): string | null {
  const rel = relative(root, path);
  if (rel === "") return ".";
  return rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel) ? null : rel;
}

/**
 * The git-ignored files (paths relative to `worktree`) inside the bind-mounted folders and files
 * of the environment in `worktree`, to be packaged as environment files; warns through
 * `reporter` about bind mounts outside the worktree (not packaged) and about files over
 * {@link MAX_BIND_DATA_FILES}. dockpack's own folder (`.dockpack/`) is left out. Returns [] when
 * the environment has no compose file yet.
 */
export async function bindMountedData(worktree: string, reporter: Reporter): Promise<string[]> {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(await readFile(join(worktree, ENV_COMPOSE_FILE), "utf8"));
  } catch {
    return [];
  }
  const files = new Set<string>();
  const outside = new Map<string, string[]>();
  for (const m of bindMounts(doc)) {
    const rel = within(worktree, m.source);
    if (rel === null) {
      outside.set(m.source, [...(outside.get(m.source) ?? []), m.service]);
      continue;
    }
    if (rel === DOCKPACK_DIR || rel.startsWith(`${DOCKPACK_DIR}${sep}`)) continue;
    if (!(await lstat(m.source).catch(() => null))) continue;
    const listed = await git(
      ["ls-files", "--others", "--ignored", "--exclude-standard", "-z", "--", rel === "." ? "." : rel],
      worktree,
    ).catch(() => "");
    for (const f of listed.split("\0")) if (f && !f.startsWith(`${DOCKPACK_DIR}/`)) files.add(f);
  }
  for (const [source, services] of outside)
    reporter.warn(
      `bind mount ${source} (${[...new Set(services)].join(", ")}) is outside the repository: its files are not in the package`,
    );
  const sorted = [...files].sort();
  if (sorted.length > MAX_BIND_DATA_FILES) {
    reporter.warn(
      `${sorted.length} git-ignored files in bind-mounted folders; only the first ${MAX_BIND_DATA_FILES} are packaged`,
    );
    return sorted.slice(0, MAX_BIND_DATA_FILES);
  }
  if (sorted.length)
    reporter.info(`packaging ${sorted.length} git-ignored file(s) from bind-mounted folders`);
  return sorted;
}
