/**
 * scripts/bundle.js's CommonJS bundle (issue 18): loading the CLI requires none of Node's heavier built-in modules
 * (each is required on its first use, `__tsfigLazyBuiltin`), and a lazily required module works as the module itself:
 * its functions, its default import (esbuild's __toESM) and its keys. Builds a bundle into a temporary directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { REPO } from '../helpers/engine.js';

let dir: string;
let cli: string;

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tsfig-unit-bundle-'));
  const built = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'bundle.js'), '--outdir', dir], {
    cwd: REPO,
    encoding: 'utf8',
  });
  assert.equal(built.status, 0, built.stderr);
  cli = path.join(dir, 'cli.cjs');
});

after(() => rmSync(dir, { recursive: true, force: true }));

function inNode(script: string): string {
  const result = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, TSFIG_CODE_CACHE: '0' },
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

test('loading the bundled CLI requires no child_process, crypto, zlib, net or dgram', () => {
  const loaded = JSON.parse(
    inNode(
      [
        `const { loadCli } = require(${JSON.stringify(path.join(REPO, 'bin', 'tsfig.js'))});`,
        'const before = new Set(process.moduleLoadList);',
        `const exports = loadCli(${JSON.stringify(cli)}, 'test');`,
        "if (typeof exports.start !== 'function') throw new Error('no start');",
        'console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));',
      ].join('\n'),
    ),
  ) as string[];
  for (const name of ['child_process', 'crypto', 'zlib', 'net', 'dgram', 'perf_hooks']) {
    assert.ok(!loaded.includes(`NativeModule ${name}`), `${name} was required at load: ${loaded.join(' ')}`);
  }
});

test('a lazy built-in module is the module on first use: functions, default import, keys', () => {
  // The banner's __tsfigLazyBuiltin, taken from the bundle's text and run on its own.
  const banner = inNode(
    [
      `const text = require('node:fs').readFileSync(${JSON.stringify(cli)}, 'latin1');`,
      "const start = text.indexOf('function __tsfigLazyBuiltin(');",
      "const end = text.indexOf('\\n}', start) + 2;",
      'process.stdout.write(text.slice(start, end));',
    ].join('\n'),
  );
  assert.match(banner, /^function __tsfigLazyBuiltin\(/);
  const out = inNode(
    [
      banner,
      "const lazy = __tsfigLazyBuiltin('node:zlib', ['gzipSync', 'gunzipSync', 'constants']);",
      "const loadedBefore = process.moduleLoadList.includes('NativeModule zlib');",
      // what esbuild's __toESM asks of a default import: prototype, keys, descriptors, and no __esModule
      'const copy = Object.create(Object.getPrototypeOf(lazy));',
      'for (const key of Object.getOwnPropertyNames(lazy)) Object.defineProperty(copy, key, { get: () => lazy[key], enumerable: Object.getOwnPropertyDescriptor(lazy, key).enumerable });',
      "const untouched = !process.moduleLoadList.includes('NativeModule zlib') && lazy.__esModule === undefined;",
      "const roundTrip = copy.gunzipSync(copy.gzipSync(Buffer.from('tsfig'))).toString();",
      "console.log(JSON.stringify({ loadedBefore, untouched, roundTrip, has: 'gzipSync' in lazy, keys: Object.keys(lazy).length > 3 }));",
    ].join('\n'),
  );
  assert.deepEqual(JSON.parse(out), {
    loadedBefore: false,
    untouched: true,
    roundTrip: 'tsfig',
    has: true,
    keys: true,
  });
});
