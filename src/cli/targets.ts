/**
 * `dockpack targets …`: packaging targets (registry.json, Dockerfile templates, build, build-all,
 * verify). Flags become the options of the library functions in src/targets; results print as
 * text or, under --json, as the result object.
 */
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { DockpackError } from "../core/errors.js";
import { formatTable } from "../core/output.js";
import type { TargetType } from "../targets/index.js";
import { action, withExamples } from "./common.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

function parseBuildArgs(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) {
      throw new DockpackError("BUILD_ARG_INVALID", `--build-arg '${item}' is not KEY=VALUE.`, {
        hint: "Write it as --build-arg BASE_IMAGE=node:20.19-bookworm-slim.",
        usage: true,
      });
    }
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) {
    throw new DockpackError("NUMBER_INVALID", `'${value}' is not a whole number.`, {
      hint: "Pass a number such as 2.",
      usage: true,
    });
  }
  return n;
}

const rootOf = (cmd: Command) => resolve((cmd.optsWithGlobals() as { root?: string }).root ?? ".");

/** The target types (targets/schema.ts's TARGET_TYPES; kept here so that help does not load zod). */
const TARGET_TYPES: readonly TargetType[] = ["service", "job", "app"];

function addCommand(group: Command, type: TargetType): void {
  const cmd = group
    .command(`add-${type}`)
    .description(
      `register ${type === "app" ? "an" : "a"} ${type} and create its Dockerfile from a template when missing`,
    )
    .requiredOption("--id <id>", "target id: lowercase letters, digits and dashes, unique")
    .option("--module <path>", `source folder of the ${type} (default ${type}s/<id>)`)
    .option(
      "--template <name|path>",
      "node, python, go or a template path (default: guessed from the module)",
    )
    .option(
      "--dockerfile <path>",
      `Dockerfile (default ops/packaging/${type}s/<id>.Dockerfile; kept if it exists)`,
    )
    .option("--context <path>", "build context folder (default: the project root)")
    .option("--image <name>", "image repository name without tag (default: the id)")
    .option("--entry <entry>", "what the container runs, filled into {{ENTRY}} (default: guessed)");
  // A job serves nothing: no port, no health endpoint (issue 12 A17).
  if (type !== "job")
    cmd
      .option("--port <n>", "port filled into {{PORT}} (default 8080)", parseCount)
      .option("--health-path <path>", "health endpoint filled into {{HEALTH_PATH}} (default /healthz)");
  cmd.action(
    action(
      async (reporter, c: Command) => {
        const o = c.opts() as Record<string, string | number | undefined>;
        return (await import("../targets/add.js")).addTarget(
          {
            root: rootOf(c),
            type,
            id: String(o.id),
            ...(o.module !== undefined ? { module: String(o.module) } : {}),
            ...(o.template !== undefined ? { template: String(o.template) } : {}),
            ...(o.dockerfile !== undefined ? { dockerfile: String(o.dockerfile) } : {}),
            ...(o.context !== undefined ? { context: String(o.context) } : {}),
            ...(o.image !== undefined ? { image: String(o.image) } : {}),
            ...(o.port !== undefined ? { port: Number(o.port) } : {}),
            ...(o.entry !== undefined ? { entry: String(o.entry) } : {}),
            ...(o.healthPath !== undefined ? { healthPath: String(o.healthPath) } : {}),
          },
          reporter,
        );
      },
      (r) =>
        `added ${r.target.type} ${r.target.id}: module ${r.target.module}, Dockerfile ${r.target.dockerfile}` +
        `${r.dockerfileCreated ? " (created)" : " (existing)"}, image ${r.target.image}`,
    ),
  );
  withExamples(cmd, [
    `dockpack targets add-${type} --id ${type === "job" ? "nightly-report" : "api"} --module ${type}s/${type === "job" ? "report" : "api"} --template ${type === "job" ? "python" : "node"}`,
    type === "job"
      ? "dockpack targets add-job --id cleanup --module jobs/cleanup --image acme/cleanup"
      : `dockpack targets add-${type} --id web --module apps/web --port 3000 --image acme/web`,
  ]);
}

