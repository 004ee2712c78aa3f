/**
 * Golden tests of the project loader over test/fixtures/config.
 *
 * valid/<name>/: project files, an optional `options.json` (LoadOptions plus `env`; `cwd` relative to the fixture),
 * and `expected.json`, the normalised project with every default filled in (renderProject; `tsfig config` prints it
 * in compose's canonical form, config-canonical.ts), with the fixture's absolute path written `<dir>`. Regenerate with UPDATE_GOLDEN=1 (valid fixtures only); review the diff before committing.
 * An optional `warnings.txt` holds the expected warnings (one `file:line:col: warning: ...` line each).
 *
 * invalid/<name>/: project files, optional `options.json`, and `expected.txt`, written by hand: the lines a user
 * reads (`file:line:col: error: message` and `  hint: ...`), without the source excerpt lines, which are derived.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderProject } from '../../src/cli/commands/config.js';
import { ConfigError, formatDiagnostics, sortDiagnostics } from '../../src/config/diagnostics.js';
import { loadProject } from '../../src/config/load.js';
import type { LoadOptions } from '../../src/config/load.js';
import { TsfigError } from '../../src/errors.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'config');
const update = process.env.UPDATE_GOLDEN === '1';

interface FixtureOptions extends Omit<LoadOptions, 'env'> {
  readonly env?: Record<string, string>;
}

function fixtureOptions(dir: string): LoadOptions {
  const file = path.join(dir, 'options.json');
  const options: FixtureOptions = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FixtureOptions) : {};
  return {
    ...options,
    cwd: path.resolve(dir, options.cwd ?? '.'),
    env: { HOME: '/home/user', ...options.env },
  };
}

function fixtureNames(kind: 'valid' | 'invalid'): string[] {
  return readdirSync(path.join(root, kind)).sort();
}

function fixtureDir(kind: 'valid' | 'invalid', name: string): string {
  return path.join(root, kind, name);
}

/** Lines a user reads, without excerpt lines (`   12 | ...` and the caret line). */
function userLines(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^\s*\d* \|/.test(line))
    .join('\n')
    .trim();
}

describe('valid project fixtures', () => {
  for (const name of fixtureNames('valid')) {
    test(name, () => {
      const dir = fixtureDir('valid', name);
      const options = fixtureOptions(dir);
      const result = loadProject(options);
      const json = `${JSON.stringify(renderProject(result.project), null, 2).replaceAll(dir, '<dir>')}\n`;
      const expectedFile = path.join(dir, 'expected.json');
      if (update) writeFileSync(expectedFile, json);
      assert.equal(json, readFileSync(expectedFile, 'utf8'));
      const warningsFile = path.join(dir, 'warnings.txt');
      const warnings = userLines(formatDiagnostics(result.warnings, result.sources, dir)).replaceAll(dir, '<dir>');
      if (existsSync(warningsFile)) assert.equal(warnings, readFileSync(warningsFile, 'utf8').trim());
    });
  }
});

describe('invalid project fixtures', () => {
  for (const name of fixtureNames('invalid')) {
    test(name, () => {
      const dir = fixtureDir('invalid', name);
      const options = fixtureOptions(dir);
      let caught: unknown;
      try {
        loadProject(options);
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof TsfigError, `expected a TsfigError, got ${String(caught)}`);
      let actual: string;
      if (caught instanceof ConfigError) {
        assert.equal(caught.kind, 'config');
        const errors = caught.diagnostics.filter((d) => d.severity === 'error');
        actual = userLines(formatDiagnostics(sortDiagnostics(errors), new Map(), dir));
      } else {
        actual = `error: ${caught.message}${caught.hint === undefined ? '' : `\n  hint: ${caught.hint}`}`;
      }
      const expected = readFileSync(path.join(dir, 'expected.txt'), 'utf8').trim();
      assert.equal(actual.replaceAll(dir, '<dir>'), expected);
    });
  }
});
