#!/usr/bin/env node
// Bundles the CLI and the embedded DNS resolver with esbuild into dist/bundle/, which bin/tsfig.js runs: a few ESM
// files per command instead of ~200 modules (and yaml's and commander's CommonJS files) to resolve, read and compile
// on every start. The command groups of src/cli/commands/index.ts stay lazy import()s: with code splitting each
// group is its own chunk, so `ps` loads neither the TUI nor the builder. The chunks and dns-server.js (the resolver,
// one file) sit directly in dist/bundle/, which is where NetworkManager.ensureDns looks for the resolver (beside its
// own module); the native helper and bin/tsfig.js are found upwards from there as from dist/src/. The compose-spec
// validator (0.6 MB) is a CommonJS file loaded on its first call only, so a command whose project validated before
// (the validation cache, src/config/validation-cache.ts) does not even compile it. Run by `npm run build` and the
// install script; bin/tsfig.js falls back to the tsc output (dist/src/) when there is no bundle or tsc built after it.
//   node scripts/bundle.js [--metafile] [--outdir DIR]
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
  },
  metafile: process.argv.includes('--metafile'),
});
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
