/**
 * `targets build`: builds one target through the Docker Engine API (POST /build, API v1.41,
 * classic builder): the context streamed as a tar honouring `.dockerignore`, the Dockerfile path
 * inside it, every tag as a `t` parameter, build args, platform, and OCI annotation labels
 * (OCI image-spec annotations: `org.opencontainers.image.source`, `.revision`, `.created`,
 * `.version`, `.title`). The build log streams to the Reporter; a failure names the failing step
 * and carries the tail of the log. `--push` pushes each tag through POST /images/{name}/push.
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { requireEngine } from "../core/docker/client.js";
import { DockpackError } from "../core/errors.js";
import { git, isRepo } from "../core/git.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { readBlueprint } from "./blueprint.js";
import { contextEntries, packContext, readDockerignore } from "./context.js";
import { engineBuild } from "./engine-build.js";
import { pushImage } from "./engine-stream.js";
import { expandVars } from "./expand.js";
import { absPath, relativeInside } from "./paths.js";
import { loadRegistry } from "./registry.js";
import { IMAGE_NAME_RE, type Registry, TAG_RE, type Target } from "./schema.js";

/** Options of {@link buildTarget}. */
export interface BuildOptions {
  root: string;
  /** Target id. */
  target: string;
  /** Tags (default `["latest"]`); each gives `<prefix>/<image>:<tag>`. */
  tags?: string[];
  /** Image name prefix, e.g. `ghcr.io/acme`; default the registry's `registry` field, then the blueprint's. */
  registry?: string;
  /** Build args, merged over the target's `buildArgs`. */
  buildArgs?: Record<string, string>;
  /** Platform, e.g. `linux/amd64`; default the target's, else the engine's. */
  platform?: string;
  /** Push every tag after a successful build. */
  push?: boolean;
  /** Plan only: return the exact build, contact no engine, build nothing. */
  dryRun?: boolean;
  /** Prefix for log lines (build-all sets `[id] `). */
  logPrefix?: string;
}

/** The exact build a target resolves to. */
export interface BuildPlan {
  target: string;
  /** Build context folder relative to the root, and absolute. */
  context: string;
  contextDir: string;
  /** Dockerfile relative to the root, and its path inside the context tar. */
  dockerfile: string;
  dockerfileInContext: string;
  /** Full image references to tag, e.g. `ghcr.io/acme/api:1.2.0`. */
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  platform?: string;
  push: boolean;
  /** Entries and file bytes sent as context, after `.dockerignore`. */
  contextEntries: number;
  contextBytes: number;
  /** `.dockerignore` patterns in force. */
  dockerignore: string[];
  /** The equivalent docker CLI command line, for humans. */
  command: string;
}

/** Result of {@link buildTarget}. */
export interface BuildResult {
  target: string;
  dryRun: boolean;
  plan: BuildPlan;
  /** `sha256:…` image ID; absent under dry run. */
  imageId?: string;
  /** Tags pushed (under `--push`). */
  pushed: string[];
  /** Wall time of the build in seconds. */
  durationSeconds: number;
}

function usage(code: string, message: string, hint: string): DockpackError {
  return new DockpackError(code, message, { hint, usage: true });
}

async function gitLabels(root: string): Promise<{ source?: string; revision?: string }> {
  if (!(await isRepo(root).catch(() => false))) return {};
  const revision = await git(["rev-parse", "HEAD"], root).catch(() => undefined);
  const source = await git(["remote", "get-url", "origin"], root).catch(() => undefined);
  return { ...(source ? { source: source.trim() } : {}), ...(revision ? { revision: revision.trim() } : {}) };
}

/**
 * RFC 3339 creation time for the `created` label: SOURCE_DATE_EPOCH (seconds, the
 * reproducible-builds convention) when set, else now.
 */
function createdTime(): string {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  const date = process.env.SOURCE_DATE_EPOCH && Number.isInteger(epoch) ? new Date(epoch * 1000) : new Date();
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);

