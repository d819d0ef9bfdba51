/**
 * `dockpack env …`: per-branch environments (git worktree + compose project + named volumes).
 * Thin: parses flags into the library's options and renders its results.
 */
import type { Command } from "commander";
import { formatBytes, formatTable } from "../core/output.js";
import type { EnvironmentInfo } from "../env/index.js";
import { action, withExamples } from "./common.js";

/** Human rendering of one environment. */
export function renderEnvironment(e: EnvironmentInfo): string {
  const lines = [
    `environment ${e.branch}: ${e.status}`,
    `  path:     ${e.path}`,
    `  project:  ${e.composeProject}`,
    `  url:      ${e.url ?? "-"}`,
    `  ports:    ${
      Object.entries(e.ports)
        .map(([k, v]) => `${k} → ${v}`)
        .join(", ") || "-"
    }`,
    `  volumes:  ${e.volumes.map((v) => `${v.volume} (${v.size === null ? "absent" : formatBytes(v.size)})`).join(", ") || "-"}`,
    `  containers: ${e.containers.map((c) => `${c.name} ${c.state}`).join(", ") || "-"}`,
    ...(e.shared.volumes.length || e.shared.networks.length
      ? [
          `  shared:   ${[...e.shared.volumes.map((v) => `volume ${v}`), ...e.shared.networks.map((n) => `network ${n}`)].join(", ")} (external, not packaged)`,
        ]
      : []),
  ];
  return lines.join("\n");
}

const list = (x: string, prev: string[] = []) => [...prev, x];

