/**
 * Builds the `dockpack` command (issue 14 C18) in `dist/bin/`: esbuild bundles src/cli/main.ts with
 * code splitting into `dockpack-main.js` and its chunks (each command group stays a lazy `import()`,
 * so `dockpack --help` loads only the root chunk and a command only the chunks of its group;
 * dependencies are bundled so that start-up reads a few files instead of hundreds). Each output file
 * is then turned into a CommonJS function expression `(function (exports, require, module,
 * __dockpackBinUrl) {…})` that the launcher `dockpack.js` (src/cli/bin.ts, `package.json` bin)
 * compiles with a V8 code cache (src/cli/compile-cache.ts): Node 20 caches no ESM compilation.
 * The library (`dist/index.js`) stays as tsc builds it. Paths the code resolves from its own file
 * (`../../package.json`, `templates/`) keep working because dist/bin/ sits as deep as dist/cli/.
 *
 * Usage: node scripts/bundle-cli.mjs [--metafile FILE]
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build, transform } from "esbuild";

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
  entryPoints: { "dockpack-main": "src/cli/main.ts" },
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
  // Each file gets its own URL and a require() from the launcher (bundled CommonJS dependencies
  // call require() for Node built-ins).
  define: { "import.meta.url": "__dockpackBinUrl" },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});
// Each file as a CommonJS function expression: static imports of chunks become require() calls,
// dynamic ones `Promise.resolve().then(() => require(…))` (a vm.Script has no module loader), live
// bindings stay (getters). Strict, as the ES modules were. ASCII, so the launcher reads it as latin1.
const files = readdirSync(outdir)
  .filter((f) => f.endsWith(".js"))
  .sort();
const id = createHash("sha256");
for (const f of files) {
  const path = `${outdir}/${f}`;
  const esm = readFileSync(path, "utf8").replace(/^#!.*\n/, "");
  const { code } = await transform(esm, {
    format: "cjs",
    platform: "node",
    target: "node20",
    supported: { "dynamic-import": false },
    charset: "ascii",
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    banner: '(function (exports, require, module, __dockpackBinUrl) {"use strict";',
    footer: "})",
  });
  writeFileSync(path, code, { mode: 0o644 });
  id.update(`${f}\0${code}\0`);
}
// The launcher (`package.json` bin), keyed to these files by their hash: no other build's
// bytecode is ever used for them. CommonJS (dist/bin/package.json says so): Node starts a CommonJS
// main script without setting up its ES module loader, ~10 ms of CPU less.
await build({
  absWorkingDir: root,
  entryPoints: { dockpack: "src/cli/bin.ts" },
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  outdir,
  define: {
    DOCKPACK_BUNDLE_ID: JSON.stringify(id.digest("hex").slice(0, 16)),
    "import.meta.url": "__dockpackLauncherUrl",
  },
  banner: {
    js: '"use strict";var __dockpackLauncherUrl = require("node:url").pathToFileURL(__filename).href;',
  },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  logLevel: "warning",
});
writeFileSync(`${outdir}/package.json`, `${JSON.stringify({ type: "commonjs" })}\n`);
const i = process.argv.indexOf("--metafile");
if (i > 0) writeFileSync(process.argv[i + 1], JSON.stringify(result.metafile));
