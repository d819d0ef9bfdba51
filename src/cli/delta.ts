/**
 * `dockpack delta …`: image delta transfer (create, apply, list, info, inventory). Flags become
 * the options of the library functions in src/delta; results print as text or, under --json,
 * as the result object.
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { CODECS } from "../core/codec.js";
import { DockpackError } from "../core/errors.js";
import { formatBytes, formatTable, type Reporter } from "../core/output.js";
import type { ApplyDeltaResult, CreateDeltaResult, DeltaInfo } from "../delta/index.js";
import { action, lazy, withExamples } from "./common.js";
import { registerDeltaRegistryCommands } from "./registry.js";

/** The delta library, imported when a command runs (not for --help). */
const lib = lazy(() => import("../delta/index.js"));
/** Only the metadata reader, for `delta list` and `delta info` (start-up: no create/apply code). */
const metadataReader = lazy(() => import("../delta/info.js"));

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Parses `-l`: a whole number written in decimal (`9`, `-5`), nothing else (`1.5`, `0x10`, `1e1`). */
function parseLevel(value: string): number {
  if (!/^-?[0-9]{1,3}$/.test(value.trim())) {
    throw new InvalidArgumentError(
      `'${value}' is not a whole number (use 1–9; zstd: 1–22, or -1 to -100 for the fast levels).`,
    );
  }
  return Number(value);
}

/**
 * `-` as the output means the archive goes to standard output (as `docker save -o -`): then
 * `--json` is refused (stdout holds the archive) and the summary is logged on stderr.
 */
function checkStdoutOutput(c: Command, output: string | undefined): boolean {
  if (output !== "-") return false;
  if (c.optsWithGlobals().json) {
    throw new DockpackError(
      "USAGE_CONFLICT",
      "--json and an output of '-' (standard output) exclude each other.",
      {
        usage: true,
        hint: "Write the archive to a file, or drop --json.",
      },
    );
  }
  if (process.stdout.isTTY) {
    throw new DockpackError("USAGE_CONFLICT", "Refusing to write an archive to a terminal.", {
      usage: true,
      hint: "Redirect standard output to a file or a pipe, or give a file name.",
    });
  }
  return true;
}

/** With -v, per-layer decisions (logged at debug) are shown at info. */
function verbose(reporter: Reporter, on: boolean): Reporter {
  return on ? { ...reporter, debug: (m: string) => reporter.info(m) } : reporter;
}

const pct = (f: number | undefined) =>
  f === undefined ? "not measured" : `${(f * 100).toFixed(f < 0.01 ? 3 : 1)}%`;

function renderCreate(r: CreateDeltaResult): string {
  const md = r.metadata;
  const rows = md.layers.map((l) => [
    l.index,
    l.diffId.slice(0, 19),
    formatBytes(l.size),
    lib.loaded().describeShip(l),
    l.memberSize === undefined ? "0 B" : `${r.estimated ? "≤ " : ""}${formatBytes(l.memberSize)}`,
  ]);
  const head = r.dryRun
    ? `Dry run: would write ${r.output} (about ${formatBytes(r.packageSize)}; sizes are upper bounds, delta sizes are known only when created)`
    : `Wrote ${r.output}: ${formatBytes(r.packageSize)} for an image of ${formatBytes(md.totals.imageSize)}`;
  const save = `docker save ≈ ${formatBytes(md.totals.dockerSaveSize)} (package ${pct(r.packageSize / md.totals.dockerSaveSize)})`;
  const gz = md.totals.dockerSaveGzipSize
    ? `, docker save | gzip ${formatBytes(md.totals.dockerSaveGzipSize)} (package ${pct(r.packageSize / md.totals.dockerSaveGzipSize)})`
    : "";
  const why = md.layers.flatMap((l) => (l.methodReason ? [`layer ${l.index}: ${l.methodReason}`] : []));
  return `${formatTable(["#", "DIFF_ID", "SIZE", "SHIPS AS", "BYTES"], rows)}\n${why.map((w) => `${w}\n`).join("")}${head}\n${save}${gz}`;
}

function renderInfo(i: DeltaInfo): string {
  const lines: [string, string][] = [
    [
      "package",
      `${i.package} (format ${i.formatVersion}, dockpack ${i.dockpackVersion}, created ${i.created})`,
    ],
    [
      "image",
      `${i.source.repoTags.join(", ") || "(untagged)"} ${i.source.id} ${i.source.os ?? "?"}/${i.source.architecture ?? "?"}`,
    ],
    [
      "bases",
      i.bases.map((b) => `${b.repoTags[0] ?? b.id ?? b.ref} (${b.kind}, ${b.layers} layers)`).join("; ") ||
        "none",
    ],
    [
      "method",
      `${i.method}, compression ${i.compression}${i.level !== undefined ? ` level ${i.level}` : ""}`,
    ],
    [
      "layers",
      `${i.layers.total}: ${i.layers.reused} reused, ${i.layers.delta} delta, ${i.layers.full} full, ${i.layers.duplicate} duplicate`,
    ],
    ["image size", formatBytes(i.imageSize)],
    ["package size", formatBytes(i.packageSize)],
    ["vs docker save", `${formatBytes(i.dockerSaveSize)} → ${pct(i.fractionOfDockerSave)}`],
    [
      "vs save | gzip",
      i.dockerSaveGzipSize
        ? `${formatBytes(i.dockerSaveGzipSize)} → ${pct(i.fractionOfDockerSaveGzip)}`
        : "not measured",
    ],
  ];
  return lines.map(([k, v]) => `${`${k}:`.padEnd(16)}${v}`).join("\n");
}

