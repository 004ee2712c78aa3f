/** A missing env_file is an error only for the services a command works on (compose v2; its e2e locks it). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../../src/config/diagnostics.js';
import { loadProject } from '../../src/config/load.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-env-in-play-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  path.join(dir, 'compose.yaml'),
  `services:
  a:
    image: busybox
  b:
    image: busybox
    env_file: missing.env
  c:
    image: busybox
    depends_on: [b]
`,
);
const load = (services: string[], lenientEnvFiles = false) =>
  loadProject({ cwd: dir, env: {}, services, lenientEnvFiles });
const missing = (error: unknown) =>
  error instanceof ConfigError &&
  error.diagnostics.some(
    (d) => d.message === `services.b.env_file: file ${path.join(dir, 'missing.env')} does not exist`,
  );

test('a service not in play does not need its env files', () => {
  assert.deepEqual(Object.keys(load(['a']).project.services).sort(), ['a', 'b', 'c']);
});

test('the missing file is an error naming it when its service is in play: named, a dependency, or all', () => {
  assert.throws(() => load(['b']), missing);
  assert.throws(() => load(['c']), missing);
  assert.throws(() => load([]), missing);
});

test('a load that only reads the names never needs env files', () => {
  assert.deepEqual(Object.keys(load([], true).project.services).sort(), ['a', 'b', 'c']);
});
