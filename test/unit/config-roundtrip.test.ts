/**
 * `tsfig config` output loads back: for every valid fixture of test/fixtures/config and every example, the printed
 * project (YAML), loaded again as a project file, prints the same project (compose's `config | config` round trip).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configText } from '../../src/cli/commands/config.js';
import { loadProject, type LoadOptions } from '../../src/config/load.js';

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.join(repo, 'test', 'fixtures', 'config', 'valid');
const work = mkdtempSync(path.join(tmpdir(), 'tsfig-config-roundtrip-'));
after(() => rmSync(work, { recursive: true, force: true }));

type FixtureOptions = Omit<LoadOptions, 'env'> & { readonly env?: Record<string, string> };

function optionsOf(dir: string): LoadOptions {
  const file = path.join(dir, 'options.json');
  const options: FixtureOptions = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FixtureOptions) : {};
  return { ...options, cwd: path.resolve(dir, options.cwd ?? '.'), env: { HOME: '/home/user', ...options.env } };
}

const print = (options: LoadOptions, format: 'yaml' | 'json' = 'yaml') =>
  configText(loadProject(options).project, [], format);

const cases = [
  ...readdirSync(fixtures)
    .sort()
    .map((name) => ({ name: `fixture ${name}`, options: optionsOf(path.join(fixtures, name)) })),
  ...readdirSync(path.join(repo, 'examples'))
    .sort()
    .map((name) => ({ name: `example ${name}`, options: { cwd: path.join(repo, 'examples', name), env: {} } })),
];

describe('config output loads back to the same project', () => {
  cases.forEach(({ name, options }, index) => {
    test(name, () => {
      const first = print(options);
      const file = path.join(work, `${index}.yaml`);
      writeFileSync(file, first);
      const project = loadProject(options).project;
      // Loaded from elsewhere, with no environment: everything it needs is in the printed file.
      // The same active profiles (the output keeps each service's `profiles:`) and services named on the command line.
      const again = print({
        files: [file],
        cwd: work,
        env: {},
        projectDirectory: project.project_directory,
        profiles: project.profiles,
        services: (options as LoadOptions).services ?? [],
      });
      assert.equal(again, first);
    });
  });
});
