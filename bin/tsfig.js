#!/usr/bin/env node
// Entry point: runs the compiled CLI (dist/) built by `npm install`/`npm run build`.
import '../dist/src/cli/bin.js';