/** Finds a target by id or throws `TARGET_NOT_FOUND` (usage) listing the known ids. */
export function findTarget(registry: Registry, id: string): Target {
  const t = registry.targets.find((x) => x.id === id);
  if (!t) {
    const ids = registry.targets.map((x) => x.id).join(", ") || "none";
    throw usage(
      "TARGET_NOT_FOUND",
      `No target '${id}' in docs/packaging/registry.json (targets: ${ids}).`,
      "Run 'dockpack targets list' to see the ids.",
    );
  }
  return t;
}

/**
 * Resolves the exact build of a target: tags with the registry prefix, merged build args, OCI
 * labels, the context after `.dockerignore`. Throws (usage) `TAG_INVALID`, `IMAGE_NAME_INVALID`,
 * `TARGET_NOT_FOUND`; `CONTEXT_NOT_FOUND` and `DOCKERFILE_NOT_FOUND` naming the target and path.
 */
export async function planBuild(options: BuildOptions, registry?: Registry): Promise<BuildPlan> {
  const root = options.root;
  const reg = registry ?? (await loadRegistry(root));
  const t = findTarget(reg, options.target);
  const contextDir = absPath(root, t.context);
  if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) {
    throw new DockpackError(
      "CONTEXT_NOT_FOUND",
      `Build context '${t.context}' of target '${t.id}' does not exist.`,
      {
        hint: "Fix the target's context in docs/packaging/registry.json, then run 'dockpack targets verify'.",
      },
    );
  }
  const dockerfileAbs = absPath(root, t.dockerfile);
  if (!existsSync(dockerfileAbs) || !statSync(dockerfileAbs).isFile()) {
    throw new DockpackError(
      "DOCKERFILE_NOT_FOUND",
      `Dockerfile '${t.dockerfile}' of target '${t.id}' does not exist.`,
      {
        hint: `Create it (e.g. 'dockpack targets add-${t.type}' with --dockerfile) or fix the registry entry, then run 'dockpack targets verify'.`,
      },
    );
  }
  const prefix = expandVars(
    options.registry ?? reg.registry ?? (await readBlueprint(root)).registry ?? "",
    "the registry prefix",
  ).replace(/\/+$/, "");
  const name = prefix ? `${prefix}/${t.image}` : t.image;
  if (!IMAGE_NAME_RE.test(name)) {
    throw usage(
      "IMAGE_NAME_INVALID",
      `Image name '${name}' of target '${t.id}' is invalid.`,
      "Use a lowercase registry prefix and image name (e.g. --registry ghcr.io/acme).",
    );
  }
  const tagList = options.tags && options.tags.length > 0 ? options.tags : ["latest"];
  for (const tag of tagList) {
    if (!TAG_RE.test(tag))
      throw usage(
        "TAG_INVALID",
        `Tag '${tag}' is invalid.`,
        "Tags are up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'.",
      );
  }
  const inContext = relativeInside(t.context, t.dockerfile);
  const dockerignore = await readDockerignore(contextDir);
  const entries = await contextEntries(contextDir, dockerignore, [
    ".dockerignore",
    ...(inContext ? [inContext] : []),
  ]);
  let bytes = 0;
  for (const rel of entries) {
    const st = statSync(resolve(contextDir, rel), { throwIfNoEntry: false });
    if (st?.isFile()) bytes += st.size;
  }
  const info = await gitLabels(root);
  const version = tagList.find((x) => x !== "latest") ?? info.revision?.slice(0, 12) ?? "latest";
  const labels: Record<string, string> = {
    "org.opencontainers.image.title": t.id,
    "org.opencontainers.image.source": info.source ?? pathToFileURL(resolve(root)).href,
    ...(info.revision ? { "org.opencontainers.image.revision": info.revision } : {}),
    "org.opencontainers.image.created": createdTime(),
    "org.opencontainers.image.version": version,
    "io.dockpack.target": t.id,
  };
  const buildArgs = { ...(t.buildArgs ?? {}), ...(options.buildArgs ?? {}) };
  const platform = options.platform ?? t.platform;
  const tags = tagList.map((x) => `${name}:${x}`);
  const dockerfileInContext = inContext ?? `.dockpack.${process.pid}.Dockerfile`;
  const command = [
    "docker build",
    `-f ${quote(t.dockerfile)}`,
    ...tags.map((x) => `-t ${quote(x)}`),
    ...Object.entries(buildArgs).map(([k, v]) => `--build-arg ${quote(`${k}=${v}`)}`),
    ...Object.entries(labels).map(([k, v]) => `--label ${quote(`${k}=${v}`)}`),
    ...(platform ? [`--platform ${quote(platform)}`] : []),
    quote(t.context),
  ].join(" ");
  return {
    target: t.id,
    context: t.context,
    contextDir,
    dockerfile: t.dockerfile,
    dockerfileInContext,
    tags,
    buildArgs,
    labels,
    ...(platform ? { platform } : {}),
    push: options.push ?? false,
    contextEntries: entries.length + (inContext ? 0 : 1),
    contextBytes: bytes,
    dockerignore,
    command,
  };
}

