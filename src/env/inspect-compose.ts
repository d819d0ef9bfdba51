/**
 * What the compose files inside a package would do when `env up` runs them, read from the
 * packaged YAML text only (the `yaml` library, read-only: nothing is executed, no variable is
 * interpolated, compose is not called). Reported per service: host ports, bind mounts whose
 * source leaves the project folder (absolute, `~`, `..` above the root, or a `$` variable that
 * could be anything), `privileged`, `network_mode`/`pid`/`ipc`/`userns_mode: host`, added
 * capabilities and devices; plus the project's external volumes. The compose spec
 * (compose-spec.io) defines these keys; both short and long syntax are read.
 */
import { posix } from "node:path";
import { parse } from "yaml";

/** One service of a packaged compose file, as far as it matters to the importer. */
export interface InspectedService {
  name: string;
  /** The compose file (path in the worktree) that defines it. */
  file: string;
  image: string | null;
  build: boolean;
  /** Published host ports, e.g. `8080:80`, `127.0.0.1:5432:5432/tcp`. */
  host_ports: string[];
  /** Bind-mount sources that point outside the project folder (as written). */
  bind_mounts_outside: string[];
  privileged: boolean;
  /** `network_mode`, `pid`, `ipc`, `userns_mode` set to `host` (e.g. `network_mode: host`). */
  host_namespaces: string[];
  cap_add: string[];
  devices: string[];
}

/** The compose side of a package inspection. */
export interface InspectedCompose {
  services: InspectedService[];
  /** External volumes declared at the top level (their names on the engine). */
  external_volumes: string[];
  /** Compose files named by the config but absent, or unreadable YAML: `file: reason`. */
  unreadable: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);

/** True when a bind source (relative to the folder `dir` of its compose file) leaves the project. */
function outside(source: string, dir: string): boolean {
  if (source.includes("$") || source.startsWith("~") || source.startsWith("/")) return true;
  const resolved = posix.normalize(posix.join(dir, source));
  return resolved === ".." || resolved.startsWith("../");
}

function bindSources(service: Obj): string[] {
  const out: string[] = [];
  for (const v of Array.isArray(service.volumes) ? service.volumes : []) {
    if (typeof v === "string") {
      const src = v.split(":")[0];
      if (src.startsWith(".") || src.startsWith("/") || src.startsWith("~") || src.startsWith("$"))
        out.push(src);
    } else if (isObj(v) && v.type === "bind" && typeof v.source === "string") out.push(v.source);
  }
  return out;
}

function hostPorts(service: Obj): string[] {
  const out: string[] = [];
  for (const p of Array.isArray(service.ports) ? service.ports : []) {
    if (typeof p === "number") continue;
    if (typeof p === "string") {
      if (p.split("/")[0].includes(":")) out.push(p);
    } else if (isObj(p) && p.published !== undefined && p.published !== null && p.published !== "")
      out.push(
        `${p.host_ip ? `${p.host_ip}:` : ""}${p.published}:${p.target}${p.protocol ? `/${p.protocol}` : ""}`,
      );
  }
  return out;
}

/**
 * Reads the compose files `files` (paths in the worktree) from `texts` (path → YAML text).
 * Never throws: unreadable files are listed in `unreadable`.
 */
export function inspectComposeTexts(files: string[], texts: Map<string, string>): InspectedCompose {
  const services: InspectedService[] = [];
  const external = new Set<string>();
  const unreadable: string[] = [];
  for (const file of files) {
    const text = texts.get(file);
    if (text === undefined) {
      unreadable.push(`${file}: not in the package`);
      continue;
    }
    let doc: unknown;
    try {
      doc = parse(text, { maxAliasCount: 100, prettyErrors: false });
    } catch (err) {
      unreadable.push(`${file}: ${(err as Error).message.split("\n")[0]}`);
      continue;
    }
    if (!isObj(doc)) continue;
    const dir = posix.dirname(file);
    for (const [name, raw] of Object.entries(isObj(doc.services) ? doc.services : {})) {
      const s = isObj(raw) ? raw : {};
      const namespaces = ["network_mode", "pid", "ipc", "userns_mode"]
        .filter((k) => s[k] === "host")
        .map((k) => `${k}: host`);
      services.push({
        name,
        file,
        image: typeof s.image === "string" ? s.image : null,
        build: s.build !== undefined,
        host_ports: hostPorts(s),
        bind_mounts_outside: bindSources(s).filter((src) => outside(src, dir)),
        privileged: s.privileged === true,
        host_namespaces: namespaces,
        cap_add: strings(s.cap_add),
        devices: strings(s.devices),
      });
    }
    for (const [name, raw] of Object.entries(isObj(doc.volumes) ? doc.volumes : {})) {
      if (!isObj(raw) || !raw.external) continue;
      const ext = raw.external;
      external.add(
        isObj(ext) && typeof ext.name === "string"
          ? ext.name
          : typeof raw.name === "string"
            ? raw.name
            : name,
      );
    }
  }
  return { services, external_volumes: [...external].sort(), unreadable };
}

/** One line per setting an importer should know about before `env up` runs it. */
export function composeWarnings(c: InspectedCompose): string[] {
  const out: string[] = [];
  for (const s of c.services) {
    const where = `service '${s.name}' (${s.file})`;
    if (s.privileged) out.push(`${where} runs privileged`);
    for (const n of s.host_namespaces) out.push(`${where} uses ${n}`);
    for (const b of s.bind_mounts_outside)
      out.push(
        b.includes("$")
          ? `${where} bind-mounts '${b}', from a variable: not interpolated here, its value may point outside the project folder`
          : `${where} bind-mounts '${b}', outside the project folder`,
      );
    for (const p of s.host_ports)
      out.push(`${where} publishes host port ${p} (as written in the compose file)`);
    if (s.cap_add.length) out.push(`${where} adds capabilities ${s.cap_add.join(", ")}`);
    if (s.devices.length) out.push(`${where} maps host devices ${s.devices.join(", ")}`);
  }
  for (const v of c.external_volumes)
    out.push(`external volume '${v}' (not created by dockpack; the engine's existing one is used)`);
  for (const u of c.unreadable) out.push(`compose file ${u}`);
  return out;
}
