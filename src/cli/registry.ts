/**
 * `dockpack login` / `dockpack logout`: registry credentials in the docker config, shared with
 * `docker login`. Also the registry flags (`--ca-file`, `--insecure`) other groups reuse.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { RegistryOptions } from "../core/oci/transport.js";
import { formatBytes, formatTable } from "../core/output.js";
import type { listRemotePackages } from "../env/registry.js";
import type { PushedImages } from "../env/registry-images.js";

type RemoteList = Awaited<ReturnType<typeof listRemotePackages>>;

import { action, withExamples } from "./common.js";
import type { GroupModule } from "./groups.js";

/** Adds `--ca-file` and `--insecure` to a command that talks to a registry. */
export function addRegistryOptions(cmd: Command): Command {
  return cmd
    .option("--ca-file <pem>", "also trust this CA bundle for the registry's TLS certificate")
    .option("--insecure", "allow plain HTTP and unverified TLS (always allowed for localhost/127.0.0.1)");
}

/** Reads the registry flags of a command into client options. */
export function registryOptions(o: { caFile?: string; insecure?: boolean }): RegistryOptions {
  return { caFile: o.caFile, insecure: Boolean(o.insecure) };
}

/** `dockpack login`. */
export const loginGroup: GroupModule = {
  register(program: Command): void {
    withExamples(
      addRegistryOptions(
        program
          .command("login <registry>")
          .description(
            "check credentials for a registry and store them in ~/.docker/config.json (as docker login)",
          )
          .option("-u, --username <user>", "user name")
          .option("-p, --password <password>", "password or token (prefer --password-stdin)")
          .option("--password-stdin", "read the password from stdin"),
      ).action(
        action(
          async (r, cmd, registry: string) => {
            const o = cmd.opts();
            const password = o.passwordStdin
              ? readFileSync(0, "utf8").replace(/\r?\n$/, "")
              : (o.password ?? "");
            const { login } = await import("../core/oci/login.js");
            const res = await login({
              registry,
              username: o.username ?? "",
              password,
              ...registryOptions(o),
              reporter: r,
            });
            return res;
          },
          (res) => `Login succeeded: ${res.username} at ${res.registry} (stored in ${res.storedIn})`,
        ),
      ),
      [
        'echo "$TOKEN" | dockpack login ghcr.io -u alice --password-stdin',
        "dockpack login 127.0.0.1:5000 -u bob -p secret --ca-file ca.pem",
      ],
    );
  },
};

/** `dockpack logout`. */
export const logoutGroup: GroupModule = {
  register(program: Command): void {
    withExamples(
      program
        .command("logout <registry>")
        .description("remove a registry's stored credentials")
        .action(
          action(
            async (_r, _cmd, registry: string) => (await import("../core/oci/login.js")).logout(registry),
            (res) =>
              res.removed
                ? `Removed credentials for ${res.registry}`
                : `No credentials stored for ${res.registry}`,
          ),
        ),
      ["dockpack logout ghcr.io"],
    );
  },
};

/** Lines for the images a push sent as ordinary images (registry-images.ts). */
export function renderPushedImages(images: PushedImages | undefined): string {
  if (!images) return "";
  return (
    images.images
      .map(
        (i) =>
          `\n  image ${i.tag ?? i.manifest} ${i.id.slice(7, 19)} (${i.services.map((s) => s.service).join(", ")})`,
      )
      .join("") +
    (images.images.length ? `\n  images: sent ${formatBytes(images.uploadedBytes)}` : "") +
    images.skipped.map((s) => `\n  image ${s.id.slice(7, 19)} not pushed: ${s.reason}`).join("")
  );
}

/** Adds `packages push` and `packages pull` to the `packages` group. */
export function registerPackageRegistryCommands(packages: Command): void {
  withExamples(
    addRegistryOptions(
      packages
        .command("push <package> <reference>")
        .description("push a package file to an OCI registry (volumes the registry has are not sent again)")
        .option("--chunk-size <mib>", "upload blobs larger than this in resumable chunks (MiB)", "16")
        .option("--sign <key>", "attach an SSH signature (ssh-keygen -Y sign) made with this private key")
        .option(
          "--no-images",
          "do not push the package's images as ordinary images next to it (<tag>-image-<n>)",
        ),
    ).action(
      action(
        async (r, cmd, pkg: string, reference: string) => {
          const o = cmd.opts();
          const { pushPackage } = await import("../env/registry.js");
          return pushPackage(
            {
              package: pkg,
              reference,
              chunkSize: Number(o.chunkSize) * 1024 * 1024,
              sign: o.sign,
              images: o.images !== false,
              ...registryOptions(o),
            },
            r,
          );
        },
        (res) =>
          `pushed ${res.reference}@${res.digest}\n  sent ${formatBytes(res.uploadedBytes)} of ${formatBytes(res.totalBytes)} (${res.existing} blob(s) already there), ${res.seconds.toFixed(1)} s` +
          renderPushedImages(res.images),
      ),
    ),
    [
      "dockpack packages push packages/shop-main-20250101T120000Z.dockpack.tar ghcr.io/acme/shop-env:main",
      "dockpack packages push shop.dockpack.tar 127.0.0.1:5000/shop:review --json",
    ],
  );
  withExamples(
    addRegistryOptions(
      packages
        .command("pull <reference>")
        .description("pull a package from an OCI registry into the identical package file (verified)")
        .option("-o, --output-dir <dir>", "where to write the package", "./packages")
        .option(
          "--verify-key <pub>",
          "refuse the package unless it carries an SSH signature by this public key",
        ),
    ).action(
      action(
        async (r, cmd, reference: string) => {
          const o = cmd.opts();
          const { pullPackage } = await import("../env/registry.js");
          return pullPackage(
            { reference, outputDir: o.outputDir, verifyKey: o.verifyKey, ...registryOptions(o) },
            r,
          );
        },
        (res) =>
          `${res.package}\n  ${formatBytes(res.size)} from ${res.reference}@${res.digest}, ${res.seconds.toFixed(1)} s`,
      ),
    ),
    [
      "dockpack packages pull ghcr.io/acme/shop-env:main",
      "dockpack packages pull 127.0.0.1:5000/shop:review -o /tmp/in",
    ],
  );
}