/** Adds the `env` command group. */
export function register(program: Command): void {
  const env = program
    .command("env")
    .description("per-branch environments: git worktree + compose project + named volumes");
  withExamples(env, [
    "dockpack env init",
    "dockpack env create feature/login",
    "dockpack env up feature/login",
    "dockpack env list --json",
  ]);

  withExamples(
    env
      .command("init")
      .description(
        "write .dockpack/config.yml for this repository (compose files, volumes, env files, web port)",
      )
      .option("--project <name>", "project name (default: the repository folder's name)")
      .option(
        "--compose-file <file>",
        "compose file (repeatable; default: what compose loads: COMPOSE_FILE, else compose.yaml/docker-compose.yml + override)",
        list,
      )
      .option("--worktrees-dir <dir>", "where environments' worktrees go", "worktrees")
      .option("--volume <name>", "named volume to package (repeatable; default: all named volumes)", list)
      .option(
        "--env-file <file>",
        "env file to carry into worktrees and packages (repeatable; default: .env and every env_file:)",
        list,
      )
      .option("--web-service <service>", "service whose published port gives the environment's URL")
      .option("--web-port <port>", "container port of the web service", (v) => Number.parseInt(v, 10))
      .option("--force", "overwrite an existing config")
      .action(
        action(
          async (r, cmd) => {
            const o = cmd.opts();
            return (await import("../env/init.js")).initEnvironments(
              {
                project: o.project,
                composeFiles: o.composeFile,
                worktreesDir: o.worktreesDir,
                volumes: o.volume,
                envFiles: o.envFile,
                webService: o.webService,
                webPort: o.webPort,
                force: o.force,
              },
              r,
            );
          },
          (r) =>
            `wrote ${r.configPath}\n  project ${r.config.project}, volumes: ${r.config.volumes.join(", ") || "none"}${r.config.web ? `, web: ${r.config.web.service}:${r.config.web.port}` : ""}`,
        ),
      ),
    ["dockpack env init", "dockpack env init --project shop --volume db --volume media --web-service web"],
  );

  withExamples(
    env
      .command("create <branch>")
      .description(
        "create the environment of BRANCH: worktree, compose project, volume names and free host ports",
      )
      .option("--from <ref>", "start point when the branch is new (default HEAD)")
      .option("--copy-data-from <branch>", "copy the volume data of another environment")
      .action(
        action(
          async (r, cmd, branch: string) =>
            (await import("../env/environments.js")).createEnvironment(
              { branch, from: cmd.opts().from, copyDataFrom: cmd.opts().copyDataFrom },
              r,
            ),
          renderEnvironment,
        ),
      ),
    [
      "dockpack env create feature/login",
      "dockpack env create hotfix --from v1.2.0 --copy-data-from main-dev",
    ],
  );

  withExamples(
    env
      .command("up <branch>")
      .description(
        "start the environment (compose up -d from its compose file regenerated from the resolved model; builds missing images)",
      )
      .option("--build", "build every build: image again before starting")
      .option(
        "--offline",
        "never pull or build: every service's image must be in the engine (e.g. loaded by packages import)",
      )
      .action(
        action(
          async (r, cmd, branch: string) =>
            (await import("../env/environments.js")).environmentUp(
              { branch, build: cmd.opts().build, offline: cmd.opts().offline },
              r,
            ),
          renderEnvironment,
        ),
      ),
    [
      "dockpack env up feature/login",
      "dockpack env up feature/login --build",
      "dockpack env up review --offline",
    ],
  );

  withExamples(
    env
      .command("build <branch>")
      .description("build the environment's build: images (compose build), named per compose project")
      .action(
        action(
          async (r, _cmd, branch: string) =>
            (await import("../env/environments.js")).environmentBuild({ branch }, r),
          renderEnvironment,
        ),
      ),
    ["dockpack env build feature/login"],
  );

  withExamples(
    env
      .command("down <branch>")
      .description("stop and remove the environment's containers (volumes are kept)")
      .action(
        action(
          async (r, _cmd, branch: string) =>
            (await import("../env/environments.js")).environmentDown({ branch }, r),
          renderEnvironment,
        ),
      ),
    ["dockpack env down feature/login"],
  );

  withExamples(
    env
      .command("list")
      .description("list environments: branch, status, URL, containers, volumes with sizes")
      .action(
        action(
          async (r) => (await import("../env/environments.js")).listEnvironments({}, r),
          (r) =>
            r.environments.length === 0
              ? "no environments (create one with 'dockpack env create BRANCH')"
              : formatTable(
                  ["BRANCH", "STATUS", "URL", "CONTAINERS", "VOLUMES", "PATH"],
                  r.environments.map((e) => [
                    e.branch,
                    e.status,
                    e.url ?? "-",
                    `${e.containers.filter((c) => c.state === "running").length}/${e.containers.length}`,
                    e.volumes
                      .map((v) => `${v.name}:${v.size === null ? "absent" : formatBytes(v.size)}`)
                      .join(" ") || "-",
                    e.path,
                  ]),
                ),
        ),
      ),
    ["dockpack env list", "dockpack env list --json"],
  );

  withExamples(
    env
      .command("info <branch>")
      .description("show one environment")
      .action(
        action(
          async (_r, _cmd, branch: string) =>
            (await import("../env/environments.js")).environmentInfo({ branch }),
          renderEnvironment,
        ),
      ),
    ["dockpack env info feature/login --json"],
  );

  withExamples(
    env
      .command("remove <branch>")
      .description(
        "stop the environment and remove its worktree (refuses uncommitted changes without --force)",
      )
      .option("--volumes", "also remove its named volumes")
      .option("--delete-branch", "also delete the git branch")
      .option("--force", "remove even with uncommitted changes (they are lost)")
      .action(
        action(
          async (r, cmd, branch: string) =>
            (await import("../env/remove.js")).removeEnvironment(
              {
                branch,
                volumes: cmd.opts().volumes,
                deleteBranch: cmd.opts().deleteBranch,
                force: cmd.opts().force,
              },
              r,
            ),
          (r) =>
            `${r.rolledBack ? "rolled back the half-imported " : "removed "}environment ${r.branch} (${r.path})${r.removedVolumes.length ? `, volumes ${r.removedVolumes.join(", ")}` : ""}${r.branchDeleted ? ", branch deleted" : ""}` +
            (r.keptVolumes.length
              ? `\nkept volumes ${r.keptVolumes.join(", ")} (their data stays; remove them later with: dockpack env prune)`
              : ""),
        ),
      ),
    ["dockpack env remove feature/login", "dockpack env remove feature/login --volumes --delete-branch"],
  );

  withExamples(
    env
      .command("prune")
      .description("remove the volumes of environments that are gone (kept by env remove without --volumes)")
      .option("--dry-run", "only list them")
      .action(
        action(
          async (r, cmd) => {
            const { pruneEnvironments } = await import("../env/prune.js");
            return pruneEnvironments({ dryRun: cmd.opts().dryRun === true }, r);
          },
          (r) =>
            r.volumes.length === 0
              ? "no volumes of removed environments"
              : `${r.dryRun ? "would remove" : "removed"} ${r.volumes.length} volume(s):\n` +
                r.volumes.map((v) => `  ${v.volume}  (${v.composeProject})`).join("\n"),
        ),
      ),
    ["dockpack env prune --dry-run", "dockpack env prune"],
  );
}
