/**
 * `tool compile`: turns a tool into a deployable package — a Docker build context (Dockerfile,
 * compose file, scripts, README, .env) and/or a standalone executable (Node SEA). Every file
 * comes from `templates/tools/` and the tool's folder: the same input gives the same files.
 * The package is staged beside OUTPUT_PATH and moved into place only when complete.
 */
import { chmod, copyFile, lstat, mkdir, readdir, readlink, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { DockpackError } from "../core/errors.js";
import type { Reporter } from "../core/output.js";
import { silentReporter } from "../core/output.js";
import { bundleRuntime } from "./bundle.js";
import { buildExecutable, type ExeInfo } from "./compile-exe.js";
import { directoryResolver } from "./invoke.js";
import type { Tool } from "./manifest.js";
import { buildAndPush, type PushedImage, pushReference } from "./push.js";
import { closureWith, familiesOf } from "./runtimes.js";
import { sampleInput } from "./sample.js";
import { checkOutputPath, createStage } from "./stage.js";
import { renderTemplate } from "./templates.js";

/** The base image of generated Dockerfiles for Node tools unless `--base-image` is given (pinned tag). */
export const DEFAULT_BASE_IMAGE = "node:20.20.2-bookworm-slim";
/** The base image for tools that run python (pinned tag); node is copied in from {@link DEFAULT_NODE_IMAGE}. */
export const DEFAULT_PYTHON_BASE_IMAGE = "python:3.12.12-slim-bookworm";
/** The image the node runtime is copied from when the base has none (multi-stage build, glibc bases). */
export const DEFAULT_NODE_IMAGE = DEFAULT_BASE_IMAGE;
/** Where the copied node runtime lives in the image (apart from any node the base brings). */
export const IMAGE_NODE_PATH = "/opt/dockpack/node";

/** What `compile` produces. */
export const COMPILE_TARGETS = ["docker", "exe", "both"] as const;
/** One of {@link COMPILE_TARGETS}. */
export type CompileTarget = (typeof COMPILE_TARGETS)[number];

/** Options of {@link compileTool}. */
export interface CompileOptions {
  /** Tool id, looked up in `toolsDir`. */
  id: string;
  /** Folder of tool folders (default `$DOCKPACK_TOOLS_DIR` or `./tools`). */
  toolsDir?: string;
  /** Output folder (default `./docker-package`). */
  output?: string;
  /** `docker` (default), `exe` or `both`. */
  target?: CompileTarget;
  /**
   * Base image of the Dockerfile (default: {@link DEFAULT_PYTHON_BASE_IMAGE} when a tool runs
   * python, else {@link DEFAULT_BASE_IMAGE}). A base that is not a node image gets node copied in.
   */
  baseImage?: string;
  /** Image the node runtime is copied from (default {@link DEFAULT_NODE_IMAGE}). */
  nodeImage?: string;
  /** API port (default 8080). */
  port?: number;
  /** Also write a CI workflow: `github` (.github/workflows/docker-image.yml). */
  ci?: "github";
  /** Replace an existing non-empty output folder. */
  force?: boolean;
  /** After writing, build the image through the engine, tag it with this reference and push it (docker, both). */
  push?: string;
}

/** One generated file. */
export interface GeneratedFile {
  /** Path relative to the output folder, `/`-separated. */
  path: string;
  /** Size in bytes. */
  bytes: number;
}

/** Result of {@link compileTool}. */
export interface CompileResult {
  tool_id: string;
  target: CompileTarget;
  /** Absolute output folder. */
  output: string;
  /** The image name build.sh and compose use (docker, both). */
  image?: string;
  base_image?: string;
  /** Image node is copied from when the base is not a node image. */
  node_image?: string;
  /** Runtimes the tools need beyond node (`python`). */
  runtimes: string[];
  /** What may keep the image from running the tool, with the fix. */
  warnings: string[];
  port: number;
  /** The executable (exe, both). */
  exe?: ExeInfo;
  /** Every file written, sorted by path. */
  files: GeneratedFile[];
  /** The image built and pushed (under `push`). */
  pushed?: PushedImage;
}

/** Collects `tool` and, for workflows, every tool its steps call (recursively), sorted by id. */
export async function toolClosure(tool: Tool, toolsDir?: string): Promise<Tool[]> {
  return closureWith(tool, directoryResolver(toolsDir));
}

const SKIP = new Set([".git", ".DS_Store", "__pycache__", ".env"]);

/** Copies a tool folder (streams; modes normalised to 0755/0644; symlinks kept if inside). */
async function copyToolDir(src: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  for (const name of (await readdir(src)).sort()) {
    if (SKIP.has(name)) continue;
    const from = join(src, name);
    const to = join(dest, name);
    const st = await lstat(from);
    if (st.isDirectory()) await copyToolDir(from, to);
    else if (st.isSymbolicLink()) {
      const target = await readlink(from);
      const abs = resolve(dirname(from), target);
      if (target.startsWith("/") || !(abs + sep).startsWith(src + sep))
        throw new DockpackError(
          "TOOL_SYMLINK_OUTSIDE",
          `${from} links outside the tool folder (${target}).`,
          {
            hint: "Copy the file into the tool folder instead of linking to it.",
          },
        );
      await symlink(target, to);
    } else if (st.isFile()) {
      await copyFile(from, to);
      await chmod(to, st.mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

async function listFiles(root: string, dir = root): Promise<GeneratedFile[]> {
  const out: GeneratedFile[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const st = await lstat(p);
    if (st.isDirectory()) out.push(...(await listFiles(root, p)));
    else out.push({ path: relative(root, p).split(sep).join("/"), bytes: st.size });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function imageName(tool: Tool): string {
  const tag = tool.manifest.version.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 128);
  return `dockpack-tool-${tool.manifest.id}:${tag}`;
}

function dependencyLines(tools: Tool[], npmCommand: string): { system: string; npm: string } {
  const apt = [...new Set(tools.flatMap((t) => t.manifest.dependencies.apt))].sort();
  const pip = [...new Set(tools.flatMap((t) => t.manifest.dependencies.pip))].sort();
  const system: string[] = [];
  if (apt.length)
    system.push(
      "# System packages the tool declares (dependencies.apt).",
      `RUN apt-get update && apt-get install -y --no-install-recommends ${apt.join(" ")} && rm -rf /var/lib/apt/lists/*`,
    );
  if (pip.length)
    system.push(
      "# Python packages the tool declares (dependencies.pip; a Debian python3 base needs python3-pip in dependencies.apt).",
      `RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir ${pip.join(" ")}`,
    );
  const npm = tools
    .filter((t) => t.manifest.dependencies.npm.length)
    .map(
      (t) =>
        `RUN cd /app/tools/${t.manifest.id} && ${npmCommand} install --omit=dev --no-audit --no-fund ${t.manifest.dependencies.npm.join(" ")}`,
    );
  return {
    system: system.length ? `\n${system.join("\n")}\n` : "",
    npm: npm.length ? `${["# npm packages the tool declares (dependencies.npm).", ...npm].join("\n")}\n` : "",
  };
}

/** The .env lines of a service with LLM tools (see docs/commands/tool.md, "LLM tools"). */
const LLM_ENV_BLOCK = `
# LLM tools. LLM_PROVIDER: openai (also any OpenAI-compatible endpoint: ollama's /v1, vLLM,
# llama.cpp server), anthropic or ollama. LLM_BASE_URL: another endpoint — with /v1 for openai
# (e.g. http://host.docker.internal:11434/v1), the server root for anthropic and ollama
# (e.g. http://host.docker.internal:11434). Keys are never logged.
LLM_PROVIDER=openai
LLM_MODEL=
LLM_BASE_URL=
OPENAI_API_KEY=
ANTHROPIC_API_KEY=
# Retries on 408/409/429/5xx and connection errors, with backoff.
LLM_MAX_RETRIES=2
`;

const sq = (s: string) => s.replaceAll("'", "'\\''");

/** True when `image` looks like an official-style node image (node is on its PATH). */
const isNodeImage = (image: string) => /(^|\/)node(:|@|$)/.test(image);

/**
 * The runtime part of the Dockerfile: which base, whether node is copied in, build-time checks
 * that the base can run the tools, and warnings (with the fix) for bases that likely cannot.
 */
function runtimePlan(tools: Tool[], baseImage: string, nodeImage: string) {
  const families = familiesOf(tools);
  const python = families.includes("python");
  const copyNode = !isNodeImage(baseImage);
  const nodeBin = copyNode ? IMAGE_NODE_PATH : "node";
  const apt = tools.flatMap((t) => t.manifest.dependencies.apt);
  const warnings: string[] = [];
  if (/alpine|musl/i.test(baseImage))
    warnings.push(
      `${baseImage} looks musl-based: the node runtime the server needs is built for glibc. Use a Debian/Ubuntu-based --base-image (e.g. ${python ? DEFAULT_PYTHON_BASE_IMAGE : DEFAULT_BASE_IMAGE}).`,
    );
  if (python && !/py(thon)?/i.test(baseImage) && !apt.some((a) => /^python3(-minimal)?$/.test(a)))
    warnings.push(
      `the tool runs python but ${baseImage} may have no python3 (the build checks and stops). Use --base-image ${DEFAULT_PYTHON_BASE_IMAGE} (the default for python tools) or add python3 to dependencies.apt.`,
    );
  const checks: string[] = [];
  if (copyNode)
    checks.push(
      "# The copied node runtime must run on this base (glibc).",
      `RUN ${IMAGE_NODE_PATH} -e 0 || { echo "dockpack: node from NODE_IMAGE does not run on BASE_IMAGE ${baseImage} (a glibc base is needed; alpine/musl cannot run it): choose a Debian/Ubuntu-based --base-image" >&2; exit 1; }`,
    );
  if (python)
    checks.push(
      "# The tool runs python: the base must have it.",
      `RUN command -v python3 >/dev/null || { echo "dockpack: the tool runs python3 but BASE_IMAGE ${baseImage} has none: use --base-image ${DEFAULT_PYTHON_BASE_IMAGE} or add python3 to dependencies.apt" >&2; exit 1; }`,
    );
  const npmNeeded = tools.some((t) => t.manifest.dependencies.npm.length);
  const copy = copyNode
    ? [
        "# The server's node runtime, copied from NODE_IMAGE (multi-stage build).",
        `COPY --from=node /usr/local/bin/node ${IMAGE_NODE_PATH}`,
        ...(npmNeeded ? ["COPY --from=node /usr/local/lib/node_modules/npm /opt/dockpack/npm"] : []),
      ].join("\n")
    : "";
  return {
    families,
    copyNode,
    nodeBin,
    warnings,
    npmCommand: copyNode ? `${IMAGE_NODE_PATH} /opt/dockpack/npm/bin/npm-cli.js` : "npm",
    values: {
      RUNTIME_NOTE: `node${families.map((f) => ` + ${f}`).join("")}${copyNode ? " (node copied in from NODE_IMAGE)" : ""}`,
      NODE_BIN: nodeBin,
      NODE_STAGE: copyNode ? `ARG NODE_IMAGE=${nodeImage}\nFROM \${NODE_IMAGE} AS node\n` : "",
      NODE_COPY: copy,
      RUNTIME_CHECKS: checks.length ? `${checks.join("\n")}\n` : "",
      COMPOSE_NODE_ARG: copyNode ? `        NODE_IMAGE: \${NODE_IMAGE:-${nodeImage}}\n` : "",
      BUILD_NODE_NOTE: copyNode ? ", NODE_IMAGE" : "",
      BUILD_NODE_LINE: copyNode ? `NODE_IMAGE="\${NODE_IMAGE:-${nodeImage}}"\n` : "",
      BUILD_NODE_ARG: copyNode ? ' --build-arg NODE_IMAGE="$NODE_IMAGE"' : "",
    },
  };
}

/**
 * Compiles tool `id` into a package in `output`.
 * @returns what was written (paths relative to `output`, sizes in bytes)
 * @throws DockpackError `TOOL_NOT_FOUND`, `TOOL_MANIFEST_INVALID`, `OUTPUT_EXISTS` (non-empty
 *   output without `force`), `COMPILE_OPTION_INVALID` (usage), `BUNDLE_FAILED`, `SEA_*`;
 *   on any error nothing is left at `output` (an existing one is untouched)
 */
export async function compileTool(
  options: CompileOptions,
  reporter: Reporter = silentReporter(),
): Promise<CompileResult> {
  const target = options.target ?? "docker";
  if (!COMPILE_TARGETS.includes(target))
    throw new DockpackError("COMPILE_OPTION_INVALID", `Unknown target '${target}'.`, {
      hint: "Use docker, exe or both.",
      usage: true,
    });
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new DockpackError(
      "COMPILE_OPTION_INVALID",
      `Port ${options.port} is not an integer from 1 to 65535.`,
      {
        usage: true,
      },
    );
  const resolveTool = directoryResolver(options.toolsDir);
  const tool = await resolveTool(options.id);
  const tools = await closureWith(tool, resolveTool);
  const python = familiesOf(tools).includes("python");
  const baseImage = options.baseImage ?? (python ? DEFAULT_PYTHON_BASE_IMAGE : DEFAULT_BASE_IMAGE);
  const nodeImage = options.nodeImage ?? DEFAULT_NODE_IMAGE;
  for (const ref of [baseImage, nodeImage])
    if (!/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/.test(ref))
      throw new DockpackError("COMPILE_OPTION_INVALID", `'${ref}' is not an image reference.`, {
        usage: true,
      });
  const plan = runtimePlan(tools, baseImage, nodeImage);
  if (target !== "exe") for (const w of plan.warnings) reporter.warn(w);
  const exeWarnings =
    target !== "docker" && plan.families.includes("python")
      ? ["the executable carries node, not python: python3 must be installed on the machine that runs it."]
      : [];
  for (const w of exeWarnings) reporter.warn(w);
  if (options.push !== undefined && target === "exe")
    throw new DockpackError("COMPILE_OPTION_INVALID", "--push needs the docker or both target.", {
      usage: true,
    });
  const pushRef = options.push === undefined ? undefined : pushReference(options.push);
  const output = resolve(options.output ?? "docker-package");
  await checkOutputPath(output, Boolean(options.force));

  const m = tool.manifest;
  const image = imageName(tool);
  const sample = JSON.stringify(sampleInput(tool));
  const workdir = relative(process.cwd(), output).split(sep).join("/") || ".";
  const deps = dependencyLines(tools, plan.npmCommand);
  const values: Record<string, string> = {
    TOOL_ID: m.id,
    TOOL_NAME: m.name,
    TOOL_DESCRIPTION: m.description || m.name,
    TOOL_VERSION: m.version,
    TOOL_COMMAND: m.command?.join(" ") ?? `workflow: ${(m.steps ?? []).map((s) => s.tool).join(" → ")}`,
    BASE_IMAGE: baseImage,
    PORT: String(port),
    IMAGE: image,
    IMAGE_NAME: `dockpack-tool-${m.id}`,
    CONTAINER: `dockpack-tool-${m.id}`,
    SAMPLE_INPUT: sq(sample),
    TIMEOUT: String(m.timeout_seconds),
    INPUT_SCHEMA: JSON.stringify(m.input_schema, null, 2),
    WORKFLOW_NOTE:
      tools.length > 1
        ? ` (and the tools its workflow steps call: ${tools
            .filter((t) => t !== tool)
            .map((t) => t.manifest.id)
            .join(", ")})`
        : "",
    SYSTEM_DEPENDENCIES: deps.system,
    TOOL_DEPENDENCIES: deps.npm,
    REQUIRED_ENV: (() => {
      const req = [...new Set(tools.flatMap((t) => t.manifest.env.required))].sort();
      return req.length
        ? `\n# Required by the tool (it fails without them):\n${req.map((k) => `${k}=`).join("\n")}\n`
        : "";
    })(),
    WORKDIR: workdir,
    LLM_ENV: tools.some((t) => t.manifest.type === "llm") ? LLM_ENV_BLOCK : "",
    ...plan.values,
  };

  const stage = await createStage(output);
  let result: CompileResult;
  try {
    const dir = stage.dir;
    const write = async (rel: string, text: string, mode = 0o644) => {
      const p = join(dir, rel);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, text);
      await chmod(p, mode);
    };
    reporter.info(`bundling the service runtime for '${m.id}' (esbuild)`);
    await write("server.cjs", await bundleRuntime(m.id));
    for (const t of tools) await copyToolDir(t.dir, join(dir, "tools", t.manifest.id));
    const envExample = await renderTemplate("env.example.tmpl", values);
    await write(".env.example", envExample);
    await write(".env", envExample);
    await write(".gitignore", await renderTemplate("gitignore.tmpl", values));
    if (target === "docker" || target === "both") {
      await write("Dockerfile", await renderTemplate("Dockerfile.tmpl", values));
      await write(".dockerignore", await renderTemplate("dockerignore.tmpl", values));
      await write("docker-compose.yml", await renderTemplate("docker-compose.yml.tmpl", values));
      await write("README.md", await renderTemplate("README.md.tmpl", values));
      for (const s of ["build.sh", "run.sh", "test.sh", "stop.sh", "docker-compose-up.sh"])
        await write(s, await renderTemplate(`${s}.tmpl`, values), 0o755);
      if (options.ci === "github")
        await write(
          ".github/workflows/docker-image.yml",
          await renderTemplate("github-workflow.yml.tmpl", values),
        );
    }
    let exe: ExeInfo | undefined;
    if (target === "exe" || target === "both") {
      exe = await buildExecutable(dir, tool, reporter);
      await write(
        "BUILD_INSTRUCTIONS.md",
        await renderTemplate("BUILD_INSTRUCTIONS.md.tmpl", {
          ...values,
          EXE_NAME: exe.name,
          NODE_VERSION: process.versions.node,
          PLATFORM: `${process.platform}-${process.arch}`,
          EXE_RUNTIME_NOTE: plan.families.includes("python") ? ": python3 for this tool" : "",
        }),
      );
    }
    const files = await listFiles(dir);
    await stage.commit();
    reporter.info(`wrote ${files.length} files to ${output}`);
    result = {
      tool_id: m.id,
      target,
      output,
      ...(target !== "exe"
        ? { image, base_image: baseImage, ...(plan.copyNode ? { node_image: nodeImage } : {}) }
        : {}),
      runtimes: plan.families,
      warnings: [...(target !== "exe" ? plan.warnings : []), ...exeWarnings],
      port,
      ...(exe ? { exe: { ...exe, path: join(output, exe.path) } } : {}),
      files,
    };
  } catch (e) {
    await stage.abort();
    throw e;
  }
  // The folder is complete and kept even when the build or the push fails.
  if (pushRef) result.pushed = await buildAndPush(output, pushRef, reporter);
  return result;
}