/** Text of `packages list REPOSITORY`. */
export function renderRemoteList(res: RemoteList): string {
  if (res.packages.length === 0) return `no packages in ${res.repository}`;
  return formatTable(
    ["TAG", "PROJECT", "BRANCH", "CREATED", "SIZE", "VOLUMES"],
    res.packages.map((p) =>
      p.error
        ? [p.tag, "-", "-", "-", "-", `error ${p.error.code}`]
        : [
            p.tag,
            p.project ?? "",
            p.branch ?? "",
            p.created_at ?? "",
            formatBytes(p.size ?? 0),
            p.volumes?.join(",") || "-",
          ],
    ),
  );
}

/** Adds `features publish` and `features info` to the `features` group. */
export function registerFeatureRegistryCommands(group: Command): void {
  withExamples(
    addRegistryOptions(
      group
        .command("publish")
        .description(
          "package features and publish them with the collection metadata to an OCI registry, as `devcontainer features publish` does (tags X, X.Y, X.Y.Z, latest moved only forward)",
        )
        .argument("[target]", "feature folder, collection folder or repository root", ".")
        .requiredOption("-r, --registry <host>", "registry host, e.g. ghcr.io")
        .requiredOption("-n, --namespace <path>", "namespace, e.g. acme/features"),
    ).action(
      action(
        async (r, cmd, target: string) => {
          const o = cmd.opts();
          const { publishFeatures } = await import("../features/publish.js");
          return publishFeatures(
            { target, registry: o.registry, namespace: o.namespace, ...registryOptions(o) },
            r,
          );
        },
        (res) =>
          formatTable(
            ["FEATURE", "VERSION", "TAGS", "DIGEST"],
            res.features.map((f) => [
              f.id,
              f.version,
              f.publishedTags.join(",") || "(exists)",
              f.digest ?? "-",
            ]),
          ) + `\ncollection: ${res.registry}/${res.namespace}:latest@${res.collectionDigest}`,
      ),
    ),
    [
      "dockpack features publish src --registry ghcr.io --namespace acme/features",
      "dockpack features publish . -r 127.0.0.1:5000 -n team/features --json",
    ],
  );
  withExamples(
    addRegistryOptions(
      group
        .command("info <reference>")
        .description(
          "show a published feature's manifest, tags and metadata (works for the devcontainer CLI's too)",
        ),
    ).action(
      action(
        async (_r, cmd, reference: string) => {
          const { featureInfo } = await import("../features/publish.js");
          return featureInfo({ reference, ...registryOptions(cmd.opts()) });
        },
        (res) =>
          `${res.canonicalId}\n  tags: ${res.publishedTags.join(", ")}` +
          (res.metadata ? `\n  ${res.metadata.id} ${res.metadata.version}: ${res.metadata.name ?? ""}` : ""),
      ),
    ),
    ["dockpack features info ghcr.io/devcontainers/features/node:1"],
  );
}

/** Adds `delta push` and `delta pull` (a delta package as a one-layer OCI artifact) to `delta`. */
export function registerDeltaRegistryCommands(delta: Command): void {
  withExamples(
    addRegistryOptions(
      delta
        .command("push <package> <reference>")
        .description("push a delta package file to an OCI registry as an artifact (checked first)")
        .option("--chunk-size <mib>", "upload a file larger than this in resumable chunks (MiB)", "16"),
    ).action(
      action(
        async (r, cmd, pkg: string, reference: string) => {
          const o = cmd.opts();
          const { pushDelta } = await import("../delta/registry.js");
          return pushDelta(
            { package: pkg, reference, chunkSize: Number(o.chunkSize) * 1024 * 1024, ...registryOptions(o) },
            r,
          );
        },
        (res) =>
          `pushed ${res.reference}@${res.digest}\n  sent ${formatBytes(res.uploadedBytes)} of ${formatBytes(res.size)}, ${res.seconds.toFixed(1)} s`,
      ),
    ),
    ["dockpack delta push app-1-to-2.dpd registry.example/app/delta:1-to-2"],
  );
  withExamples(
    addRegistryOptions(
      delta
        .command("pull <reference>")
        .description("pull a delta package artifact into a file (verified by digest and by the delta reader)")
        .requiredOption("-o, --output <file>", "the delta package file to write")
        .option("-f, --force", "replace an existing file"),
    ).action(
      action(
        async (r, cmd, reference: string) => {
          const o = cmd.opts();
          const { pullDelta } = await import("../delta/registry.js");
          return pullDelta(
            { reference, output: o.output, force: Boolean(o.force), ...registryOptions(o) },
            r,
          );
        },
        (res) => `pulled ${res.reference}@${res.digest} into ${res.output} (${formatBytes(res.size)})`,
      ),
    ),
    ["dockpack delta pull registry.example/app/delta:1-to-2 -o app-1-to-2.dpd"],
  );
}
