/**
 * Compose files as dockpack needs them: the services (image, published ports, container_name)
 * and the named volumes of a compose project, and the per-environment compose file that gives an
 * environment its own host ports, container names and volume names.
 *
 * Follows the Compose file format (compose-spec; docker-compose v1 1.29 reads versions 2.x/3.x).
 * docker-compose *concatenates* `ports` across `-f` files, so an override file cannot replace a
 * published port; dockpack therefore writes one resolved file per environment
 * (`.dockpack/compose.yml` in the worktree) and runs compose with `--project-directory` set to the
 * worktree so relative paths keep their meaning.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import YAML from "yaml";
import { DockpackError } from "../core/errors.js";

/** One published port of a service: host port → container port. */
export interface PublishedPort {
  service: string;
  /** Host port in the source compose file (0 when it was left to Docker). */
  host: number;
  /** Container port. */
  container: number;
  protocol: "tcp" | "udp";
  /** Host IP, when the mapping names one. */
  hostIp?: string;
}

/** A compose project's model as read from its files. */
export interface ComposeModel {
  /** The merged document (later files override earlier ones key by key; lists replaced). */
  doc: Record<string, unknown>;
  /** Service names, in file order. */
  services: string[];
  /** Named volumes declared at top level (logical names), external ones excluded. */
  volumes: string[];
  /** Named volumes declared `external: true` (shared by every environment; never packaged). */
  externalVolumes: string[];
  /** Published ports of every service. */
  ports: PublishedPort[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b))
    out[k] = isObject(v) && isObject(out[k]) ? merge(out[k] as never, v) : v;
  return out;
}

/**
 * Parses one `ports` entry (short syntax `"8080:80"`, `"127.0.0.1:8080:80/tcp"`, `"80"`, or the
 * long syntax `{target, published, protocol, host_ip}`).
 * @throws DockpackError `COMPOSE_INVALID` for a port range or an unreadable entry
 */
export function parsePortEntry(service: string, entry: unknown, file: string): PublishedPort | null {
  if (isObject(entry)) {
    const container = Number(entry.target);
    if (!Number.isInteger(container))
      throw composeError(file, `services.${service}.ports: entry without a target`);
    const published = entry.published === undefined ? 0 : Number(entry.published);
    return {
      service,
      host: Number.isInteger(published) ? published : 0,
      container,
      protocol: entry.protocol === "udp" ? "udp" : "tcp",
      ...(typeof entry.host_ip === "string" ? { hostIp: entry.host_ip } : {}),
    };
  }
  const text = String(entry);
  const bad = () =>
    composeError(file, `services.${service}.ports: '${text}' is not supported (port ranges are not)`, {
      hint: "Publish single ports ('HOST:CONTAINER').",
    });
  const [spec, proto = "tcp", ...more] = text.split("/");
  if (more.length || (proto !== "tcp" && proto !== "udp")) throw bad();
  let hostIp: string | undefined;
  let rest = spec;
  const v6 = /^\[([0-9a-fA-F:]+)\]:(.*)$/.exec(spec);
  if (v6) {
    hostIp = v6[1];
    rest = v6[2];
  }
  const parts = rest.split(":");
  if (!v6 && parts.length === 3) hostIp = parts.shift();
  if (parts.length > 2 || !parts.every((p) => /^\d+$/.test(p))) throw bad();
  const container = Number(parts.at(-1));
  const host = parts.length === 2 ? Number(parts[0]) : 0;
  return { service, host, container, protocol: proto as "tcp" | "udp", ...(hostIp ? { hostIp } : {}) };
}

function composeError(file: string, problem: string, opts: { hint?: string; cause?: unknown } = {}) {
  return new DockpackError("COMPOSE_INVALID", `${file}: ${problem}`, {
    hint: opts.hint ?? "Check the compose file with 'docker-compose config'.",
    cause: opts.cause,
  });
}

