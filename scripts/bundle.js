#!/usr/bin/env node
// Bundles the CLI and the embedded DNS resolver with esbuild into dist/bundle/. bin/tsfig.js runs cli.cjs: the whole
// CLI in one CommonJS file, which it compiles with V8's code cache (issue 18; the command groups in it are still
// initialised only when their command runs, so `ps` runs neither the TUI's nor the builder's modules). bin.js and its
// chunks are the same CLI as ES modules with code splitting (each command group its own chunk): what bin/tsfig.js ran
// before, kept for bench/ and scripts that import it. dns-server.js (the resolver, one file) sits directly in
// dist/bundle/, which is where NetworkManager.ensureDns looks for it (beside its own module); the native helper and
// bin/tsfig.js are found upwards from there as from dist/src/. The compose-spec validator (0.6 MB) is a CommonJS file
// loaded on its first call only, so a command whose project validated before (the validation cache,
// src/config/validation-cache.ts) does not even compile it. Run by `npm run build` and the install script;
// bin/tsfig.js falls back to the tsc output (dist/src/) when there is no bundle or tsc built after it.
//   node scripts/bundle.js [--metafile] [--outdir DIR]
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdirFlag = process.argv.indexOf('--outdir');
/** dist/bundle/, or --outdir (a private build: bin/tsfig.js beside its dist/, as bench/ makes). */
const target = outdirFlag > 0 ? path.resolve(process.argv[outdirFlag + 1] ?? '') : path.join(repo, 'dist', 'bundle');
// Built beside it, then swapped in: a CLI starting meanwhile (the tree is shared) finds a whole bundle or none.
const outdir = `${target}.${process.pid}.tmp`;
const validatorSource = path.join(repo, 'src', 'config', 'compose-spec.validate.ts');
const validatorFile = 'compose-spec.validate.cjs';

/**
 * Packages bundled in (with what they import): the ones every command or `up` loads. The others (ink, react,
 * chokidar: only in lazy chunks) stay imports of node_modules, as they are in the sources.
 */
const BUNDLED_PACKAGES = ['commander', 'yaml', 'ajv', 'p-queue'];

/** @type {import('esbuild').Plugin} */
const packagesPlugin = {
  name: 'tsfig-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { path: args.path, external: true };
      if (args.importer.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      return BUNDLED_PACKAGES.includes(name ?? '') ? undefined : { path: args.path, external: true };
    });
  },
};

/** src/config/schema.ts's import of the validator → a stub that require()s the CommonJS validator on first call. */
/** @type {import('esbuild').Plugin} */
const lazyValidatorPlugin = {
  name: 'tsfig-lazy-validator',
  setup(build) {
    build.onResolve({ filter: /\/compose-spec\.validate\.js$/ }, (args) => {
      if (path.join(args.resolveDir, args.path) !== validatorSource.replace(/\.ts$/, '.js')) return undefined;
      return { path: 'compose-spec.validate', namespace: 'tsfig-lazy-validator' };
    });
    build.onLoad({ filter: /.*/, namespace: 'tsfig-lazy-validator' }, () => ({
      loader: 'js',
      resolveDir: repo,
      contents: [
        "import { createRequire } from 'node:module';",
        'let loaded;',
        'function validate(data) {',
        `  loaded ??= createRequire(import.meta.url)(${JSON.stringify(`./${validatorFile}`)}).default;`,
        '  const valid = loaded(data);',
        '  validate.errors = loaded.errors;',
        '  return valid;',
        '}',
        'export default validate;',
      ].join('\n'),
    }));
  },
};

const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
rmSync(outdir, { recursive: true, force: true });
const common = /** @type {const} */ ({
  absWorkingDir: repo,
  bundle: true,
  platform: 'node',
  target: 'node20',
  plugins: [packagesPlugin],
  legalComments: 'none',
  logLevel: 'warning',
});

