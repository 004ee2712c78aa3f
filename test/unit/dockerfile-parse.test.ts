import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatDiagnostics, parseDockerfile, suggestInstruction } from '../../engine/build/dockerfile.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dockerfile');
const update = process.env.UPDATE_GOLDEN === '1';

function cases(kind: 'valid' | 'invalid'): string[] {
  return readdirSync(path.join(FIXTURES, kind)).sort();
}

describe('Dockerfile parser: valid corpus (golden parse trees)', () => {
  for (const name of cases('valid')) {
    test(name, () => {
      const dir = path.join(FIXTURES, 'valid', name);
      const result = parseDockerfile(readFileSync(path.join(dir, 'Dockerfile'), 'utf8'));
      assert.equal(formatDiagnostics(result.errors), '', 'a valid Dockerfile has no errors');
      const actual = `${JSON.stringify(result.dockerfile, null, 2)}\n`;
      const golden = path.join(dir, 'expected.json');
      if (update || !existsSync(golden)) writeFileSync(golden, actual);
      assert.equal(actual, readFileSync(golden, 'utf8'));
    });
  }
});

describe('Dockerfile parser: invalid corpus (golden errors)', () => {
  for (const name of cases('invalid')) {
    test(name, () => {
      const dir = path.join(FIXTURES, 'invalid', name);
      const result = parseDockerfile(readFileSync(path.join(dir, 'Dockerfile'), 'utf8'));
      const expected = readFileSync(path.join(dir, 'expected.txt'), 'utf8').trimEnd();
      assert.equal(formatDiagnostics(result.errors), expected);
    });
  }
});

describe('Dockerfile parser: details', () => {
  test('did-you-mean suggests the closest instruction, none when too far', () => {
    assert.equal(suggestInstruction('RUNN'), 'RUN');
    assert.equal(suggestInstruction('workdri'), 'WORKDIR');
    assert.equal(suggestInstruction('entrypiont'), 'ENTRYPOINT');
    assert.equal(suggestInstruction('XYZZY'), undefined);
  });

  test('the corpus holds at least 40 valid and 40 invalid Dockerfiles', () => {
    assert.ok(cases('valid').length >= 40, `${cases('valid').length} valid`);
    assert.ok(cases('invalid').length >= 40, `${cases('invalid').length} invalid`);
  });
});
