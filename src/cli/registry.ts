/**
 * `dockpack login` / `dockpack logout`: registry credentials in the docker config, shared with
 * `docker login`. Also the registry flags (`--ca-file`, `--insecure`) other groups reuse.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { login, logout } from "../core/oci/login.js";
import type { RegistryOptions } from "../core/oci/transport.js";
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
            async (_r, _cmd, registry: string) => logout(registry),
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
