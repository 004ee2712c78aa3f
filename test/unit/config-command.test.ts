/** `tsfig config`: output formats and flags, the shared project options, and the planner's config hash. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Command } from 'commander';
import { parse } from 'yaml';
import {
  addProjectOptions,
  loadProjectFromOptions,
  registerConfigCommand,
  runConfig,
} from '../../src/cli/commands/config.js';
import { exitCodeOfKind } from '../../src/cli/exit-codes.js';
import { ConfigError } from '../../src/config/diagnostics.js';
import { loadProject } from '../../src/config/load.js';
import { TsfigError } from '../../src/errors.js';
import type { Service } from '../../src/model/project.js';
import { canonicalJson, serviceConfigHash } from '../../src/planner/hash.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-config-cmd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(
  path.join(dir, 'compose.yaml'),
  `name: shop
services:
  web:
    image: nginx:\${TAG:-1.27}
    restart: "no"
    depends_on: [db]
    ports: ["8080:80"]
  db:
    image: postgres:16
    volumes: [data:/var/lib/postgresql/data]
  worker:
    build: ./worker
    profiles: [jobs]
  debug:
    image: busybox
    profiles: [debug, jobs]
volumes:
  data:
`,
);
writeFileSync(path.join(dir, 'broken.yaml'), 'services:\n  web:\n    image: nginx\n    prots: ["80"]\n');

const base = { format: 'yaml', interpolate: true } as const;
const extras = { cwd: dir, env: { HOME: '/home/user' }, warn: () => undefined };

describe('tsfig config', () => {
  test('prints the normalised project as YAML with sorted keys, quoting YAML 1.1 booleans', () => {
    const out = runConfig([], base, extras);
    const doc = parse(out) as { name: string; services: Record<string, { restart: string; image: string }> };
    assert.equal(doc.name, 'shop');
    assert.deepEqual(Object.keys(doc.services), ['db', 'web']);
    assert.equal(doc.services.web?.image, 'nginx:1.27');
    assert.match(out, /restart: "no"/);
    const keys = [...out.matchAll(/^ {4}(\w+):/gm)].map((m) => m[1] ?? '');
    assert.deepEqual(keys.slice(0, 3), [...keys.slice(0, 3)].sort());
  });

  test('prints JSON with --format json, stable across runs', () => {
    const first = runConfig([], { ...base, format: 'json' }, extras);
    const second = runConfig([], { ...base, format: 'json' }, extras);
    assert.equal(first, second);
    const doc = JSON.parse(first) as { volumes: Record<string, { name: string }> };
    assert.equal(doc.volumes.data?.name, 'shop_data');
  });

  test('--services, --volumes, --profiles and --images print one item per line', () => {
    assert.equal(runConfig([], { ...base, services: true }, extras), 'db\nweb\n');
    assert.equal(runConfig([], { ...base, volumes: true }, extras), 'data\n');
    assert.equal(runConfig([], { ...base, profiles: true }, extras), 'debug\njobs\n');
    assert.equal(
      runConfig([], { ...base, images: true, profile: ['jobs'] }, extras),
      'db postgres:16\ndebug busybox\nweb nginx:1.27\nworker shop-worker\n',
    );
  });

  test('a service named on the command line enables its profiles', () => {
    assert.equal(runConfig(['worker'], { ...base, services: true }, extras), 'db\ndebug\nweb\nworker\n');
  });

  test('-q prints nothing for a valid project and throws ConfigError (exit 65) for an invalid one', () => {
    assert.equal(runConfig([], { ...base, quiet: true }, extras), '');
    assert.throws(
      () => runConfig([], { ...base, quiet: true, file: ['broken.yaml'] }, extras),
      (error: unknown) =>
        error instanceof ConfigError &&
        exitCodeOfKind(error.kind) === 65 &&
        error.message.includes('broken.yaml:4:5: error: services.web: unknown key "prots"') &&
        !error.message.includes('    at '),
    );
  });

  test('--no-interpolate leaves ${VARIABLES} as written', () => {
    const doc = parse(runConfig([], { ...base, interpolate: false }, extras)) as {
      services: { web: { image: string } };
    };
    assert.equal(doc.services.web.image, 'nginx:${TAG:-1.27}');
  });

  test('--hash prints the planner hash of one, several or all services', () => {
    const all = runConfig([], { ...base, hash: '*' }, extras);
    assert.match(all, /^db [0-9a-f]{64}\nweb [0-9a-f]{64}\n$/);
    assert.equal(runConfig([], { ...base, hash: 'web' }, extras), all.split('\n')[1] + '\n');
    assert.throws(
      () => runConfig([], { ...base, hash: 'nope' }, extras),
      (e: unknown) => e instanceof TsfigError && e.kind === 'usage',
    );
  });

  test('the command and the project options parse through commander', () => {
    const program = new Command('tsfig').exitOverride();
    registerConfigCommand(program);
    const config = program.commands.find((c) => c.name() === 'config');
    assert.ok(config);
    const flags = config.options.map((o) => o.long);
    for (const flag of [
      '--file',
      '--project-name',
      '--project-directory',
      '--env-file',
      '--profile',
      '--format',
      '--services',
      '--volumes',
      '--profiles',
      '--images',
      '--quiet',
      '--no-interpolate',
      '--hash',
    ]) {
      assert.ok(flags.includes(flag), flag);
    }
    const cmd = addProjectOptions(new Command('up').exitOverride());
    cmd.parse(['-f', 'a.yaml', '-f', 'b.yaml', '-p', 'x', '--profile', 'p1', '--profile', 'p2', '--env-file', 'e1'], {
      from: 'user',
    });
    assert.deepEqual(cmd.opts(), {
      file: ['a.yaml', 'b.yaml'],
      projectName: 'x',
      profile: ['p1', 'p2'],
      envFile: ['e1'],
    });
  });

  test('loadProjectFromOptions prints warnings through the given writer', () => {
    writeFileSync(path.join(dir, 'warn.yaml'), 'services:\n  a:\n    image: "a:${UNSET_TAG}"\n');
    const lines: string[] = [];
    loadProjectFromOptions({ file: ['warn.yaml'] }, { cwd: dir, env: {}, warn: (t) => lines.push(t) });
    assert.match(lines.join(''), /warn\.yaml:3:12: warning: the "UNSET_TAG" variable is not set/);
  });
});

describe('-f - reads the project from standard input', () => {
  test('positions name <stdin> and relative paths resolve against the working directory', () => {
    const stdin = () => 'services:\n  app:\n    image: app\n    volumes: [./data:/data]\n    prots: []\n';
    assert.throws(
      () => loadProject({ files: ['-'], cwd: dir, env: {}, stdin }),
      (error: unknown) =>
        error instanceof ConfigError && error.message.includes('<stdin>:5:5: error: services.app: unknown key "prots"'),
    );
    const ok = () => 'services:\n  app:\n    image: app\n    volumes: [./data:/data]\n';
    const { project } = loadProject({ files: ['-'], cwd: dir, env: {}, stdin: ok });
    assert.equal(project.services.app?.volumes[0]?.source, path.join(dir, 'data'));
    assert.equal(
      project.name,
      path
        .basename(dir)
        .toLowerCase()
        .replace(/[^a-z0-9_-]/g, ''),
    );
  });
});

describe('serviceConfigHash', () => {
  const load = () => loadProjectFromOptions({}, { ...extras, services: ['worker'] }).project;

  test('is stable and ignores scale, depends_on, build, pull_policy and profiles', () => {
    const web = load().services.web as Service;
    const hash = serviceConfigHash(web);
    assert.equal(hash, serviceConfigHash(load().services.web as Service));
    const changedIgnored: Service = {
      ...web,
      scale: 5,
      depends_on: {},
      pull_policy: 'always',
      profiles: ['x'],
      build: undefined,
    };
    assert.equal(serviceConfigHash(changedIgnored), hash);
    assert.notEqual(serviceConfigHash({ ...web, image: 'nginx:1.28' }), hash);
    assert.notEqual(serviceConfigHash({ ...web, environment: { A: '1' } }), hash);
  });

  test('canonicalJson sorts keys at every level and drops undefined', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [2, { y: 1, x: undefined }], c: null } }),
      '{"a":{"c":null,"d":[2,{"y":1}]},"b":1}',
    );
  });
});
