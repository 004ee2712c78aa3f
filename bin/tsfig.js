#!/usr/bin/env node
// Entry point. Runs the CLI built by `npm install`/`npm run build` (scripts/bundle.js): dist/bundle/cli.cjs, the whole
// CLI in one CommonJS file, compiled with V8's code cache (below); or, when there is none or tsc has built after it
// (`tsc -p tsconfig.build.json` alone), the plain tsc output dist/src/.
// This file is CommonJS (bin/package.json): Node starts a CommonJS entry without loading its ES module loader, which
// `tsfig --version` then never needs (issue 18: within 1.1x of `node -e 0`).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/**
 * The code cache of dist/bundle/cli.cjs for one command (the functions a command ran are compiled in its cache), in
 * $XDG_CACHE_HOME/tsfig/code-cache (~/.cache/...): none when that is not a directory of this user that only it can
 * write (then the CLI compiles as without a cache). A file is named by the name scripts/bundle.js writes on the
 * bundle's first line (a hash of the rest) with the file's size and mtime, or else by a hash of its text as read now,
 * and by Node's version and architecture: a changed bundle or another Node never finds another's cache (V8 itself
 * checks only the source's length), and V8 rejects what does not fit its version or flags.
 * TSFIG_CODE_CACHE=0 turns it off.
 */
function codeCache(key, command) {
  if (process.env.TSFIG_CODE_CACHE === '0') return undefined;
  const home = process.env.HOME;
  const base = process.env.XDG_CACHE_HOME || (home ? path.join(home, '.cache') : '');
  if (!path.isAbsolute(base)) return undefined;
  const dir = path.join(base, 'tsfig', 'code-cache');
  const file = path.join(dir, `${key}-${process.version}-${process.arch}-${command}.bin`);
  const uid = process.geteuid?.();
  const trusted = (stat) => stat.uid === uid && (stat.mode & 0o022) === 0;
  return {
    read() {
      let fd;
      try {
        if (!trusted(fs.lstatSync(dir))) return undefined;
        fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        const stat = fs.fstatSync(fd);
        return stat.isFile() && trusted(stat) ? fs.readFileSync(fd) : undefined;
      } catch {
        return undefined;
      } finally {
        if (fd !== undefined) fs.closeSync(fd);
      }
    },
    /** Written whole under a temporary name, then renamed: a reader finds a complete cache or none. */
    write(data) {
      const temp = `${file}.${process.pid}.tmp`;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const stat = fs.lstatSync(dir);
        if (!stat.isDirectory() || !trusted(stat)) return;
        fs.writeFileSync(temp, data, { mode: 0o600, flag: 'wx' });
        fs.renameSync(temp, file);
        // Caches of older bundles and Node versions: the oldest go once there are many.
        const entries = fs.readdirSync(dir);
        if (entries.length > 64) {
          const byAge = entries
            .map((name) => ({
              name,
              mtime: fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.mtimeMs ?? 0,
            }))
            .sort((a, b) => a.mtime - b.mtime);
          for (const { name } of byAge.slice(0, entries.length - 32)) fs.rmSync(path.join(dir, name), { force: true });
        }
      } catch {
        try {
          fs.rmSync(temp, { force: true });
        } catch {
          // nothing was made
        }
      }
    },
  };
}

/** The command's words (`ps`, `container-run`): which code cache it uses. Any name is correct, only less useful. */
function commandKey(argv) {
  const words = argv.filter((arg) => /^[a-z][a-z0-9-]{0,19}$/.test(arg)).slice(0, 2);
  return words.length === 0 ? 'none' : words.join('-');
}

/**
 * Compiles and runs dist/bundle/cli.cjs as Node's require() would (same wrapper, module, require), with the code cache
 * of the command; the cache is written at exit when there was none or V8 rejected it. Returns its exports.
 */
function loadCli(file, command) {
  const Module = require('node:module');
  const vm = require('node:vm');
  const fd = fs.openSync(file, 'r');
  const stat = fs.fstatSync(fd);
  const bytes = fs.readFileSync(fd);
  fs.closeSync(fd);
  // scripts/bundle.js writes it in ASCII: then latin1 is the same text, decoded faster than UTF-8
  const source = require('node:buffer').isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  // scripts/bundle.js names the bundle on its first line (a hash of the rest); with its size and mtime, that names
  // this text without hashing 1.2 MB (and loading node:crypto) at every start. Another file is hashed here.
  const named = /^\/\/ tsfig-bundle ([0-9a-f]{64})\n/.exec(source.slice(0, 100))?.[1];
  const key =
    named === undefined
      ? require('node:crypto').createHash('sha1').update(bytes).digest('hex')
      : `${named.slice(0, 40)}-${bytes.length}-${Math.trunc(stat.mtimeMs)}`;
  const cache = codeCache(key, command);
  const cachedData = cache?.read();
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname, __tsfigImport) {${source}\n})`,
    { filename: file, ...(cachedData === undefined ? {} : { cachedData }) },
  );
  if (cache !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) {
    process.once('exit', () => cache.write(script.createCachedData()));
  }
  const cli = new Module(file, module);
  cli.filename = file;
  cli.paths = Module._nodeModulePaths(path.dirname(file));
  // The ES-module-only packages (ink) are import()ed from here: a vm.Script cannot import().
  const importEsm = (specifier) => import(specifier);
  script
    .runInThisContext()
    .call(cli.exports, cli.exports, Module.createRequire(file), cli, file, path.dirname(file), importEsm);
  cli.loaded = true;
  return cli.exports;
}

const cliFile = path.join(__dirname, '..', 'dist', 'bundle', 'cli.cjs');
const mtime = (file) => fs.statSync(path.join(__dirname, file), { throwIfNoEntry: false })?.mtimeMs;

if (require.main !== module) {
  // Required (bench/cli-startup.ts): the loader alone.
  module.exports = { loadCli, cliFile };
} else {
  const argv = process.argv.slice(2);
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    // What commander prints for it: package.json's version, the one the bundle is built with.
    process.stdout.on('error', () => process.exit(141));
    process.stdout.write(
      `${JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version}\n`,
    );
  } else {
    const bundled = mtime('../dist/bundle/cli.cjs');
    const compiled = mtime('../dist/src/cli/bin.js');
    // A failure to load is an unhandled rejection or exception: Node prints it and exits 1.
    if (bundled !== undefined && !(compiled > bundled)) {
      void loadCli(cliFile, commandKey(argv))
        .start(argv)
        .then((code) => {
          process.exitCode = code;
        });
    } else {
      void import(require('node:url').pathToFileURL(path.join(__dirname, '..', 'dist', 'src', 'cli', 'bin.js')).href);
    }
  }
}
