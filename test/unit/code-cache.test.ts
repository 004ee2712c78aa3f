/**
 * bin/tsfig.js's start (issue 18): `--version` without the CLI, and dist/bundle/cli.cjs compiled with a V8 code cache
 * that is the user's own, written atomically, keyed by the bundle's text and Node's version, and never makes stale
 * code run. Runs a copy of bin/ beside a stand-in bundle (a CLI whose start prints which version of it ran).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { REPO } from '../helpers/engine.js';

let dir: string;
let cacheHome: string;

/** A stand-in CLI bundle: its start prints `tag:argv` and returns 3 (same length for tags of the same length). */
function writeBundle(tag: string): void {
  const helpers = Array.from({ length: 20 }, (_, i) => `function h${i}(x) { return x + ${i}; }`).join('\n');
  writeFileSync(
    path.join(dir, 'dist', 'bundle', 'cli.cjs'),
    `${helpers}\nexports.start = async (argv) => { process.stdout.write(${JSON.stringify(tag)} + ':' + argv.join(',') + ':' + h3(0)); return 3; };\n`,
  );
}

function run(args: readonly string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [path.join(dir, 'bin', 'tsfig.js'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_CACHE_HOME: cacheHome, ...env },
  });
}

const cacheDir = (): string => path.join(cacheHome, 'tsfig', 'code-cache');
const cacheFiles = (): string[] => readdirSync(cacheDir()).sort();

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tsfig-unit-codecache-'));
  cacheHome = path.join(dir, 'cache');
  cpSync(path.join(REPO, 'bin'), path.join(dir, 'bin'), { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'tsfig', version: '9.8.7', type: 'module' }));
  mkdirSync(path.join(dir, 'dist', 'bundle'), { recursive: true });
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('--version and -v print package.json version without loading the CLI', () => {
  writeBundle('A');
  for (const flag of ['--version', '-v']) {
    const result = run([flag]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, '9.8.7\n');
  }
});

test('the bundle runs with its exit code; its code cache is written once, 0600 in a 0700 dir, then used', () => {
  rmSync(cacheHome, { recursive: true, force: true });
  writeBundle('A');
  const first = run(['ps', '-a']);
  assert.equal(first.status, 3, first.stderr);
  assert.equal(first.stdout, 'A:ps,-a:3');
  const [file, ...others] = cacheFiles();
  assert.equal(others.length, 0);
  assert.match(file ?? '', new RegExp(`^[0-9a-f]{40}-${process.version}-${process.arch}-ps\\.bin$`));
  assert.equal(statSync(cacheDir()).mode & 0o777, 0o700);
  const written = statSync(path.join(cacheDir(), file ?? ''));
  assert.equal(written.mode & 0o777, 0o600);
  const second = run(['ps']);
  assert.equal(second.stdout, 'A:ps:3');
  // accepted by V8: not written again (a rejected or missing cache is rewritten at exit)
  assert.equal(statSync(path.join(cacheDir(), file ?? '')).mtimeMs, written.mtimeMs);
  assert.equal(statSync(path.join(cacheDir(), file ?? '')).ino, written.ino);
});

test('a changed bundle of the same length runs as changed, with a cache of its own', () => {
  rmSync(cacheHome, { recursive: true, force: true });
  writeBundle('A');
  assert.equal(run(['ps']).stdout, 'A:ps:3');
  writeBundle('B');
  const result = run(['ps']);
  assert.equal(result.stdout, 'B:ps:3', result.stderr);
  assert.equal(cacheFiles().length, 2);
});

test('a corrupt cache is rejected by V8 and replaced; the command still runs', () => {
  rmSync(cacheHome, { recursive: true, force: true });
  writeBundle('A');
  run(['ps']);
  const file = path.join(cacheDir(), cacheFiles()[0] ?? '');
  writeFileSync(file, Buffer.alloc(4096, 7), { mode: 0o600 });
  const result = run(['ps']);
  assert.equal(result.stdout, 'A:ps:3', result.stderr);
  assert.notEqual(statSync(file).size, 4096);
});

test('a cache dir others can write is neither read nor written; an unusable one changes nothing', () => {
  rmSync(cacheHome, { recursive: true, force: true });
  writeBundle('A');
  run(['ps']);
  const file = path.join(cacheDir(), cacheFiles()[0] ?? '');
  const planted = Buffer.alloc(4096, 7);
  writeFileSync(file, planted, { mode: 0o600 });
  chmodSync(cacheDir(), 0o777);
  try {
    const result = run(['ps']);
    assert.equal(result.stdout, 'A:ps:3', result.stderr);
    assert.equal(statSync(file).size, planted.length, 'the file in a shared dir is left alone');
    assert.equal(cacheFiles().length, 1);
  } finally {
    chmodSync(cacheDir(), 0o700);
  }
  // a cache file others can write is not read either (and is replaced: the dir is the user's)
  chmodSync(file, 0o666);
  assert.equal(run(['ps']).stdout, 'A:ps:3');
  // XDG_CACHE_HOME under a regular file: no cache at all, same result
  const notDir = path.join(dir, 'not-a-dir');
  writeFileSync(notDir, '');
  const result = run(['ps'], { XDG_CACHE_HOME: path.join(notDir, 'x') });
  assert.equal(result.status, 3, result.stderr);
  assert.equal(result.stdout, 'A:ps:3');
  assert.equal(result.stderr, '');
  // turned off
  rmSync(cacheHome, { recursive: true, force: true });
  assert.equal(run(['ps'], { TSFIG_CODE_CACHE: '0' }).stdout, 'A:ps:3');
  assert.throws(() => statSync(cacheDir()));
});

test('a bundle named on its first line is keyed by that name, its size and mtime: an edit of the same length runs', () => {
  rmSync(cacheHome, { recursive: true, force: true });
  const bundle = path.join(dir, 'dist', 'bundle', 'cli.cjs');
  const named = (tag: string): void => {
    writeBundle(tag);
    writeFileSync(bundle, `// tsfig-bundle ${'ab'.repeat(32)}\n${readFileSync(bundle, 'utf8')}`);
  };
  named('A');
  utimesSync(bundle, 1_000_000, 1_000_000);
  assert.equal(run(['ps']).stdout, 'A:ps:3');
  assert.match(cacheFiles()[0] ?? '', new RegExp(`^${'ab'.repeat(20)}-\\d+-1000000000-${process.version}-`));
  // edited by hand: same name line, same length, another mtime
  named('B');
  utimesSync(bundle, 1_000_001, 1_000_001);
  const result = run(['ps']);
  assert.equal(result.stdout, 'B:ps:3', result.stderr);
  assert.equal(cacheFiles().length, 2);
});
