/**
 * `targets build-all`: builds every target (or the chosen ones) in parallel, at most
 * `concurrency` at a time, and summarises each (target, image, status, duration).
 */
import { requireEngine } from "../core/docker/client.js";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { readBlueprint } from "./blueprint.js";
import { type BuildOptions, buildTarget, findTarget } from "./build.js";
import { expandVars } from "./expand.js";
import { loadRegistry } from "./registry.js";

/** Options of {@link buildAllTargets}. */
export interface BuildAllOptions extends Omit<BuildOptions, "target" | "logPrefix"> {
  /** Only these target ids (default: all, in registry order). */
  targets?: string[];
  /** Builds at once; default 2. */
  concurrency?: number;
  /** Keep building the others after a failure (default: start no new build after one fails). */
  continueOnError?: boolean;
}

/** One row of the build-all summary. */
export interface BuildAllRow {
  target: string;
  /** First image reference (tag) of the target. */
  image: string;
  status: "built" | "failed" | "skipped" | "planned";
  /** `sha256:…` when built. */
  imageId?: string;
  /** Seconds. */
  durationSeconds: number;
  /** The error when failed: code, message (failing step first), hint. */
  error?: { code: string; message: string; hint?: string };
}

/** Result of {@link buildAllTargets}; `ok` is false when any target failed. */
export interface BuildAllResult {
  ok: boolean;
  concurrency: number;
  results: BuildAllRow[];
  /** Wall time of the whole run, seconds. */
  durationSeconds: number;
}

/**
 * Builds the targets with at most `concurrency` builds running. Never throws for a failed build
 * (it is a row with status `failed`); throws `CONCURRENCY_INVALID` (usage), `TARGET_NOT_FOUND`,
 * `ENGINE_UNAVAILABLE` (unless dry run),
 * and registry errors before anything is built.
 */
export async function buildAllTargets(
  options: BuildAllOptions,
  reporter: Reporter = silentReporter(),
): Promise<BuildAllResult> {
  const started = Date.now();
  const concurrency = options.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new DockpackError(
      "CONCURRENCY_INVALID",
      `--concurrency ${options.concurrency} is not a number from 1 to 64.`,
      {
        hint: "Pass --concurrency 2 (about one build per CPU core).",
        usage: true,
      },
    );
  }
  const registry = await loadRegistry(options.root);
  // one clear error instead of one failed row per target
  if (!options.dryRun) await requireEngine();
  const chosen =
    options.targets && options.targets.length > 0
      ? options.targets.map((id) => findTarget(registry, id))
      : registry.targets;
  const prefix = expandVars(
    options.registry ?? registry.registry ?? (await readBlueprint(options.root)).registry ?? "",
    "the registry prefix",
  ).replace(/\/+$/, "");
  const firstTag = options.tags?.[0] ?? "latest";
  const rows: BuildAllRow[] = chosen.map((t) => ({
    target: t.id,
    image: `${prefix ? `${prefix}/` : ""}${t.image}:${firstTag}`,
    status: "skipped",
    durationSeconds: 0,
  }));
  let next = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && next < chosen.length) {
      const i = next++;
      const t = chosen[i];
      const t0 = Date.now();
      try {
        const res = await buildTarget(
          { ...options, target: t.id, logPrefix: `[${t.id}] ` },
          reporter,
          registry,
        );
        rows[i] = {
          target: t.id,
          image: res.plan.tags[0],
          status: res.dryRun ? "planned" : "built",
          ...(res.imageId ? { imageId: res.imageId } : {}),
          durationSeconds: res.durationSeconds,
        };
      } catch (e) {
        const err = toDockpackError(e);
        rows[i] = {
          ...rows[i],
          status: "failed",
          durationSeconds: Math.round((Date.now() - t0) / 100) / 10,
          error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) },
        };
        reporter.error(`[${t.id}] ${err.message}`);
        if (!options.continueOnError) stop = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, chosen.length) }, worker));
  const ok = rows.every((r) => r.status === "built" || r.status === "planned");
  return { ok, concurrency, results: rows, durationSeconds: Math.round((Date.now() - started) / 100) / 10 };
}
