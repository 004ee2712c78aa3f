/**
 * Golden tests of `tsfig kube generate` over the three examples, every valid config fixture and every conformance
 * project (test/conformance/scenarios): the warnings and
 * errors (with file:line:col) and the manifests, in test/golden/kube/<name>.yaml, with absolute paths written
 * `<dir>`. Every generated object must also match the Kubernetes schema (kubernetes-models, v1.33.0). Regenerate
 * with UPDATE_GOLDEN=1 and review the diff before committing.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatDiagnostics } from '../../src/config/diagnostics.js';
import { loadProject } from '../../src/config/load.js';
import type { LoadOptions } from '../../src/config/load.js';
import { generate, type GenerateOptions } from '../../src/kube/generate.js';
import { positionIndex } from '../../src/kube/positions.js';
import { renderStream } from '../../src/kube/render.js';
import { validateObjects } from '../../src/kube/validate.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '..', '..');
const goldenDir = path.join(repo, 'test', 'golden', 'kube');
const fixtures = path.join(repo, 'test', 'fixtures', 'config', 'valid');
const scenarios = path.join(repo, 'test', 'conformance', 'scenarios');
/** Conformance projects that do not load as a whole with their default files, and why. */
const UNLOADABLE: Record<string, string> = {
  'env-file-other-missing': "its point is a service's missing env_file, which generating every service must read",
  'merge-files': 'its files are given with -f in the scenario',
  'e2e-up-image-id': 'its image is ${ID:?}, the id the scenario reads from the engine and passes in the environment',
};
const update = process.env.UPDATE_GOLDEN === '1';

interface Case {
  readonly name: string;
  readonly dir: string;
  readonly load: LoadOptions;
  readonly options?: Partial<GenerateOptions>;
}

function fixtureLoad(dir: string): LoadOptions {
  const file = path.join(dir, 'options.json');
  const options = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as LoadOptions & { cwd?: string; env?: Record<string, string> })
    : {};
  return { ...options, cwd: path.resolve(dir, options.cwd ?? '.'), env: { HOME: '/home/user', ...options.env } };
}

const examples = ['data-container', 'migration', 'redis-app'];
const cases: Case[] = [
  ...examples.map((name) => {
    const dir = path.join(repo, 'examples', name);
    return { name: `example-${name}`, dir, load: { cwd: dir, env: { HOME: '/home/user' } } };
  }),
  {
    name: 'example-redis-app-hostpath-nodeport',
    dir: path.join(repo, 'examples', 'redis-app'),
    load: { cwd: path.join(repo, 'examples', 'redis-app'), env: { HOME: '/home/user' } },
    options: { allowHostpath: true, serviceType: 'NodePort', namespace: 'demo' },
  },
  ...readdirSync(fixtures)
    .sort()
    .map((name) => ({
      name: `fixture-${name}`,
      dir: path.join(fixtures, name),
      load: fixtureLoad(path.join(fixtures, name)),
    })),
  // The conformance projects (test/conformance/scenarios): compose files written for docker-compose.
  ...readdirSync(scenarios)
    .filter((name) => !(name in UNLOADABLE))
    .sort()
    .map((name) => {
      const dir = path.join(scenarios, name);
      return { name: `conformance-${name}`, dir, load: { cwd: dir, env: { HOME: '/home/user' } } };
    }),
  {
    name: 'fixture-volumes-syntaxes-pvc',
    dir: path.join(fixtures, 'volumes-syntaxes'),
    load: fixtureLoad(path.join(fixtures, 'volumes-syntaxes')),
    options: { pvc: true },
  },
];

/** The golden text of one case, and the objects, for the schema check. */
function render(c: Case) {
  const loaded = loadProject(c.load);
  const positions = positionIndex(loaded.project.config_files);
  const result = generate(loaded.project, {
    positions,
    readFile: (file) => readFileSync(file),
    env: c.load.env ?? {},
    ...c.options,
  });
  const sources = new Map([...loaded.sources, ...positions.sources]);
  const notes = formatDiagnostics(result.diagnostics, sources, c.dir)
    .split('\n')
    .filter((line) => line !== '' && !/^\s*\d* \|/.test(line))
    .map((line) => `# ${line}`);
  const errors = result.diagnostics.some((d) => d.severity === 'error');
  const text = `${notes.join('\n')}${notes.length > 0 ? '\n' : ''}${errors ? '' : renderStream(result.objects)}`;
  return { text: text.replaceAll(c.dir, '<dir>').replaceAll(repo, '<repo>'), objects: errors ? [] : result.objects };
}

describe('kube generate goldens', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const { text, objects } = render(c);
      const file = path.join(goldenDir, `${c.name}.yaml`);
      if (update) writeFileSync(file, text);
      assert.equal(text, readFileSync(file, 'utf8'));
      assert.deepEqual(await validateObjects(objects), []);
    });
  }
});
