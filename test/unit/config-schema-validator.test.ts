import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// The compose-spec validator is compiled ahead of time; a schema or ajv change must regenerate it.
test('src/config/compose-spec.validate.ts is up to date with compose-spec.json', () => {
  const result = spawnSync(process.execPath, [path.join(repo, 'scripts', 'gen-compose-validator.js'), '--check'], {
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
});
