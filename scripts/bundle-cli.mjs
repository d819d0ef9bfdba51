/**
 * Builds the `dockpack` command as one ESM bundle with code splitting (esbuild): `dist/bin/dockpack.js`
 * and its chunks next to it. Each command group stays a lazy `import()`, so `dockpack --help` loads only
 * the root chunk and a command only the chunks of its group; dependencies are bundled so that start-up
 * reads a few files instead of hundreds (issue 14 C18). The library (`dist/index.js`) stays as tsc
 * builds it. Paths the code resolves from its own file (`../../package.json`, `templates/`) keep working
 * because dist/bin/ sits as deep as dist/cli/.
 *
 * Usage: node scripts/bundle-cli.mjs [--metafile FILE]
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = process.env.BUNDLE_OUTDIR ?? `${root}dist/bin`;
rmSync(outdir, { recursive: true, force: true });
/**
 * Bundled CommonJS files that locate data by `__dirname`/`__filename` (dockerode's .proto files,
 * ssh2's wasm loader) get the values of their installed file, resolved at run time from the bundle.
 */
const installedPaths = {
  name: "installed-paths",
  setup(b) {
    b.onLoad({ filter: /[/\\]node_modules[/\\](dockerode|ssh2)[/\\].*\.js$/ }, (args) => {
      const contents = readFileSync(args.path, "utf8");
      if (!/\b__(dirname|filename)\b/.test(contents)) return undefined;
      const rel = args.path.slice(args.path.lastIndexOf("node_modules/") + "node_modules/".length);
      const prelude =
        `var __filename = (() => { try { return require.resolve(${JSON.stringify(rel)}); } catch { return require("node:url").fileURLToPath(new URL(${JSON.stringify(`../../node_modules/${rel}`)}, __dockpackBinUrl)); } })();` +
        'var __dirname = require("node:path").dirname(__filename);\n';
      return { contents: prelude + contents, loader: "js" };
    });
  },
};

/**
 * Start-up trims that change no behaviour dockpack uses: zod's error messages in languages other
 * than English (half of zod's code; `z.locales` then holds only `en`), dockerode's/docker-modem's
 * buildkit-session and SSH code (grpc, protobufjs, ssh2) required when first used instead of when
 * dockerode loads, and commander's node:child_process (only for executable subcommands, which
 * dockpack has none of) required when first used: loading it costs every `--help` ~5 ms.
 */
const LAZY = [
  [
    "dockerode/lib/docker.js",
    "withSession = require('./session'),",
    "withSession = function () { return require('./session').apply(this, arguments); },",
  ],
  [
    "commander/lib/command.js",
    "const childProcess = require('node:child_process');",
    "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };",
  ],
  [
    "docker-modem/lib/modem.js",
    "ssh = require('./ssh'),",
    "ssh = function () { return require('./ssh').apply(this, arguments); },",
  ],
];
const trims = {
  name: "start-up-trims",
  setup(b) {
    b.onLoad({ filter: /[/\\]node_modules[/\\]zod[/\\]v4[/\\]locales[/\\]index\.js$/ }, () => ({
      contents: 'export { default as en } from "./en.js";\n',
      loader: "js",
    }));
    for (const [file, from, to] of LAZY) {
      b.onLoad(
        { filter: new RegExp(`[/\\\\]node_modules[/\\\\]${file.replace(/[/.]/g, (c) => `\\${c}`)}$`) },
        (args) => {
          const contents = readFileSync(args.path, "utf8");
          if (!contents.includes(from))
            throw new Error(`${file} no longer holds '${from}': update scripts/bundle-cli.mjs`);
          return { contents: contents.replace(from, to), loader: "js" };
        },
      );
    }
  },
};

/**
 * `import { z } from "zod"` binds zod's whole namespace object, so every schema type, zod's JSON
 * Schema converters included, is bundled and set up by whichever command validates anything. As
 * `import * as z from "zod"` (the form zod's documentation uses; the same bindings), esbuild keeps
 * only what the code calls: half of zod's code, and its set-up, is gone from each command's start-up.
 */
const ZOD_NAMED = 'import { z } from "zod";';
const zodNamespace = {
  name: "zod-namespace-import",
  setup(b) {
    b.onLoad({ filter: /[/\\]src[/\\].*\.ts$/ }, (args) => {
      const contents = readFileSync(args.path, "utf8");
      if (!contents.includes(ZOD_NAMED)) return undefined;
      return { contents: contents.replace(ZOD_NAMED, 'import * as z from "zod";'), loader: "ts" };
    });
  },
};

const result = await build({
  plugins: [zodNamespace, trims, installedPaths],
  absWorkingDir: root,
  entryPoints: { dockpack: "src/cli/main.ts" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir,
  // jsonc-parser's UMD build (its "main") requires its parts by computed names: take its ESM build.
  alias: { "jsonc-parser": "jsonc-parser/lib/esm/main.js" },
  chunkNames: "chunk-[hash]",
  // Native or self-locating packages stay in node_modules; optional native addons (ssh2) fall back to JS.
  external: [
    "esbuild",
    "postject",
    "cpu-features",
    "*.node",
    // Required (lazily, see LAZY) only for BuildKit sessions and ssh:// engines, which dockpack
    // never uses: left in node_modules so that no command parses their ~1 MB.
    "@grpc/grpc-js",
    "@grpc/proto-loader",
    "protobufjs",
    "ssh2",
  ],
  // Bundled CommonJS dependencies call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __dockpackRequire } from 'node:module';\nconst __dockpackBinUrl = import.meta.url;\nconst require = __dockpackRequire(__dockpackBinUrl);",
  },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});
const i = process.argv.indexOf("--metafile");
if (i > 0) writeFileSync(process.argv[i + 1], JSON.stringify(result.metafile));
