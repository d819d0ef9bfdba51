/**
 * `targets add-service|add-job|add-app`: registers a deployable and creates its Dockerfile from
 * a template when it does not exist yet.
 */
import { existsSync, statSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { DockpackError } from "../core/errors.js";
import { atomicWriteFile } from "../core/fs.js";
import { type Reporter, silentReporter } from "../core/output.js";
import { absPath, projectPath, relativeInside } from "./paths.js";
import { loadRegistry, saveRegistry } from "./registry.js";
import { IMAGE_NAME_RE, PACKAGING_ROOT, TARGET_ID_RE, type Target, type TargetType } from "./schema.js";
import { loadTemplate, renderTemplate, TEMPLATE_NAMES, type TemplateValues } from "./templates.js";

/** Options of {@link addTarget}. Paths are absolute or relative to `root`. */
export interface AddOptions {
  root: string;
  type: TargetType;
  /** Target id, `[a-z0-9-]`, unique in the registry. */
  id: string;
  /** Source folder; default `<type>s/<id>` (e.g. `services/api`). Must exist. */
  module?: string;
  /** `node`, `python`, `go` or a template path; default: guessed from the module's files. */
  template?: string;
  /** Dockerfile path; default `ops/packaging/<type>s/<id>.Dockerfile`. */
  dockerfile?: string;
  /** Build context; default `.` (the project root). Must contain the module. */
  context?: string;
  /** Image repository name; default the id. */
  image?: string;
  /** Port filled into `{{PORT}}`; default 8080. */
  port?: number;
  /** Entry filled into `{{ENTRY}}`; default guessed per template. */
  entry?: string;
  /** Health endpoint filled into `{{HEALTH_PATH}}`; default `/healthz`. */
  healthPath?: string;
}

/** Result of {@link addTarget}. */
export interface AddResult {
  /** The registry entry added. */
  target: Target;
  /** True when the Dockerfile was created from a template (false: an existing one is used). */
  dockerfileCreated: boolean;
  /** The template file used, or null. */
  template: string | null;
}

function usage(code: string, message: string, hint: string): DockpackError {
  return new DockpackError(code, message, { hint, usage: true });
}

/** Guesses the template from the module's files: package.json → node, go.mod → go, Python files → python. */
function guessTemplate(moduleDir: string): string | null {
  if (existsSync(join(moduleDir, "package.json"))) return "node";
  if (existsSync(join(moduleDir, "go.mod"))) return "go";
  for (const f of ["requirements.txt", "pyproject.toml", "main.py", "app.py", "setup.py"]) {
    if (existsSync(join(moduleDir, f))) return "python";
  }
  return null;
}

async function guessEntry(template: string, moduleDir: string): Promise<string> {
  if (template === "node") {
    try {
      const pkg = JSON.parse(await readFile(join(moduleDir, "package.json"), "utf8")) as { main?: unknown };
      if (typeof pkg.main === "string" && pkg.main) return pkg.main;
    } catch {
      // no or bad package.json: fall back to file names
    }
    return (
      ["server.js", "index.js", "main.js", "app.js"].find((f) => existsSync(join(moduleDir, f))) ?? "index.js"
    );
  }
  if (template === "python") {
    return ["main.py", "app.py", "server.py"].find((f) => existsSync(join(moduleDir, f))) ?? "main.py";
  }
  return ".";
}

/**
 * Adds a target to `docs/packaging/registry.json` (unknown fields kept) and creates its
 * Dockerfile from the template when missing. The Dockerfile is written first and removed again
 * if the registry cannot be saved.
 * Throws (usage) `TARGET_ID_INVALID`, `TARGET_EXISTS`, `MODULE_NOT_FOUND`, `CONTEXT_NOT_FOUND`,
 * `MODULE_OUTSIDE_CONTEXT`, `IMAGE_NAME_INVALID`, `TEMPLATE_REQUIRED`, `TEMPLATE_NOT_FOUND`,
 * `PATH_OUTSIDE_ROOT`; and `TARGETS_NOT_INITIALIZED` / `REGISTRY_INVALID` from the registry.
 */
export async function addTarget(
  options: AddOptions,
  reporter: Reporter = silentReporter(),
): Promise<AddResult> {
  const { root, type, id } = options;
  if (!TARGET_ID_RE.test(id)) {
    throw usage(
      "TARGET_ID_INVALID",
      `Target id '${id}' is invalid.`,
      "Use lowercase letters, digits and dashes ([a-z0-9-]), e.g. 'billing-api'.",
    );
  }
  const registry = await loadRegistry(root);
  if (registry.targets.some((t) => t.id === id)) {
    throw usage(
      "TARGET_EXISTS",
      `A target with id '${id}' is already in the registry.`,
      "Choose another --id, or edit docs/packaging/registry.json.",
    );
  }
  const module = projectPath(root, options.module ?? `${type}s/${id}`, "module");
  const moduleAbs = absPath(root, module);
  if (!existsSync(moduleAbs) || !statSync(moduleAbs).isDirectory()) {
    throw usage(
      "MODULE_NOT_FOUND",
      `Module folder '${module}' of target '${id}' does not exist in ${root}.`,
      "Pass --module with the path of the deployable's source folder.",
    );
  }
  const context = projectPath(root, options.context ?? ".", "context");
  const contextAbs = absPath(root, context);
  if (!existsSync(contextAbs) || !statSync(contextAbs).isDirectory()) {
    throw usage(
      "CONTEXT_NOT_FOUND",
      `Build context '${context}' of target '${id}' does not exist.`,
      "Pass --context with an existing folder (default: the project root).",
    );
  }
  const moduleInContext = relativeInside(context, module);
  if (moduleInContext === null) {
    throw usage(
      "MODULE_OUTSIDE_CONTEXT",
      `Module '${module}' is not inside the build context '${context}' of target '${id}'.`,
      "Use a context that contains the module (e.g. --context .).",
    );
  }
  const image = options.image ?? id;
  if (!IMAGE_NAME_RE.test(image)) {
    throw usage(
      "IMAGE_NAME_INVALID",
      `Image name '${image}' of target '${id}' is invalid.`,
      "Use a lowercase repository name without tag, e.g. 'billing-api' or 'acme/billing-api'.",
    );
  }
  const dockerfile = projectPath(
    root,
    options.dockerfile ?? `${PACKAGING_ROOT}/${type}s/${id}.Dockerfile`,
    "Dockerfile",
  );
  const dockerfileAbs = absPath(root, dockerfile);

  let templatePath: string | null = null;
  let created = false;
  if (!existsSync(dockerfileAbs)) {
    const templateName = options.template ?? guessTemplate(moduleAbs);
    if (!templateName) {
      throw usage(
        "TEMPLATE_REQUIRED",
        `Cannot tell which template suits module '${module}' (no package.json, go.mod or Python files).`,
        `Pass --template with one of ${TEMPLATE_NAMES.join(", ")} or a template path.`,
      );
    }
    const tpl = await loadTemplate(root, templateName);
    templatePath = tpl.path;
    const port = options.port ?? 8080;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw usage(
        "PORT_INVALID",
        `Port '${options.port}' is not a TCP port (1-65535).`,
        "Pass --port with a number such as 8080.",
      );
    }
    const values: TemplateValues = {
      ID: id,
      MODULE: moduleInContext,
      PORT: String(port),
      HEALTH_PATH: options.healthPath ?? "/healthz",
      ENTRY: options.entry ?? (await guessEntry(templateName, moduleAbs)),
    };
    await mkdir(dirname(dockerfileAbs), { recursive: true });
    await atomicWriteFile(dockerfileAbs, renderTemplate(tpl.text, values, type));
    created = true;
    reporter.debug(`created ${dockerfile} from ${templateName}`);
  } else {
    reporter.debug(`using the existing ${dockerfile}`);
  }

  const target: Target = { id, type, module, dockerfile, context, image };
  registry.targets.push(target);
  try {
    await saveRegistry(root, registry);
  } catch (err) {
    if (created) await rm(dockerfileAbs, { force: true });
    throw err;
  }
  reporter.debug(`added ${type} '${id}' (image ${image}) to docs/packaging/registry.json`);
  return { target, dockerfileCreated: created, template: templatePath };
}