/** Adds the `targets` group to the root program. */
export function register(program: Command): void {
  const group = program
    .command("targets")
    .description(
      "packaging targets: a registry of services, jobs and apps, Dockerfile templates, build and verify",
    )
    .option(
      "--root <dir>",
      "project root holding ops/packaging and docs/packaging (default: the current folder)",
    );
  withExamples(group, [
    "dockpack targets init",
    "dockpack targets add-service --id api --module services/api --template node",
    "dockpack targets verify --strict",
    "dockpack targets build --target api --tag 1.2.0 --tag latest",
    "dockpack targets build-all --concurrency 2 --continue-on-error",
  ]);

  withExamples(
    group
      .command("init")
      .description(
        "create ops/packaging/, AGENTS.md, the templates and docs/packaging/registry.json (never overwrites)",
      )
      .option("--dry-run", "list what would be created, write nothing")
      .option("--blueprint <path>", "the project blueprint to read (default init/project-blueprint.json)")
      .action(
        action(
          async (reporter, c: Command) =>
            (await import("../targets/init.js")).initTargets(
              {
                root: rootOf(c),
                dryRun: Boolean(c.opts().dryRun),
                ...(c.opts().blueprint ? { blueprint: c.opts().blueprint as string } : {}),
              },
              reporter,
            ),
          (r) =>
            r.created.length === 0
              ? "nothing to create: the packaging tree is complete"
              : `${r.dryRun ? "would create" : "created"}:\n${r.created.map((x) => `  ${x}`).join("\n")}`,
        ),
      ),
    [
      "dockpack targets init --dry-run",
      "dockpack targets init",
      "dockpack targets --root ../shop init",
      "dockpack targets init --blueprint init/project-blueprint.json",
    ],
  );

  for (const type of TARGET_TYPES) addCommand(group, type);

  withExamples(
    group
      .command("remove")
      .description(
        "take a target out of docs/packaging/registry.json (its Dockerfile is kept unless --dockerfile)",
      )
      .argument("<id>", "the target id")
      .option("--dockerfile", "also delete its Dockerfile when it lies under ops/packaging/")
      .option("--dry-run", "say what would change, change nothing")
      .action(
        action(
          async (reporter, c: Command, id: string) =>
            (await import("../targets/remove.js")).removeTarget(
              {
                root: rootOf(c),
                id,
                deleteDockerfile: Boolean(c.opts().dockerfile),
                dryRun: Boolean(c.opts().dryRun),
              },
              reporter,
            ),
          (r) =>
            `${r.dryRun ? "would remove" : "removed"} ${r.removed.type} ${r.removed.id}` +
            (r.dockerfileDeleted
              ? ` and ${r.dockerfileDeleted}`
              : ` (Dockerfile ${r.removed.dockerfile} kept)`),
        ),
      ),
    ["dockpack targets remove api", "dockpack targets remove nightly-report --dockerfile"],
  );

  withExamples(
    group
      .command("list")
      .description("list the targets in docs/packaging/registry.json")
      .action(
        action(
          async (_reporter, c: Command) =>
            (await import("../targets/list.js")).listTargets({ root: rootOf(c) }),
          (r) =>
            r.targets.length === 0
              ? "no targets (add one with 'dockpack targets add-service')"
              : formatTable(
                  ["ID", "TYPE", "MODULE", "DOCKERFILE", "CONTEXT", "IMAGE"],
                  r.targets.map((t) => [
                    t.id,
                    t.type,
                    t.module,
                    t.dockerfile,
                    t.context,
                    r.registry ? `${r.registry}/${t.image}` : t.image,
                  ]),
                ),
        ),
      ),
    ["dockpack targets list", "dockpack targets list --json"],
  );

  withExamples(
    group
      .command("build")
      .description("build one target through the Docker Engine API (context honours .dockerignore)")
      .requiredOption("--target <id>", "the target to build")
      .option("--tag <tag>", "image tag, repeatable (default latest)", collect)
      .option(
        "--registry <prefix>",
        "image name prefix, e.g. ghcr.io/acme (default: registry.json, then the blueprint)",
      )
      .option("--build-arg <key=value>", "build arg, repeatable", collect)
      .option("--platform <platform>", "target platform, e.g. linux/amd64")
      .option("--push", "push every tag after the build")
      .option(
        "--dry-run",
        "print the exact build (context, Dockerfile, tags, args, labels) and build nothing",
      )
      .action(
        action(
          async (reporter, c: Command) => {
            const o = c.opts() as {
              target: string;
              tag?: string[];
              registry?: string;
              buildArg?: string[];
              platform?: string;
              push?: boolean;
              dryRun?: boolean;
            };
            return (await import("../targets/build.js")).buildTarget(
              {
                root: rootOf(c),
                target: o.target,
                tags: o.tag ?? [],
                buildArgs: parseBuildArgs(o.buildArg),
                ...(o.registry !== undefined ? { registry: o.registry } : {}),
                ...(o.platform !== undefined ? { platform: o.platform } : {}),
                push: Boolean(o.push),
                dryRun: Boolean(o.dryRun),
              },
              reporter,
            );
          },
          (r) =>
            r.dryRun
              ? [
                  `dry run: target ${r.target} would build`,
                  `  context:    ${r.plan.context} (${r.plan.contextEntries} entries, ${r.plan.contextBytes} bytes after .dockerignore)`,
                  `  dockerfile: ${r.plan.dockerfile}`,
                  `  tags:       ${r.plan.tags.join(", ")}`,
                  `  build args: ${
                    Object.entries(r.plan.buildArgs)
                      .map(([k, v]) => `${k}=${v}`)
                      .join(", ") || "(none)"
                  }`,
                  ...(r.plan.platform ? [`  platform:   ${r.plan.platform}`] : []),
                  `  labels:     ${Object.entries(r.plan.labels)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(", ")}`,
                  `  command:    ${r.plan.command}`,
                ].join("\n")
              : `${r.imageId}\n${r.plan.tags.join("\n")}${r.pushed.length ? `\npushed: ${r.pushed.join(", ")}` : ""}`,
        ),
      ),
    [
      "dockpack targets build --target api",
      "dockpack targets build --target api --tag 1.2.0 --tag latest --registry ghcr.io/acme",
      "dockpack targets build --target api --build-arg BASE_IMAGE=node:20.19-bookworm-slim --dry-run",
      "dockpack targets build --target api --tag 1.2.0 --push",
    ],
  );

  withExamples(
    group
      .command("build-all")
      .description("build every target in parallel and print a summary; exit 1 if any failed")
      .option("--target <id>", "only this target, repeatable (default: all)", collect)
      .option("--tag <tag>", "image tag for every target, repeatable (default latest)", collect)
      .option("--registry <prefix>", "image name prefix, e.g. ghcr.io/acme")
      .option("--build-arg <key=value>", "build arg for every target, repeatable", collect)
      .option("--platform <platform>", "target platform, e.g. linux/amd64")
      .addOption(new Option("--concurrency <n>", "builds at once").default(2).argParser(parseCount))
      .option("--continue-on-error", "keep building the other targets after one fails")
      .option("--push", "push every tag after each build")
      .option("--dry-run", "print the builds, build nothing")
      .action(
        action(
          async (reporter, c: Command) => {
            const o = c.opts() as {
              target?: string[];
              tag?: string[];
              registry?: string;
              buildArg?: string[];
              platform?: string;
              concurrency: number;
              continueOnError?: boolean;
              push?: boolean;
              dryRun?: boolean;
            };
            const res = await (await import("../targets/build-all.js")).buildAllTargets(
              {
                root: rootOf(c),
                targets: o.target ?? [],
                tags: o.tag ?? [],
                buildArgs: parseBuildArgs(o.buildArg),
                ...(o.registry !== undefined ? { registry: o.registry } : {}),
                ...(o.platform !== undefined ? { platform: o.platform } : {}),
                concurrency: o.concurrency,
                continueOnError: Boolean(o.continueOnError),
                push: Boolean(o.push),
                dryRun: Boolean(o.dryRun),
              },
              reporter,
            );
            if (!res.ok) process.exitCode = 1;
            return res;
          },
          (r) =>
            `${formatTable(
              ["TARGET", "IMAGE", "STATUS", "DURATION"],
              r.results.map((x) => [x.target, x.image, x.status, `${x.durationSeconds.toFixed(1)}s`]),
            )}\n${r.results.filter((x) => x.status === "built").length}/${r.results.length} built in ${r.durationSeconds.toFixed(1)}s`,
        ),
      ),
    [
      "dockpack targets build-all",
      "dockpack targets build-all --concurrency 4 --continue-on-error --tag 1.2.0",
      "dockpack --json targets build-all --dry-run",
    ],
  );

  withExamples(
    group
      .command("verify")
      .description(
        "check the packaging tree and registry (paths, placeholders, image names, ids); exit 1 on errors",
      )
      .option("--strict", "treat warnings as errors")
      .action(
        action(
          async (reporter, c: Command) => {
            const res = await (await import("../targets/verify.js")).verifyTargets(
              { root: rootOf(c), strict: Boolean(c.opts().strict) },
              reporter,
            );
            if (!res.ok) process.exitCode = 1;
            return res;
          },
          (r) => {
            const lines = [
              ...r.errors.map((e) => `error   ${e.code}: ${e.message}`),
              ...r.warnings.map((w) => `warning ${w.code}: ${w.message}`),
              `${r.ok ? "ok" : "FAILED"}: ${r.targets} target(s), ${r.errors.length} error(s), ${r.warnings.length} warning(s)${r.strict ? " (strict)" : ""}`,
            ];
            return lines.join("\n");
          },
        ),
      ),
    ["dockpack targets verify", "dockpack targets verify --strict --json"],
  );
}
