/**
 * The compose side of a verified package (used by inspect, validate and import): which compose
 * files the packaged `.dockpack/config.yml` names, and what they would do (inspect-compose.ts).
 * Apart from inspect.ts so that `packages inspect`, whose answer comes from the parse cache of the
 * installed command when it saw the same texts before, loads neither the YAML parser nor zod.
 */
import { CONFIG_FILE, parseEnvConfigText } from "./config.js";
import { type InspectedCompose, inspectComposeTexts } from "./inspect-compose.js";
import type { VerifyResult } from "./package-reader.js";

/**
 * The compose files of a verified package and their inspection: the files `compose_files` of the
 * packaged config names, else every packaged `compose*.yml` / `docker-compose*.yml`. Never throws:
 * an unreadable config falls back to the file names.
 */
export function inspectVerified(res: VerifyResult): { files: string[]; compose: InspectedCompose } {
  let files: string[] = [];
  if (res.configText !== null) {
    try {
      files = parseEnvConfigText(res.configText, `package:environment/${CONFIG_FILE}`).compose_files;
    } catch {
      files = [];
    }
  }
  if (files.length === 0)
    files = [...res.environmentTexts.keys()].filter((f) => /(^|\/)(docker-)?compose[^/]*\.ya?ml$/.test(f));
  return { files, compose: inspectComposeTexts(files, res.environmentTexts) };
}