await build({
  ...common,
  entryPoints: [validatorSource],
  outfile: path.join(outdir, validatorFile),
  format: 'cjs',
});
// Identifies the validator for the validation cache (src/config/validation-cache.ts): a hash of the very file that
// validates, so a different validator (schema, generator or ajv helper) never trusts what another one accepted.
const validatorId = createHash('sha256')
  .update(readFileSync(path.join(outdir, validatorFile)))
  .digest('hex');
// The YAML parser's identity for the cache of parsed project files (src/config/parse-cache.ts): what it parses with.
const parserId = createHash('sha256')
  .update(readFileSync('src/config/parse.ts'))
  .update(readFileSync('src/config/parse-cache.ts'))
  .update(readFileSync('src/config/values.ts'))
  .update(String(JSON.parse(readFileSync('node_modules/yaml/package.json', 'utf8')).version))
  .digest('hex');
const result = await build({
  ...common,
  entryPoints: { bin: 'src/cli/bin.ts' },
  outdir,
  splitting: true,
  format: 'esm',
  plugins: [lazyValidatorPlugin, packagesPlugin],
  // The bundled CommonJS packages (commander, yaml) require() node's modules.
  banner: {
    js: "import { createRequire as __tsfigRequire } from 'node:module'; const require = __tsfigRequire(import.meta.url);",
  },
  define: {
    TSFIG_BUNDLED_VERSION: JSON.stringify(String(pkg.version)),
    TSFIG_VALIDATOR_ID: JSON.stringify(validatorId),
    TSFIG_PARSER_ID: JSON.stringify(parserId),
  },
  metafile: process.argv.includes('--metafile'),
});
// The CommonJS build that bin/tsfig.js runs: the whole CLI in one file, so that bin/tsfig.js can compile it with V8's
// code cache (vm.Script cachedData; Node 20 has none for ES modules) instead of parsing and compiling ~1 MB of modules
// on every start (issue 18). Command groups are still initialised only when their command runs (esbuild keeps
// import()ed modules lazy). Packages that are not bundled are require()d, except:
// - import()s of them (kubernetes-models): a module compiled by vm.Script cannot import() (Node 20 needs
//   --experimental-vm-modules), so they become require()s;
// - ES-module-only ones (ink): imported by bin/tsfig.js's __tsfigImport before the TUI's modules load (loadSession,
//   src/ui/tty/index.ts), and handed to them from that map.
const ESM_ONLY_PACKAGES = ['ink'];
/** @type {import('esbuild').Plugin} */
const commonjsPackagesPlugin = {
  name: 'tsfig-commonjs-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || args.importer.includes(`${path.sep}node_modules${path.sep}`))
        return undefined;
      const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      if (BUNDLED_PACKAGES.includes(name ?? '')) return undefined;
      if (ESM_ONLY_PACKAGES.includes(name ?? '')) return { path: args.path, namespace: 'tsfig-esm-only' };
      if (args.kind === 'dynamic-import') return { path: args.path, namespace: 'tsfig-require' };
      return undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'tsfig-esm-only' }, (args) => ({
      loader: 'js',
      contents: `module.exports = __tsfigEsmOnly(${JSON.stringify(args.path)});`,
    }));
    build.onLoad({ filter: /.*/, namespace: 'tsfig-require' }, (args) => ({
      loader: 'js',
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
    }));
    const tuiEntry = path.join(repo, 'src', 'ui', 'tty', 'index.ts');
    build.onLoad({ filter: /[/\\]src[/\\]ui[/\\]tty[/\\]index\.ts$/ }, (args) => {
      if (args.path !== tuiEntry) return undefined;
      const source = readFileSync(args.path, 'utf8');
      const load = "  return import('./session.js');";
      if (!source.includes(load)) throw new Error(`${args.path}: loadSession's import('./session.js') not found`);
      const preload = ESM_ONLY_PACKAGES.map((name) => `  await __tsfigLoadEsm(${JSON.stringify(name)});\n`).join('');
      return { loader: 'ts', contents: source.replace(load, `${preload}${load}`) };
    });
  },
};