function renderApply(r: ApplyDeltaResult): string {
  if (r.dryRun)
    return (
      `Dry run: the package checks out and every base layer was found; would ${r.output ? `write ${r.output}` : "load"} ${r.imageId}${r.tags.length ? ` as ${r.tags.join(", ")}` : ""}\n` +
      `layers: ${r.layers.total} (${r.layers.fromBase} from base, ${r.layers.fromDelta} from deltas, ${r.layers.fromFull} from the package), image ${formatBytes(r.imageSize)}`
    );
  return (
    `${r.loaded ? "Loaded" : `Wrote ${r.output}:`} ${r.imageId}${r.tags.length ? ` as ${r.tags.join(", ")}` : ""}\n` +
    `layers: ${r.layers.total} (${r.layers.fromBase} from base, ${r.layers.fromDelta} rebuilt from deltas, ${r.layers.fromFull} from the package), image ${formatBytes(r.imageSize)}`
  );
}

/** Adds `delta` and its subcommands to the root program. */
export function register(program: Command): void {
  const delta = program
    .command("delta")
    .description(
      "ship only the image layers a target lacks, as binary deltas, and rebuild the identical image",
    );
  withExamples(delta, [
    "dockpack delta create --base app:1 app:2 app-1-to-2.dpd",
    "dockpack delta apply app-1-to-2.dpd",
    "dockpack delta info app-1-to-2.dpd",
  ]);

  // An archive written to standard output: the summary goes to stderr instead.
  let createToStdout = false;
  let applyToStdout = false;
  const create = delta
    .command("create")
    .description("write a delta package of IMAGE against what the target has (--base images or inventories)")
    .argument("<image>", "name:tag, ID, docker-daemon:REF, docker-archive:FILE, oci:DIR or oci-archive:FILE")
    .argument(
      "<package>",
      "the delta package file to write (- for standard output; a device or fifo is written in place)",
    )
    .option(
      "--base <image|inventory>",
      "what the target already has (repeatable): an image in any form or an inventory file",
      collect,
      [],
    )
    .addOption(
      new Option("-m, --method <method>", "per-layer method")
        .choices(["xdelta3", "bsdiff", "zstd", "layer", "auto"])
        .default("xdelta3"),
    )
    .addOption(
      new Option("-c, --compression <codec>", "compression of full layers and xdelta3 patches")
        .choices([...CODECS])
        .default("zstd"),
    )
    .option(
      "-l, --level <n>",
      "compression level: 1–9; zstd 1–22 or -1…-100 (default zstd 9, 3 with -m layer; others 6)",
      parseLevel,
    )
    .option("-d, --dry-run", "print the plan and the bytes it would ship; write nothing")
    .option("-f, --force", "overwrite an existing package")
    .option("-v, --verbose", "log the decision for every layer")
    .option("--gzip-measure", "also measure `docker save | gzip` for info's saving (gzip -6, CPU-heavy)")
    .option("--no-gzip-measure", "do not measure `docker save | gzip` (the default)")
    .action(
      action(
        async (reporter, c: Command, image: string, output: string) => {
          const o = c.opts() as Record<string, unknown>;
          const toStdout = checkStdoutOutput(c, output);
          const result = await (await lib()).createDelta(
            {
              image,
              output,
              bases: o.base as string[],
              method: o.method as "xdelta3",
              compression: o.compression as "zstd",
              ...(o.level !== undefined ? { level: o.level as number } : {}),
              dryRun: Boolean(o.dryRun),
              force: Boolean(o.force),
              measureGzip: o.gzipMeasure === true,
            },
            verbose(reporter, Boolean(o.verbose)),
          );
          createToStdout = toStdout;
          if (toStdout) reporter.info(renderCreate(result));
          return result;
        },
        (r) => (createToStdout ? "" : renderCreate(r)),
      ),
    );
  withExamples(create, [
    "dockpack delta create --base app:1 app:2 app-2.dpd",
    "dockpack delta create --base target-inventory.json --base old.tar app:2 app-2.dpd -m auto",
    "dockpack delta create --base docker-archive:old.tar docker-archive:new.tar out.dpd -c xz -l 9",
    "dockpack delta create -d --base app:1 app:2 app-2.dpd",
  ]);

  const apply = delta
    .command("apply")
    .description(
      "rebuild the image from a delta package and the base layers; load it or write a docker-archive",
    )
    .argument("<package>", "the delta package")
    .argument("[image-name]", "tag the rebuilt image (default: the original tags)")
    .option(
      "--base-archive <file>",
      "an image file holding base layers (repeatable; docker-archive, oci:, oci-archive:)",
      collect,
      [],
    )
    .option(
      "-o, --output <file>",
      "write a docker-archive file instead of loading into the engine (- for standard output)",
    )
    .option("--load", "load into the Docker Engine (the default)")
    .addOption(
      new Option("--format <layout>", "layout of --output")
        .choices(["docker-archive", "docker-archive-oci", "oci-archive"])
        .default("docker-archive"),
    )
    .option("-f, --force", "overwrite an existing output file or move an existing tag")
    .option(
      "-d, --dry-run",
      "check the package and that every base layer is found; rebuild and write nothing",
    )
    .option("--no-engine", "never read base layers from the Docker Engine (only --base-archive files)")
    .option("-v, --verbose", "log each step")
    .action(
      action(
        async (reporter, c: Command, pkg: string, imageName: string | undefined) => {
          const o = c.opts() as Record<string, unknown>;
          if (o.load && o.output) {
            throw new DockpackError("USAGE_CONFLICT", "--load and --output exclude each other.", {
              usage: true,
            });
          }
          const toStdout = checkStdoutOutput(c, o.output as string | undefined);
          const result = await (await lib()).applyDelta(
            {
              package: pkg,
              ...(imageName ? { imageName } : {}),
              baseArchives: o.baseArchive as string[],
              ...(o.output ? { output: o.output as string } : {}),
              format: o.format as "docker-archive",
              force: Boolean(o.force),
              dryRun: Boolean(o.dryRun),
              noEngine: o.engine === false,
            },
            verbose(reporter, Boolean(o.verbose)),
          );
          applyToStdout = toStdout;
          if (toStdout) reporter.info(renderApply(result));
          return result;
        },
        (r) => (applyToStdout ? "" : renderApply(r)),
      ),
    );
  withExamples(apply, [
    "dockpack delta apply app-2.dpd",
    "dockpack delta apply app-2.dpd app:2-restored -f",
    "dockpack delta apply app-2.dpd --base-archive old.tar -o app-2.tar",
    "dockpack delta apply app-2.dpd -o - | docker load",
  ]);

  const list = delta
    .command("list")
    .description(
      "one row per layer: index, diff_id, size, how it ships, bytes in the package (reads metadata only)",
    )
    .argument("<package>", "the delta package")
    .option("-v, --verbose", "add why each layer ships as it does")
    .action(
      action(
        async (_r, c: Command, pkg: string) => ({
          ...(await (await metadataReader()).deltaList({ package: pkg })),
          verbose: Boolean(c.opts().verbose),
        }),
        (r) =>
          formatTable(
            ["#", "DIFF_ID", "SIZE", "SHIPS AS", "BYTES", ...(r.verbose ? ["WHY"] : [])],
            r.layers.map((l) => [
              l.index,
              l.diffId,
              formatBytes(l.size),
              l.how,
              formatBytes(l.packageBytes),
              ...(r.verbose ? [l.reason ?? ""] : []),
            ]),
          ),
      ),
    );
  withExamples(list, ["dockpack delta list app-2.dpd", "dockpack --json delta list app-2.dpd"]);

  const info = delta
    .command("info")
    .description("format, source image, bases, method, totals and savings (reads metadata only)")
    .argument("<package>", "the delta package")
    .action(
      action(
        async (_r, _c: Command, pkg: string) => (await metadataReader()).deltaInfo({ package: pkg }),
        renderInfo,
      ),
    );
  withExamples(info, ["dockpack delta info app-2.dpd", "dockpack --json delta info app-2.dpd"]);

  const inventory = delta
    .command("inventory")
    .description(
      "write the layer inventory of images on this machine (default: every engine image) for --base",
    )
    .argument("[images...]", "images in any form (default: all images in the engine)")
    .requiredOption("-o, --output <file>", "the inventory file to write (JSON)")
    .option("-f, --force", "overwrite an existing file")
    .action(
      action(
        async (reporter, c: Command, images: string[]) => {
          const o = c.opts() as { output: string; force?: boolean };
          return (await lib()).createInventory(
            { images, output: o.output, force: Boolean(o.force) },
            reporter,
          );
        },
        (r) => `Wrote ${r.output}: ${r.images} images, ${r.layers} distinct layers`,
      ),
    );
  withExamples(inventory, [
    "dockpack delta inventory -o target.json",
    "dockpack delta inventory app:1 debian:bookworm -o target.json",
  ]);
  registerDeltaRegistryCommands(delta);
}
