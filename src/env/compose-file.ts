/**
 * The compose project as dockpack needs it, taken from the model compose itself resolved
 * (`docker compose config --format json`, or `docker-compose config` for Compose v1; see
 * core/docker/compose.ts): services, published ports, named volumes, networks — and the
 * per-environment compose file rendered from that model.
 *
 * dockpack keeps no merge or interpolation rules of its own: compose has already applied
 * `.env`, `env_file`, override files, `extends`, `include`, anchors and merge keys, profiles and
 * `${VAR}` interpolation. The per-environment file is the resolved model with only these changes:
 * project name, container names, host ports (every published port and range, host IP kept),
 * named volume and network names given with `name:`, and bind-style `driver_opts` volumes moved
 * to a folder of the environment. It is written as JSON (a subset of YAML that compose v1 and v2
 * both read), so no YAML 1.1/1.2 word (`'no'`, `on`) or tag changes meaning on the way.
 */
import { DockpackError } from "../core/errors.js";

/** One port of a service: host port → container port, as the resolved model states it. */
export interface PublishedPort {
  service: string;
  /** Host port in the resolved model (0 when it is left to Docker: a container-only port). */
  host: number;
  /** Container port. */
  container: number;
  protocol: "tcp" | "udp" | "sctp";
  /** Host IP, when the mapping names one. */
  hostIp?: string;
  /** Key of this port in an environment's port map: `web:80/tcp` (`#2`… for repeats). */
  key: string;
}

/** A named volume whose `driver_opts` bind a host folder (`o: bind`, `device: …`). */
export interface BindVolume {
  /** Logical volume name. */
  name: string;
  /** The host folder the resolved model names. */
  device: string;
}

