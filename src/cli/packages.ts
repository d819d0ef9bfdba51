/**
 * `dockpack packages …`: environment packages — export, import, list, validate.
 * Thin: parses flags into the library's options and renders its results.
 */

import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { DockpackError, toDockpackError } from "../core/errors.js";
import { formatBytes, formatTable } from "../core/output.js";
import { action, commandLine, lazy, withExamples } from "./common.js";
import { renderEnvironment } from "./env.js";
import { askPassphrase, canAskPassphrase } from "./passphrase.js";
import {
  registerPackageRegistryCommands,
  registryOptions,
  renderPushedImages,
  renderRemoteList,
} from "./registry.js";

/** env/inspect.js, imported when `packages inspect` runs. */
const inspection = lazy(() => import("../env/inspect.js"));
/** env/package-images-option.js (`--images`), imported when export runs (not the image section's code). */
const imagesOption = lazy(() => import("../env/package-images-option.js"));
/** env/package-images-render.js: the image section's lines, for validate's renderer. */
const imageLines = lazy(() => import("../env/package-images-render.js"));

/** Adds the `packages` command group. */
export function register(program: Command): void {
  const packages = program
    .command("packages")
    .description("environment packages: export, import, list, validate");
  withExamples(packages, [
    "dockpack packages export feature/login",
    "dockpack packages import packages/shop-feature-login-20250101T120000Z.dockpack.tar --target-branch review",
    "dockpack packages list",
  ]);

  withExamples(
    packages
      .command("export <branch>")
      .description(
        "write one verified package file of the environment: env files, config, code and volume data",
      )
      .option("--output-dir <dir>", "where to write the package", "./packages")
      .option("--include-code", "include the worktree's files (default)")
      .option("--no-code", "leave the code out")
      .option("--compressed", "compress volume data (default)")
      .option("--no-compress", "store volume data uncompressed")
      .option("--codec <codec>", "volume compression: zstd or gzip", "zstd")
      .option(
        "--encrypt-to <recipient>",
        "encrypt the env files with age to this recipient (age1…; repeatable)",
        (v: string, p: string[] = []) => [...p, v],
      )
      .option(
        "--encrypt-passphrase",
        "encrypt the env files with age to a passphrase (asked on the terminal, or $DOCKPACK_PASSPHRASE)",
      )
      .option(
        "--images [mode]",
        "carry the services' images: all (the default of a bare --images), none (default), or missing-from=INVENTORY (only what a 'delta inventory' of the receiving engine lacks, as deltas)",
      )
      .option("--inventory <file>", "with --images missing-from: the receiving engine's layer inventory")
      .option(
        "--encrypt-all",
        "with --encrypt-to/--encrypt-passphrase: encrypt the code, every environment file and the volume data too",
      )
      .option("--push <reference>", "then push the package to an OCI registry (see packages push)")
      .option("--ca-file <pem>", "with --push: also trust this CA bundle")
      .option("--insecure", "with --push: allow plain HTTP / unverified TLS")
      .action(
        action(
          async (r, cmd, branch: string) => {
            const o = cmd.opts();
            if (!["zstd", "gzip"].includes(o.codec))
              throw new DockpackError("CODEC_INVALID", `--codec ${o.codec} is not supported here.`, {
                hint: "Use zstd or gzip.",
                usage: true,
              });
            const { exportEnvironment } = await import("../env/export.js");
            const res = await exportEnvironment(
              {
                branch,
                outputDir: o.outputDir,
                includeCode: o.code !== false,
                codec: o.compress === false ? "none" : o.codec,
                images: (await imagesOption()).parseImagesOption(o.images, o.inventory),
                encryptAll: o.encryptAll === true,
                encrypt:
                  o.encryptPassphrase || o.encryptTo
                    ? {
                        recipients: o.encryptTo,
                        passphrase:
                          o.encryptPassphrase && !o.encryptTo
                            ? await askPassphrase("Passphrase for the env files: ", true)
                            : o.encryptPassphrase
                              ? "(both)"
                              : undefined,
                      }
                    : undefined,
              },
              r,
            );
            if (res.metadata.images?.length) await imageLines(); // for the renderer
            if (!o.push) return res;
            const { pushPackage } = await import("../env/registry.js");
            return {
              ...res,
              pushed: await pushPackage(
                { package: res.package, reference: o.push, ...registryOptions(o) },
                r,
              ),
            };
          },
          (res) =>
            `${res.package}\n  ${formatBytes(res.size)}, ${res.metadata.volumes.length} volume(s)` +
            `${res.metadata.include_code ? `, ${res.metadata.code_files} code file(s)` : ", no code"}, ${res.seconds.toFixed(1)} s` +
            (res.metadata.images?.length
              ? `\n${imageLines.loaded().renderImageLines(res.metadata.images, formatBytes)}`
              : "") +
            ("pushed" in res
              ? `\n  pushed ${res.pushed.reference}@${res.pushed.digest} (sent ${formatBytes(res.pushed.uploadedBytes)})` +
                renderPushedImages(res.pushed.images)
              : ""),
        ),
      ),
    [
      "dockpack packages export feature/login",
      "dockpack packages export main --output-dir /mnt/backup --no-code",
      "dockpack packages export main --codec gzip --json",
      "dockpack packages export main --images",
      "dockpack packages export main --images missing-from --inventory receiver-inventory.json",
    ],
  );

  withExamples(
    packages
      .command("import <package>")
      .description(
        "verify a package (a file, or a registry reference such as ghcr.io/acme/shop-env:main) and recreate its environment here",
      )
      .option("--ca-file <pem>", "for a registry reference: also trust this CA bundle")
      .option("--insecure", "for a registry reference: allow plain HTTP / unverified TLS")
      .option("--verify-key <pub>", "for a registry reference: require an SSH signature by this public key")
      .option("--target-branch <name>", "import under another branch name")
      .option("--restore-data", "restore the volumes' data (default)")
      .option("--no-data", "create empty volumes")
      .option("--no-images", "do not load the package's images (env up then needs them from elsewhere)")
      .option("--force", "replace an existing branch/worktree/volumes (kept aside until the import succeeds)")
      .option(
        "--standalone <dir>",
        "create a fresh repository in DIR from the package's code and import there",
      )
      .option(
        "--allow-special-files",
        "restore device nodes and fifos found in volume data (refused by default)",
      )
      .option(
        "--identity <file>",
        "age identity file to decrypt an encrypted package (env files, or everything with --encrypt-all; repeatable)",
        (v: string, p: string[] = []) => [...p, v],
      )
      .option(
        "--project <name>",
        "with --standalone: the new repository's project name (default: DIR's name)",
      )
      .action(
        action(
          async (r, cmd, pkg: string) => {
            const o = cmd.opts();
            const options = {
              package: pkg,
              targetBranch: o.targetBranch,
              restoreData: o.data !== false,
              force: o.force,
              standalone: o.standalone,
              allowSpecialFiles: o.allowSpecialFiles === true,
              project: o.project,
              identity: o.identity as string[] | undefined,
              passphrase: process.env.DOCKPACK_PASSPHRASE,
              images: o.images !== false,
            };
            const { isRegistryReference } = await import("../env/registry-reference.js");
            const { importPackage } = await import("../env/import.js");
            // a file, or a registry reference (streamed: registry-import.ts, loaded only then);
            // the same questions for both
            const run = async (x: typeof options) =>
              isRegistryReference(pkg)
                ? (await import("../env/registry-import.js")).importFromRegistry(
                    { ...x, reference: pkg, verifyKey: o.verifyKey, ...registryOptions(o) },
                    r,
                  )
                : importPackage(x, r);
            try {
              return await run(options);
            } catch (e) {
              // On a terminal, a conflict may be confirmed with a yes (the same as --force).
              const err = toDockpackError(e);
              // encrypted to a passphrase: asked on a terminal, then the import runs again
              if (err.code === "PACKAGE_ENCRYPTED" && canAskPassphrase() && !options.passphrase)
                return run({ ...options, passphrase: await askPassphrase("Passphrase: ") });
              if (err.code !== "IMPORT_CONFLICT" || r.json || !(await confirmReplace(err.message))) throw err;
              return run({ ...options, force: true });
            }
          },
          (res) =>
            `imported ${res.source.project}/${res.source.branch} as ${res.environment.branch} (${res.seconds.toFixed(1)} s)` +
            `${res.replaced.length ? `\n  replaced: ${res.replaced.join(", ")}` : ""}\n${renderEnvironment(res.environment)}\n` +
            `start it with: ${commandLine(`env up ${res.environment.branch}`, res.repository)}`,
        ),
      ),
    [
      "dockpack packages import packages/shop-main-20250101T120000Z.dockpack.tar",
      "dockpack packages import shop.dockpack.tar --target-branch review --no-data",
      "dockpack packages import shop.dockpack.tar --standalone ~/shop-copy",
    ],
  );

  withExamples(
    packages
      .command("list [repository]")
      .description(
        "list packages in a folder, reading only each file's metadata; or the tags of a registry repository",
      )
      .option("--package-dir <dir>", "folder to list", "./packages")
      .option("--ca-file <pem>", "for a repository: also trust this CA bundle")
      .option("--insecure", "for a repository: allow plain HTTP / unverified TLS")
      .action(
        action(
          async (_r, cmd, repository?: string) => {
            if (!repository)
              return (await import("../env/list.js")).listPackages({ packageDir: cmd.opts().packageDir });
            const { listRemotePackages } = await import("../env/registry.js");
            return listRemotePackages({ repository, ...registryOptions(cmd.opts()) });
          },
          (res) =>
            "repository" in res
              ? renderRemoteList(res)
              : res.packages.length === 0
                ? `no packages in ${res.directory}`
                : formatTable(
                    ["FILE", "PROJECT", "BRANCH", "CREATED", "SIZE", "VOLUMES", "CODE", "IMAGES"],
                    res.packages.map((p) =>
                      p.error
                        ? [
                            p.file,
                            "-",
                            "-",
                            "-",
                            formatBytes(p.size),
                            "-",
                            `error ${p.error.code}: ${p.error.message}`,
                            "-",
                          ]
                        : [
                            p.file,
                            p.project ?? "",
                            p.branch ?? "",
                            p.created_at ?? "",
                            formatBytes(p.size),
                            p.volumes.join(",") || "-",
                            p.include_code ? "yes" : "no",
                            p.images.length
                              ? `${p.images.length} (${formatBytes(p.images.reduce((a, i) => a + i.size, 0))} of ${formatBytes(p.images.reduce((a, i) => a + i.image_size, 0))})`
                              : "-",
                          ],
                    ),
                  ),
        ),
      ),
    ["dockpack packages list", "dockpack packages list --package-dir /mnt/backup --json"],
  );

  registerPackageRegistryCommands(packages);

  withExamples(
    packages
      .command("validate <package>")
      .description("verify a package completely (checksums, format version, paths); exit 1 when invalid")
      .option(
        "--allow-special-files",
        "accept device nodes and fifos in volume data, as import would with it",
      )
      .option(
        "--identity <file>",
        "--encrypt-all packages: age identity file to decrypt and check the content too (repeatable; or $DOCKPACK_PASSPHRASE)",
        (v: string, p: string[] = []) => [...p, v],
      )
      .action(
        action(
          async (r, cmd, pkg: string) => {
            await imageLines(); // for the renderer
            const res = await (await import("../env/validate.js")).validatePackage(
              {
                package: pkg,
                allowSpecialFiles: cmd.opts().allowSpecialFiles === true,
                identity: cmd.opts().identity as string[] | undefined,
                passphrase: process.env.DOCKPACK_PASSPHRASE,
              },
              r,
            );
            if (!res.valid) process.exitCode = 1;
            return res;
          },
          (res) =>
            (res.valid
              ? `${res.package}: valid (${formatBytes(res.size)}, format ${res.metadata?.format_version}, ${res.metadata?.volumes.length} volume(s))`
              : `${res.package}: INVALID, ${res.problems.length} problem(s):\n${res.problems.map((p) => `  ${p.code}: ${p.message}`).join("\n")}`) +
            (res.services.length ? `\n  services: ${res.services.join(", ")}` : "") +
            (res.metadata?.volumes.length
              ? `\n  volumes: ${res.metadata.volumes.map((v) => `${v.name} ${formatBytes(v.size)}`).join(", ")}`
              : "") +
            (res.metadata?.images?.length
              ? `\n${imageLines.loaded().renderImageLines(res.metadata.images, formatBytes)}`
              : "") +
            res.warnings.map((w) => `\n  ! ${w}`).join("") +
            (res.encryption?.all
              ? `\n  encrypted (--encrypt-all): ${res.encryption.decrypted ? "content decrypted and checked" : "content not checked without the key"}`
              : ""),
        ),
      ),
    [
      "dockpack packages validate packages/shop-main-20250101T120000Z.dockpack.tar",
      "dockpack packages validate shop.dockpack.tar --json",
    ],
  );

  withExamples(
    packages
      .command("inspect <package>")
      .description(
        "show what a package holds and what its compose files would do (services, volumes, host ports, bind mounts outside the project, privileged/host settings); runs nothing",
      )
      .option(
        "--allow-special-files",
        "accept device nodes and fifos in volume data, as import would with it",
      )
      .option(
        "--identity <file>",
        "--encrypt-all packages: age identity file to decrypt and check the content too (repeatable; or $DOCKPACK_PASSPHRASE)",
        (v: string, p: string[] = []) => [...p, v],
      )
      .action(
        action(
          async (r, cmd, pkg: string) => {
            const res = await (await inspection()).inspectPackage(
              {
                package: pkg,
                allowSpecialFiles: cmd.opts().allowSpecialFiles === true,
                identity: cmd.opts().identity as string[] | undefined,
                passphrase: process.env.DOCKPACK_PASSPHRASE,
              },
              r,
            );
            if (!res.valid) process.exitCode = 1;
            return res;
          },
          (res) => inspection.loaded().renderInspection(res, formatBytes),
        ),
      ),
    [
      "dockpack packages inspect shop-main-20250101T120000Z.dockpack.tar",
      "dockpack packages inspect shop.dockpack.tar --json",
    ],
  );
}

/**
 * Asks on the terminal whether to replace what an import conflicts with. False (no prompt) when
 * stdin or stderr is not a TTY, so scripts and CI never block.
 */
async function confirmReplace(conflictMessage: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `${conflictMessage}\nReplace them (kept aside until the import succeeds)? [y/N] `,
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