/**
 * Reads and merges the compose files `files` (relative to `root`).
 * @throws DockpackError `COMPOSE_MISSING` when a file does not exist, `COMPOSE_INVALID` when one
 *   is not YAML or lacks `services`
 */
export async function readComposeModel(root: string, files: string[]): Promise<ComposeModel> {
  let doc: Record<string, unknown> = {};
  for (const f of files) {
    const path = join(root, f);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        throw new DockpackError("COMPOSE_MISSING", `Compose file ${path} does not exist.`, {
          hint: "Check compose_files in .dockpack/config.yml.",
        });
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = YAML.parse(text);
    } catch (err) {
      throw composeError(path, `not valid YAML: ${(err as Error).message}`, { cause: err });
    }
    if (!isObject(parsed)) throw composeError(path, "not a mapping");
    doc = merge(doc, parsed);
  }
  return modelOf(doc, files.join(", "));
}

/** Builds a {@link ComposeModel} from a merged compose document. */
export function modelOf(doc: Record<string, unknown>, label: string): ComposeModel {
  if (!isObject(doc.services) || Object.keys(doc.services).length === 0)
    throw composeError(label, "no services declared");
  const services = Object.keys(doc.services);
  const volumes: string[] = [];
  const externalVolumes: string[] = [];
  for (const [name, def] of Object.entries(isObject(doc.volumes) ? doc.volumes : {})) {
    if (isObject(def) && def.external) externalVolumes.push(name);
    else volumes.push(name);
  }
  const ports: PublishedPort[] = [];
  for (const s of services) {
    const def = (doc.services as Record<string, unknown>)[s];
    if (!isObject(def) || def.ports === undefined) continue;
    if (!Array.isArray(def.ports)) throw composeError(label, `services.${s}.ports: not a list`);
    for (const p of def.ports) {
      const parsed = parsePortEntry(s, p, label);
      if (parsed) ports.push(parsed);
    }
  }
  return { doc, services, volumes, externalVolumes, ports };
}

/** What makes an environment's compose file its own. */
export interface EnvComposeSettings {
  /** Compose project name, e.g. `shop-feature-x`. */
  composeProject: string;
  /** Host port for each `service:container/protocol` key. */
  hostPorts: Record<string, number>;
}

/** The key of a published port in {@link EnvComposeSettings.hostPorts}: `web:80/tcp`. */
export function portKey(p: { service: string; container: number; protocol: string }): string {
  return `${p.service}:${p.container}/${p.protocol}`;
}

/**
 * Renders the per-environment compose file: the merged model with every published port moved to
 * the environment's host port, `container_name` made `<composeProject>-<service>`, and volumes
 * with an explicit `name:` renamed to `<composeProject>_<volume>`; everything else unchanged.
 */
export function renderEnvCompose(model: ComposeModel, settings: EnvComposeSettings): string {
  const doc = structuredClone(model.doc);
  const services = doc.services as Record<string, Record<string, unknown>>;
  for (const [name, def] of Object.entries(services)) {
    if (!isObject(def)) continue;
    if (def.container_name !== undefined) def.container_name = `${settings.composeProject}-${name}`;
    if (Array.isArray(def.ports)) {
      def.ports = def.ports.map((entry) => {
        const p = parsePortEntry(name, entry, "compose");
        if (!p) return entry;
        const host = settings.hostPorts[portKey(p)];
        if (host === undefined) return entry;
        return `${p.hostIp ? `${p.hostIp}:` : ""}${host}:${p.container}/${p.protocol}`;
      });
    }
  }
  if (isObject(doc.volumes)) {
    for (const [name, def] of Object.entries(doc.volumes)) {
      if (isObject(def) && !def.external && def.name !== undefined)
        def.name = `${settings.composeProject}_${name}`;
    }
  }
  return `# Written by dockpack for compose project ${settings.composeProject}; do not edit.\n${YAML.stringify(doc)}`;
}
