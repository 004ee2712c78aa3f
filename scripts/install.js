#!/usr/bin/env node
// npm's install script. In a git checkout (src/ and the TypeScript compiler present: `npm ci`, `npm install`) it
// builds everything: the native helper, the tsc output and the bundle. In the published package (`npm install -g
// tsfig`: dist/bundle/ is shipped, prepared by `npm pack`'s prepack) it builds only the native helper, and when the
// C toolchain or libseccomp is missing it says which Debian packages to install instead of a compiler's error.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const checkout = existsSync(path.join(root, 'src')) && existsSync(path.join(root, 'node_modules', 'typescript'));

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error !== undefined) return result.error.code === 'ENOENT' ? 127 : 1;
  return result.status ?? 1;
}

function have(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

const missing = [];
if (!have('make')) missing.push('make');
if (!have('cc')) missing.push('gcc (or build-essential)');
if (!have('pkg-config')) missing.push('pkg-config');
else if (spawnSync('pkg-config', ['--exists', 'libseccomp'], { stdio: 'ignore' }).status !== 0) {
  missing.push('libseccomp-dev');
}
if (missing.length > 0) {
  process.stderr.write(
    `tsfig: the native helper (C) cannot be built: missing ${missing.join(', ')}.\n` +
      `hint: on Debian or Ubuntu: apt-get install build-essential pkg-config libseccomp-dev, then reinstall tsfig\n`,
  );
  process.exit(1);
}

// The checkout builds with warnings as errors (CI's rule); an install on another compiler must not fail on a new
// warning, so the published package builds without -Werror.
if (run('make', ['-s', '-C', 'native', ...(checkout ? [] : ['WERROR='])]) !== 0) process.exit(1);
if (checkout) {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (run(process.execPath, [tsc, '-p', 'tsconfig.build.json']) !== 0) process.exit(1);
  if (run(process.execPath, [path.join(root, 'scripts', 'bundle.js')]) !== 0) process.exit(1);
} else if (!existsSync(path.join(root, 'dist', 'bundle', 'bin.js'))) {
  process.stderr.write('tsfig: this package has no dist/bundle/: it was packed without `npm run build`\n');
  process.exit(1);
}
