/**
 * `targets verify`: checks the packaging tree and the registry without building anything.
 *
 * Errors: packaging root or registry missing; registry.json not JSON or not matching the schema
 * (each problem with its JSON path and line); a target's module, context or Dockerfile missing;
 * module outside the context; Dockerfile without FROM; unresolved `{{PLACEHOLDER}}`s; invalid
 * image names; duplicate ids. Warnings: unpinned base images, no HEALTHCHECK for services and
 * apps, no non-root USER, two targets with one image, a Dockerfile in the packaging tree that no
 * target uses, a missing template or AGENTS.md, a context without `.dockerignore`.
 */
import { existsSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Reporter, silentReporter } from "../core/output.js";
import { baseImages, isPinned, parseDockerfile } from "./dockerfile.js";
import { absPath, relativeInside } from "./paths.js";
import { readRegistry } from "./registry.js";
import { IMAGE_NAME_RE, PACKAGING_ROOT, REGISTRY_PATH, type Target } from "./schema.js";
import { findPlaceholders, TEMPLATE_NAMES } from "./templates.js";

/** One error or warning found by {@link verifyTargets}. */
export interface Finding {
  /** Stable code, e.g. `DOCKERFILE_MISSING`. */
  code: string;
  /** What is wrong, naming the target and file. */
  message: string;
  /** The target id, when the finding is about one. */
  target?: string;
  /** JSON path in registry.json, e.g. `$.targets[1].dockerfile`. */
  path?: string;
  /** File the finding is in, relative to the root. */
  file?: string;
  /** 1-based line in that file. */
  line?: number;
}

/** Options of {@link verifyTargets}. */
export interface VerifyOptions {
  root: string;
  /** Treat warnings as failures. */
  strict?: boolean;
}

