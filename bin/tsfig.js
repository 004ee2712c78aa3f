#!/usr/bin/env node
// Entry point: runs the bundled CLI (dist/bundle/, scripts/bundle.js) built by `npm install`/`npm run build`, or the
// plain tsc output (dist/src/) when there is no bundle or tsc has built after it (`tsc -p tsconfig.build.json` alone).
// A CommonJS file (bin/package.json): Node starts a CommonJS entry without loading its ES module loader, which
// `tsfig --version` then never needs (issue 18: within 1.1x of `node -e 0`); the CLI itself is imported.
'use strict';
const { readFileSync, statSync } = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  // What commander prints for it: package.json's version, the one the bundle is built with.
  process.stdout.on('error', () => process.exit(141));
  process.stdout.write(`${JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version}\n`);
} else {
  const mtime = (file) => statSync(path.join(__dirname, file), { throwIfNoEntry: false })?.mtimeMs;
  const bundled = mtime('../dist/bundle/bin.js');
  const compiled = mtime('../dist/src/cli/bin.js');
  const entry = bundled !== undefined && !(compiled > bundled) ? '../dist/bundle/bin.js' : '../dist/src/cli/bin.js';
  // A failure to load is an unhandled rejection: Node prints it and exits 1.
  void import(pathToFileURL(path.join(__dirname, entry)).href);
}
