#!/usr/bin/env node
// Entry point: runs the bundled CLI (dist/bundle/, scripts/bundle.js) built by `npm install`/`npm run build`, or the
// plain tsc output (dist/src/) when there is no bundle or tsc has built after it (`tsc -p tsconfig.build.json` alone).
import { statSync } from 'node:fs';
import { URL } from 'node:url';

const mtime = (url) => statSync(new URL(url, import.meta.url), { throwIfNoEntry: false })?.mtimeMs;
const bundled = mtime('../dist/bundle/bin.js');
const compiled = mtime('../dist/src/cli/bin.js');
await import(bundled !== undefined && !(compiled > bundled) ? '../dist/bundle/bin.js' : '../dist/src/cli/bin.js');
