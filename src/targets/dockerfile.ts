/**
 * A small Dockerfile reader for checks: instructions with their line numbers, continuation lines
 * joined, comments dropped, and `ARG` defaults substituted into `FROM` (Dockerfile reference,
 * "Understand how ARG and FROM interact").
 */

/** One Dockerfile instruction. */
export interface Instruction {
  /** Upper-case keyword, e.g. `FROM`. */
  keyword: string;
  /** The rest of the instruction, continuation lines joined by a space. */
  args: string;
  /** 1-based line where it starts. */
  line: number;
}

/** Splits Dockerfile text into instructions (escape character `\`). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let current: Instruction | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmed = raw.trim();
    if (current === null) {
      if (trimmed === "" || trimmed.startsWith("#")) continue;
      const m = /^(\S+)\s*(.*)$/.exec(trimmed);
      if (!m) continue;
      current = { keyword: m[1].toUpperCase(), args: m[2], line: i + 1 };
    } else {
      if (trimmed.startsWith("#")) continue;
      current.args += ` ${trimmed}`;
    }
    if (current.args.endsWith("\\")) {
      current.args = current.args.slice(0, -1).trimEnd();
      continue;
    }
    out.push(current);
    current = null;
  }
  if (current) out.push(current);
  return out;
}

/**
 * The base images of each stage, with global `ARG` defaults (those before the first FROM)
 * substituted and `--build-arg` values applied. Stage names (`FROM deps`) are reported as
 * `stage: true`.
 */
export function baseImages(
  instructions: Instruction[],
  buildArgs: Record<string, string> = {},
): { image: string; line: number; stage: boolean }[] {
  const args: Record<string, string> = {};
  const stages = new Set<string>();
  const out: { image: string; line: number; stage: boolean }[] = [];
  let seenFrom = false;
  for (const ins of instructions) {
    if (ins.keyword === "ARG" && !seenFrom) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.args.trim());
      if (m) args[m[1]] = buildArgs[m[1]] ?? (m[2] ?? "").replace(/^"(.*)"$/, "$1");
    }
    if (ins.keyword === "FROM") {
      seenFrom = true;
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith("--"));
      const image = (words[0] ?? "").replace(
        /\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g,
        (_, n: string) => args[n] ?? "",
      );
      out.push({ image, line: ins.line, stage: stages.has(image.toLowerCase()) });
      const asIdx = words.findIndex((w) => w.toLowerCase() === "as");
      if (asIdx > 0 && words[asIdx + 1]) stages.add(words[asIdx + 1].toLowerCase());
    }
  }
  return out;
}

/** True when an image reference carries a tag other than `latest`, or a digest. */
export function isPinned(image: string): boolean {
  if (image.includes("@sha256:")) return true;
  const lastSlash = image.lastIndexOf("/");
  const colon = image.indexOf(":", lastSlash + 1);
  if (colon < 0) return image === "scratch";
  return image.slice(colon + 1) !== "latest";
}