/**
 * Node's built-in modules that a command may never use (crypto, child_process, net, zlib, ...), required only on
 * their first use (issue 18). esbuild hoists every `import` of the CLI's modules to a `require()` run when the bundle
 * loads, and Node compiles a built-in module on its first require: `ps` loaded 67 of them (crypto alone is 15), about
 * 16 ms of CPU and 25 ms of wall time on the bench machine, which no command that only reads state needs. Each such
 * module is a Proxy (`__tsfigLazyBuiltin`, the banner below) that requires the real module when a property is first
 * read. Only modules whose exports are a plain object qualify (a Proxy of an object cannot be called or
 * constructed: `events` and `stream` export constructors, and Node loads them at start-up anyway), and its own keys
 * are listed here, at build time, so that esbuild's `__toESM` copies them without loading the module. fs and path are
 * left alone: Node's bootstrap has loaded them already.
 */
const LAZY_BUILTINS = [
  'async_hooks',
  'child_process',
  'crypto',
  'dgram',
  'dns',
  'http',
  'https',
  'net',
  'os',
  'perf_hooks',
  'readline',
  'timers/promises',
  'tls',
  'zlib',
];
const builtinRequire = createRequire(import.meta.url);
/**
 * node:path as an ES module of the bundle. The CLI's 67 modules `import path from 'node:path'`, and esbuild turns each
 * such default import of a CommonJS module into its own `__toESM` copy of the module's properties (about 2.5 ms of a
 * command's start, every command); an ES module's default export is shared as it is.
 */