/** A compose project's resolved model. */
export interface ComposeModel {
  /** The resolved document compose printed. */
  doc: Record<string, unknown>;
  /** Service names, in the model's order. */
  services: string[];
  /** Named volumes declared at top level (logical names), external ones excluded. */
  volumes: string[];
  /** Named volumes declared `external` (shared by every environment; never packaged). */
  externalVolumes: string[];
  /** Networks declared `external` (shared by every environment). */
  externalNetworks: string[];
  /** Named volumes with bind-style `driver_opts` (each environment gets its own folder). */
  bindVolumes: BindVolume[];
  /** Every port of every service: published ones (host ≠ 0) and container-only ones. */
  ports: PublishedPort[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function composeError(file: string, problem: string, hint?: string) {
  return new DockpackError("COMPOSE_INVALID", `${file}: ${problem}`, {
    hint: hint ?? "Check the compose files with 'docker compose config' (or 'docker-compose config').",
  });
}

function range(text: string): [number, number] | null {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!m) return null;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return hi >= lo ? [lo, hi] : null;
}

function protocolOf(p: unknown): "tcp" | "udp" | "sctp" {
  return p === "udp" || p === "sctp" ? p : "tcp";
}

/**
 * Parses one `ports` entry of a resolved model into one port per container port: short syntax
 * (`"8080:80"`, `"127.0.0.1:8080:80/tcp"`, `"[::1]:8080:80"`, `"80"`, ranges
 * `"52000-52100:52000-52100/udp"`) or long syntax (`{target, published, protocol, host_ip}`,
 * `published` a number or string, possibly a range). A host range with one container port
 * (`"8000-8010:80"`) gives one port whose host is the range start.
 * Keys are left empty; {@link modelOf} numbers them.
 * @throws DockpackError `COMPOSE_INVALID` for an entry compose would not have printed
 */
export function parsePortEntry(service: string, entry: unknown, file: string): PublishedPort[] {
  const bad = () => composeError(file, `services.${service}.ports: cannot read '${JSON.stringify(entry)}'`);
  let hostIp: string | undefined;
  let hostText = "";
  let containerText: string;
  let protocol: PublishedPort["protocol"];
  if (isObject(entry)) {
    if (entry.target === undefined) throw bad();
    containerText = String(entry.target);
    hostText = entry.published === undefined || entry.published === null ? "" : String(entry.published);
    protocol = protocolOf(entry.protocol);
    if (typeof entry.host_ip === "string" && entry.host_ip) hostIp = entry.host_ip;
  } else if (typeof entry === "string" || typeof entry === "number") {
    const text = String(entry);
    const [spec, proto = "tcp", ...more] = text.split("/");
    if (more.length || !["tcp", "udp", "sctp"].includes(proto)) throw bad();
    protocol = protocolOf(proto);
    let rest = spec;
    const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(spec);
    if (v6) {
      hostIp = v6[1];
      rest = v6[2];
    }
    const parts = rest.split(":");
    if (!v6 && parts.length === 3) hostIp = parts.shift() || undefined;
    if (parts.length > 2) throw bad();
    containerText = parts.at(-1) as string;
    hostText = parts.length === 2 ? (parts[0] as string) : "";
  } else throw bad();
  const c = range(containerText);
  const h = hostText === "" ? null : range(hostText);
  if (!c || (hostText !== "" && !h)) throw bad();
  const out: PublishedPort[] = [];
  const count = c[1] - c[0] + 1;
  for (let i = 0; i < count; i++) {
    let host = 0;
    if (h) host = h[1] - h[0] + 1 === count ? h[0] + i : h[0];
    out.push({ service, host, container: c[0] + i, protocol, ...(hostIp ? { hostIp } : {}), key: "" });
  }
  return out;
}

/** The key of a port in an environment's port map: `web:80/tcp`. */
export function portKey(p: { service: string; container: number; protocol: string }): string {
  return `${p.service}:${p.container}/${p.protocol}`;
}

/** Every port of `service` in model order, with unique keys (`web:80/tcp`, `web:80/tcp#2`). */
function servicePorts(service: string, def: Record<string, unknown>, label: string): PublishedPort[] {
  if (def.ports === undefined || def.ports === null) return [];
  if (!Array.isArray(def.ports)) throw composeError(label, `services.${service}.ports: not a list`);
  const seen = new Map<string, number>();
  return def.ports.flatMap((e) =>
    parsePortEntry(service, e, label).map((p) => {
      const base = portKey(p);
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      return { ...p, key: n === 1 ? base : `${base}#${n}` };
    }),
  );
}

/** True when a volume definition binds a host folder through the local driver's options. */
function bindDevice(def: unknown): string | null {
  if (!isObject(def) || !isObject(def.driver_opts)) return null;
  if (def.driver !== undefined && def.driver !== "local") return null;
  const o = String(def.driver_opts.o ?? "");
  const device = def.driver_opts.device;
  if (!o.split(",").some((w) => w.trim() === "bind" || w.trim() === "rbind")) return null;
  return typeof device === "string" ? device : null;
}

/**
 * Builds a {@link ComposeModel} from a resolved compose document.
 * @param label names the files in errors
 * @throws DockpackError `COMPOSE_INVALID` when the document has no services or unreadable ports
 */
export function modelOf(doc: Record<string, unknown>, label: string): ComposeModel {
  if (!isObject(doc.services) || Object.keys(doc.services).length === 0)
    throw composeError(label, "no services declared");
  const services = Object.keys(doc.services);
  const volumes: string[] = [];
  const externalVolumes: string[] = [];
  const bindVolumes: BindVolume[] = [];
  for (const [name, def] of Object.entries(isObject(doc.volumes) ? doc.volumes : {})) {
    if (isObject(def) && def.external) externalVolumes.push(name);
    else {
      volumes.push(name);
      const device = bindDevice(def);
      if (device !== null) bindVolumes.push({ name, device });
    }
  }
  const externalNetworks = Object.entries(isObject(doc.networks) ? doc.networks : {})
    .filter(([, def]) => isObject(def) && def.external)
    .map(([name]) => name);
  const ports: PublishedPort[] = [];
  for (const s of services) {
    const def = (doc.services as Record<string, unknown>)[s];
    if (isObject(def)) ports.push(...servicePorts(s, def, label));
  }
  return { doc, services, volumes, externalVolumes, externalNetworks, bindVolumes, ports };
}

/** What makes an environment's compose file its own. */
export interface EnvComposeSettings {
  /** Compose project name, e.g. `shop-feature-x`. */
  composeProject: string;
  /** Host port for each published port's key (see {@link PublishedPort.key}). */
  hostPorts: Record<string, number>;
  /** Host folder of each bind-style `driver_opts` volume (absolute paths). */
  bindFolders?: Record<string, string>;
}

function portSpec(p: PublishedPort, host: number | undefined): string {
  const ip = p.hostIp ? (p.hostIp.includes(":") ? `[${p.hostIp}]:` : `${p.hostIp}:`) : "";
  if (host === undefined || host === 0) return `${ip ? `${ip}:` : ""}${p.container}/${p.protocol}`;
  return `${ip}${host}:${p.container}/${p.protocol}`;
}

/**
 * Renders the per-environment compose file (JSON) from the resolved model: every published port
 * moved to the environment's host port (host IP kept; container-only ports stay container-only),
 * `container_name` made `<composeProject>-<service>`, volumes and networks that carry a `name:`
 * renamed to `<composeProject>_<key>` (external ones untouched), bind-style `driver_opts`
 * volumes pointed at the environment's folder, and a top-level `name:` dropped (`-p` names the
 * project). Everything else is compose's resolved model unchanged.
 */
export function renderEnvCompose(model: ComposeModel, settings: EnvComposeSettings): string {
  const doc = structuredClone(model.doc);
  const cp = settings.composeProject;
  delete doc.name;
  const services = doc.services as Record<string, Record<string, unknown>>;
  for (const [name, def] of Object.entries(services)) {
    if (!isObject(def)) continue;
    if (def.container_name !== undefined) def.container_name = `${cp}-${name}`;
    if (Array.isArray(def.ports))
      def.ports = servicePorts(name, def, "compose").map((p) =>
        portSpec(p, p.host === 0 ? 0 : settings.hostPorts[p.key]),
      );
  }
  for (const section of ["volumes", "networks"] as const) {
    const defs = doc[section];
    if (!isObject(defs)) continue;
    for (const [name, def] of Object.entries(defs)) {
      if (!isObject(def) || def.external) continue;
      if (def.name !== undefined) def.name = `${cp}_${name}`;
      const folder = section === "volumes" ? settings.bindFolders?.[name] : undefined;
      if (folder && bindDevice(def) !== null) (def.driver_opts as Record<string, unknown>).device = folder;
    }
  }
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Container ports that mark a web service when the config names none. */
export const WEB_PORTS = [80, 443, 3000, 8000, 8080];

/** True when a port is published on all interfaces (no host IP, `0.0.0.0` or `::`). */
export function onAllInterfaces(p: { hostIp?: string }): boolean {
  return !p.hostIp || p.hostIp === "0.0.0.0" || p.hostIp === "::";
}

/**
 * The web port when the config names none: among the ports published on all interfaces (no host
 * IP, `0.0.0.0` or `::`; container-only ports count, Docker publishes them on an ephemeral host
 * port), the first whose container port is 80, then 443, 3000, 8000, 8080 (in that order), in
 * model order of the services. A worker's localhost-only port is never picked.
 */
export function guessWebPort(ports: PublishedPort[]): PublishedPort | undefined {
  for (const web of WEB_PORTS) {
    const hit = ports.find((p) => p.protocol === "tcp" && p.container === web && onAllInterfaces(p));
    if (hit) return hit;
  }
  return undefined;
}