/** Builds the hint for a failed build from its error text. */
function failureHint(message: string): string {
  if (
    /pull access denied|dial tcp|lookup .* (no such host|server misbehaving)|manifest unknown|not found: manifest|i\/o timeout|TLS handshake/i.test(
      message,
    )
  ) {
    return "The base image is not in the local engine and no registry answers: build or load it locally, or pass --build-arg BASE_IMAGE=<a local image> (and BUILD_IMAGE for a build stage such as the Go toolchain).";
  }
  return "Fix the failing step in the Dockerfile (or the files it uses), then build again; the build log above (stderr) shows what ran.";
}

/**
 * Builds (and with `push`, pushes) one target. Under `dryRun` returns the plan only.
 * Throws `ENGINE_UNAVAILABLE` when no engine answers, `TARGET_BUILD_FAILED` naming the target and
 * the failing step with the last log lines in `details.logTail`, `TARGET_PUSH_FAILED` naming the
 * reference and the engine's error; plus everything {@link planBuild} throws.
 */
export async function buildTarget(
  options: BuildOptions,
  reporter: Reporter = silentReporter(),
  registry?: Registry,
): Promise<BuildResult> {
  const started = Date.now();
  const plan = await planBuild(options, registry);
  const p = options.logPrefix ?? "";
  if (options.dryRun) {
    reporter.info(`${p}would run: ${plan.command}`);
    return { target: plan.target, dryRun: true, plan, pushed: [], durationSeconds: 0 };
  }
  const docker = await requireEngine();
  const root = options.root;
  const ctx = await packContext(
    plan.contextDir,
    relativeInside(plan.context, plan.dockerfile),
    absPath(root, plan.dockerfile),
  );
  reporter.info(`${p}building ${plan.tags.join(", ")} (context ${plan.context}: ${ctx.entries} entries)`);
  const { imageId, failure, step, tail } = await engineBuild(
    docker,
    ctx.stream,
    {
      dockerfile: plan.dockerfileInContext,
      t: plan.tags,
      buildargs: plan.buildArgs,
      labels: plan.labels,
      ...(plan.platform ? { platform: plan.platform } : {}),
    },
    (line) => reporter.info(`${p}${line}`),
    (line) => reporter.debug(`${p}${line}`),
  );
  if (failure || !imageId) {
    const why = failure ?? "the engine reported no image ID";
    throw new DockpackError(
      "TARGET_BUILD_FAILED",
      `Build of target '${plan.target}' failed${step ? ` at ${step}` : ""}: ${why}\n--- last lines of the build log ---\n${tail.join("\n")}`,
      { hint: failureHint(why), details: { target: plan.target, step, error: why, logTail: tail } },
    );
  }
  reporter.info(`${p}built ${imageId} as ${plan.tags.join(", ")}`);
  const pushed: string[] = [];
  if (plan.push) {
    for (const ref of plan.tags) {
      await pushImage(docker, ref, (line) => reporter.info(`${p}${line}`));
      pushed.push(ref);
    }
  }
  return {
    target: plan.target,
    dryRun: false,
    plan,
    imageId,
    pushed,
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
  };
}