const ESM_BUILTINS = ['path'];
/** @type {import('esbuild').Plugin} */
const lazyBuiltinsPlugin = {
  name: 'tsfig-lazy-builtins',
  setup(build) {
    const names = LAZY_BUILTINS.map((name) => name.replace('/', '\\/')).join('|');
    build.onResolve({ filter: new RegExp(`^(node:)?(${names})$`) }, (args) => ({
      path: args.path.replace(/^node:/, ''),
      namespace: 'tsfig-lazy-builtin',
    }));
    build.onResolve({ filter: new RegExp(`^(node:)?(${ESM_BUILTINS.join('|')})$`) }, (args) =>
      args.namespace === 'tsfig-esm-builtin'
        ? { path: `node:${args.path.replace(/^node:/, '')}`, external: true }
        : { path: args.path.replace(/^node:/, ''), namespace: 'tsfig-esm-builtin' },
    );
    build.onLoad({ filter: /.*/, namespace: 'tsfig-esm-builtin' }, (args) => {
      const exports = builtinRequire(`node:${args.path}`);
      const names = Object.keys(exports).filter((key) => /^[A-Za-z_$][\w$]*$/.test(key) && key !== 'default');
      return {
        loader: 'js',
        contents: [
          `const builtin = require(${JSON.stringify(`node:${args.path}`)});`,
          'export default builtin;',
          `export const { ${names.join(', ')} } = builtin;`,
        ].join('\n'),
      };
    });
    build.onLoad({ filter: /.*/, namespace: 'tsfig-lazy-builtin' }, (args) => {
      const exports = builtinRequire(`node:${args.path}`);
      if (typeof exports !== 'object' || exports === null || Object.getPrototypeOf(exports) !== Object.prototype)
        throw new Error(`node:${args.path} does not export a plain object: it cannot be loaded lazily`);
      const keys = Object.getOwnPropertyNames(exports);
      return {
        loader: 'js',
        contents: `module.exports = __tsfigLazyBuiltin(${JSON.stringify(`node:${args.path}`)}, ${JSON.stringify(keys)});`,
      };
    });
  },
};
const cli = await build({
  ...common,
  entryPoints: ['src/cli/start.ts'],
  outfile: path.join(outdir, 'cli.cjs'),
  format: 'cjs',
  write: false,
  // Whitespace and syntax only (names are kept for stack traces): every start reads, decodes and hands V8 the whole
  // file, at about 15 ms per MB on the bench machine; 1.8 MB -> 1.25 MB.
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [lazyValidatorPlugin, lazyBuiltinsPlugin, commonjsPackagesPlugin, packagesPlugin],
  banner: {
    js: [
      "const __tsfigImportMetaUrl = require('node:url').pathToFileURL(__filename).href;",
      "const __tsfigImportMetaResolve = (specifier) => require('node:url').pathToFileURL(require.resolve(specifier)).href;",
      'const __tsfigEsm = new Map();',
      "const __tsfigImportEsm = typeof __tsfigImport === 'function' ? __tsfigImport : (specifier) => import(specifier);",
      'async function __tsfigLoadEsm(name) {',
      '  if (!__tsfigEsm.has(name)) __tsfigEsm.set(name, await __tsfigImportEsm(name));',
      '}',
      'function __tsfigEsmOnly(name) {',
      '  if (!__tsfigEsm.has(name)) throw new Error(`${name} is an ES module: __tsfigLoadEsm(${name}) first`);',
      '  return __tsfigEsm.get(name);',
      '}',
      // The lazy built-in modules (LAZY_BUILTINS above): the module is required on the first read of a property;
      // its keys, prototype and `__esModule` (none) are answered without it, which is all that __toESM asks.
      'function __tsfigLazyBuiltin(id, keys) {',
      '  let loaded;',
      '  const load = () => (loaded ??= require(id));',
      '  return new Proxy(Object.create(null), {',
      "    get: (_, key) => (key === '__esModule' && loaded === undefined ? undefined : load()[key]),",
      '    set: (_, key, value) => Reflect.set(load(), key, value),',
      '    has: (_, key) => key in load(),',
      '    ownKeys: () => (loaded === undefined ? [...keys] : Reflect.ownKeys(loaded)),',
      '    getOwnPropertyDescriptor: (_, key) => {',
      '      if (loaded === undefined && keys.includes(key)) return { configurable: true, enumerable: true, get: () => load()[key] };',
      '      const found = Reflect.getOwnPropertyDescriptor(load(), key);',
      '      return found === undefined ? undefined : { ...found, configurable: true };',
      '    },',
      '    getPrototypeOf: () => Object.prototype,',
      '  });',
      '}',
    ].join('\n'),
  },
  define: {
    TSFIG_BUNDLED_VERSION: JSON.stringify(String(pkg.version)),
    TSFIG_VALIDATOR_ID: JSON.stringify(validatorId),
    TSFIG_PARSER_ID: JSON.stringify(parserId),
    'import.meta.url': '__tsfigImportMetaUrl',
    'import.meta.resolve': '__tsfigImportMetaResolve',
  },
});
// ASCII only, so that bin/tsfig.js decodes it as latin1 (a copy; UTF-8 decoding of 1.7 MB costs a few ms more at
// every start): esbuild escapes non-ASCII characters in code, what is left is in comments it kept (p-queue's).
// Its first line names it (a hash of the rest): bin/tsfig.js keys V8's code cache with it instead of hashing the whole
// file at every start.
const cliText = (cli.outputFiles?.[0]?.text ?? '').replace(
  /[^\0-\x7f]/gu,
  (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`,
);
writeFileSync(
  path.join(outdir, 'cli.cjs'),
  `// tsfig-bundle ${createHash('sha256').update(cliText).digest('hex')}\n${cliText}`,
);
// The resolver is its own process (started with the first network, while `up` runs): one file, nothing shared.
await build({
  ...common,
  entryPoints: { 'dns-server': 'engine/network/dns-server.ts' },
  outdir,
  format: 'esm',
});
if (result.metafile !== undefined) writeFileSync(path.join(outdir, 'meta.json'), JSON.stringify(result.metafile));
const old = `${target}.${process.pid}.old`;
if (existsSync(target)) renameSync(target, old);
renameSync(outdir, target);
rmSync(old, { recursive: true, force: true });