/** Result of {@link verifyTargets}. `ok` is false when there are errors (or warnings under strict). */
export interface VerifyResult {
  ok: boolean;
  strict: boolean;
  root: string;
  /** registry.json path relative to the root. */
  registry: string;
  /** Number of targets in the registry (0 when it does not parse). */
  targets: number;
  errors: Finding[];
  warnings: Finding[];
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const isFile = (p: string) => existsSync(p) && statSync(p).isFile();

async function checkTarget(root: string, t: Target, i: number, errors: Finding[], warnings: Finding[]) {
  const at = (field: string) => `$.targets[${i}].${field}`;
  if (!isDir(absPath(root, t.module))) {
    errors.push({
      code: "MODULE_MISSING",
      target: t.id,
      path: at("module"),
      message: `target '${t.id}': module folder '${t.module}' does not exist`,
    });
  }
  if (!isDir(absPath(root, t.context))) {
    errors.push({
      code: "CONTEXT_MISSING",
      target: t.id,
      path: at("context"),
      message: `target '${t.id}': build context '${t.context}' does not exist`,
    });
  } else {
    if (relativeInside(t.context, t.module) === null) {
      errors.push({
        code: "MODULE_OUTSIDE_CONTEXT",
        target: t.id,
        path: at("module"),
        message: `target '${t.id}': module '${t.module}' is not inside the build context '${t.context}', so the Dockerfile cannot COPY it`,
      });
    }
    if (!existsSync(join(absPath(root, t.context), ".dockerignore"))) {
      warnings.push({
        code: "DOCKERIGNORE_MISSING",
        target: t.id,
        path: at("context"),
        message: `target '${t.id}': build context '${t.context}' has no .dockerignore, so everything in it (.git, node_modules, …) is sent to the engine`,
      });
    }
  }
  if (!IMAGE_NAME_RE.test(t.image)) {
    errors.push({
      code: "IMAGE_NAME_INVALID",
      target: t.id,
      path: at("image"),
      message: `target '${t.id}': image name '${t.image}' is not a valid repository name (lowercase, no tag)`,
    });
  }
  const df = absPath(root, t.dockerfile);
  if (!isFile(df)) {
    errors.push({
      code: "DOCKERFILE_MISSING",
      target: t.id,
      path: at("dockerfile"),
      message: `target '${t.id}': Dockerfile '${t.dockerfile}' does not exist`,
    });
    return;
  }
  const text = await readFile(df, "utf8");
  for (const p of findPlaceholders(text)) {
    errors.push({
      code: "UNRESOLVED_PLACEHOLDER",
      target: t.id,
      file: t.dockerfile,
      line: p.line,
      message: `target '${t.id}': ${t.dockerfile}:${p.line} still has the template placeholder {{${p.name}}}`,
    });
  }
  const ins = parseDockerfile(text);
  const bases = baseImages(ins, t.buildArgs ?? {});
  if (bases.length === 0) {
    errors.push({
      code: "DOCKERFILE_NO_FROM",
      target: t.id,
      file: t.dockerfile,
      message: `target '${t.id}': ${t.dockerfile} has no FROM instruction`,
    });
  }
  for (const b of bases) {
    if (!b.stage && !isPinned(b.image)) {
      warnings.push({
        code: "BASE_IMAGE_UNPINNED",
        target: t.id,
        file: t.dockerfile,
        line: b.line,
        message: `target '${t.id}': ${t.dockerfile}:${b.line} uses base image '${b.image || "(empty)"}' without a pinned tag or digest`,
      });
    }
  }
  if (t.type !== "job" && !ins.some((x) => x.keyword === "HEALTHCHECK" && !/^NONE\b/i.test(x.args))) {
    warnings.push({
      code: "HEALTHCHECK_MISSING",
      target: t.id,
      file: t.dockerfile,
      message: `target '${t.id}': ${t.dockerfile} has no HEALTHCHECK (${t.type}s should have one)`,
    });
  }
  const lastFrom = ins.map((x) => x.keyword).lastIndexOf("FROM");
  const users = ins.slice(lastFrom + 1).filter((x) => x.keyword === "USER");
  const lastUser = users[users.length - 1]?.args.trim();
  if (!lastUser || /^(root|0)(:.*)?$/.test(lastUser)) {
    warnings.push({
      code: "RUNS_AS_ROOT",
      target: t.id,
      file: t.dockerfile,
      message: `target '${t.id}': ${t.dockerfile} runs as root (add a USER instruction in the final stage)`,
    });
  }
}

/**
 * Runs every check over the project at `options.root` and returns the findings; never throws
 * for problems in the checked files (only for unreadable ones, as `FS_*`).
 */
export async function verifyTargets(
  options: VerifyOptions,
  reporter: Reporter = silentReporter(),
): Promise<VerifyResult> {
  const root = options.root;
  const strict = options.strict ?? false;
  const errors: Finding[] = [];
  const warnings: Finding[] = [];
  const done = (targets: number): VerifyResult => {
    for (const e of errors) reporter.debug(`error ${e.code}: ${e.message}`);
    for (const w of warnings) reporter.debug(`warning ${w.code}: ${w.message}`);
    const ok = errors.length === 0 && (!strict || warnings.length === 0);
    reporter.debug(
      `${targets} target(s): ${errors.length} error(s), ${warnings.length} warning(s)${ok ? "" : strict && errors.length === 0 ? " (--strict)" : ""}`,
    );
    return { ok, strict, root, registry: REGISTRY_PATH, targets, errors, warnings };
  };

  if (!isDir(join(root, PACKAGING_ROOT))) {
    errors.push({
      code: "PACKAGING_ROOT_MISSING",
      file: PACKAGING_ROOT,
      message: `packaging root '${PACKAGING_ROOT}/' does not exist (run 'dockpack targets init')`,
    });
  } else {
    if (!isFile(join(root, PACKAGING_ROOT, "AGENTS.md"))) {
      warnings.push({
        code: "AGENTS_MISSING",
        file: `${PACKAGING_ROOT}/AGENTS.md`,
        message: `${PACKAGING_ROOT}/AGENTS.md is missing (run 'dockpack targets init' to restore it)`,
      });
    }
    for (const name of TEMPLATE_NAMES) {
      const rel = `${PACKAGING_ROOT}/templates/Dockerfile.${name}`;
      if (!isFile(join(root, rel)))
        warnings.push({
          code: "TEMPLATE_MISSING",
          file: rel,
          message: `${rel} is missing (run 'dockpack targets init' to restore it)`,
        });
    }
  }
  const reg = await readRegistry(root);
  if (!reg.exists) {
    errors.push({
      code: "REGISTRY_MISSING",
      file: REGISTRY_PATH,
      message: `${REGISTRY_PATH} does not exist (run 'dockpack targets init')`,
    });
    return done(0);
  }
  if (!reg.registry) {
    for (const p of reg.problems) {
      errors.push({
        code: "REGISTRY_INVALID",
        file: REGISTRY_PATH,
        path: p.path,
        ...(p.line ? { line: p.line } : {}),
        message: `${REGISTRY_PATH}${p.line ? `:${p.line}` : ""}: ${p.path}: ${p.message}`,
      });
    }
    return done(0);
  }
  const targets = reg.registry.targets;
  const seenIds = new Map<string, number>();
  const seenImages = new Map<string, string>();
  for (const [i, t] of targets.entries()) {
    const first = seenIds.get(t.id);
    if (first !== undefined) {
      errors.push({
        code: "DUPLICATE_ID",
        target: t.id,
        path: `$.targets[${i}].id`,
        message: `target id '${t.id}' appears twice ($.targets[${first}] and $.targets[${i}])`,
      });
    } else seenIds.set(t.id, i);
    const other = seenImages.get(t.image);
    if (other !== undefined && other !== t.id) {
      warnings.push({
        code: "DUPLICATE_IMAGE",
        target: t.id,
        path: `$.targets[${i}].image`,
        message: `targets '${other}' and '${t.id}' build the same image '${t.image}'`,
      });
    } else seenImages.set(t.image, t.id);
    await checkTarget(root, t, i, errors, warnings);
  }
  const used = new Set(targets.map((t) => t.dockerfile));
  for (const dir of ["services", "jobs", "apps"]) {
    const abs = join(root, PACKAGING_ROOT, dir);
    if (!isDir(abs)) continue;
    for (const name of (await readdir(abs)).sort()) {
      const rel = `${PACKAGING_ROOT}/${dir}/${name}`;
      if (/Dockerfile/i.test(name) && !used.has(rel)) {
        warnings.push({
          code: "DOCKERFILE_UNUSED",
          file: rel,
          message: `${rel} is not used by any target in ${REGISTRY_PATH}`,
        });
      }
    }
  }
  return done(targets.length);
}
