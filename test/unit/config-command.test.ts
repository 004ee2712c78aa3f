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
  test('prints the project in compose v2 canonical form: compose-go field order, only what was written', () => {
    const out = runConfig([], base, extras);
    const doc = parse(out) as { name: string; services: Record<string, { restart: string; image: string }> };
    assert.equal(doc.name, 'shop');
    assert.deepEqual(Object.keys(doc), ['name', 'services', 'networks', 'volumes']);
    assert.deepEqual(Object.keys(doc.services), ['db', 'web']);
    assert.equal(doc.services.web?.image, 'nginx:1.27');
    // written as "no" (quoted: a YAML 1.1 boolean); db's restart, scale, stop_grace_period and pull_policy are not
    assert.match(out, /restart: "no"/);
    assert.deepEqual(Object.keys(doc.services.web ?? {}), ['depends_on', 'image', 'networks', 'ports', 'restart']);
    assert.deepEqual(Object.keys(doc.services.db ?? {}), ['image', 'networks', 'volumes']);
    assert.match(out, /\n {4}networks:\n {6}default: null\n/);
    assert.match(out, /\n {6}- mode: ingress\n {8}target: 80\n {8}published: "8080"\n {8}protocol: tcp\n/);
    assert.match(out, /\nnetworks:\n {2}default:\n {4}name: shop_default\n/);
  });

  test('prints what compose v2 prints for its e2e TestConfig project', () => {
    const project = mkdtempSync(path.join(dir, 'testconfig-'));
    writeFileSync(
      path.join(project, 'compose.yaml'),
      'services:\n  nginx:\n    build:\n      context: nginx-build\n      dockerfile: Dockerfile\n',
    );
    const name = path.basename(project).toLowerCase();
    assert.equal(
      runConfig([], base, { ...extras, cwd: project }),
      `name: ${name}\nservices:\n  nginx:\n    build:\n      context: ${project}/nginx-build\n` +
        `      dockerfile: Dockerfile\n    networks:\n      default: null\nnetworks:\n  default:\n` +
        `    name: ${name}_default\n`,
    );
  });

  test('prints JSON with --format json, stable across runs, top-level keys sorted and command/entrypoint null', () => {
    const first = runConfig([], { ...base, format: 'json' }, extras);
    const second = runConfig([], { ...base, format: 'json' }, extras);
    assert.equal(first, second);
    const doc = JSON.parse(first) as {
      volumes: Record<string, { name: string }>;
      services: Record<string, Record<string, unknown>>;
    };
    assert.equal(doc.volumes.data?.name, 'shop_data');
    assert.deepEqual(Object.keys(doc), ['name', 'networks', 'services', 'volumes']);
    assert.deepEqual(Object.keys(doc.services.db ?? {}), ['command', 'entrypoint', 'image', 'networks', 'volumes']);
    assert.equal(doc.services.db?.command, null);
    assert.match(first, /"published": "8080"/);
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

  test('--no-interpolate prints the model as written (sorted keys, compose normalisation), warning on services', () => {
    writeFileSync(
      path.join(dir, 'ports.yaml'),
      'services:\n  test:\n    image: test\n    ports:\n      - ${PORT:-8080}:80\n    build: ./ctx\n',
    );
    const warnings: string[] = [];
    const options = { ...base, interpolate: false, file: ['ports.yaml'], projectName: 'p' };
    const out = runConfig(['test'], options, { ...extras, warn: (t) => warnings.push(t) });
    assert.equal(
      out,
      `name: p\nnetworks:\n  default:\n    name: p_default\nservices:\n  test:\n    build:\n` +
        `      context: ${dir}/ctx\n      dockerfile: Dockerfile\n    image: test\n    networks:\n` +
        `      default: null\n    ports:\n      - ${'${PORT:-8080}'}:80\n`,
    );
    assert.match(warnings.join(''), /service filtering is not applied when --no-interpolate is set/);
    assert.match(runConfig([], { ...options, format: 'json' }, extras), /"\$\{PORT:-8080\}:80"/);
  });

  test('--variables prints the variables with their defaults as a table, JSON or YAML', () => {
    writeFileSync(
      path.join(dir, 'vars.yaml'),
      'services:\n  a:\n    image: "${IMG:?need it}:${TAG-${DEF:+x}}"\n    command: echo $$HOME $PLAIN\n',
    );
    const options = { ...base, variables: true, file: ['vars.yaml'], format: undefined };
    const row = (...cells: string[]) =>
      cells
        .map((cell, i) => (i < 3 ? cell.padEnd(20) : cell))
        .join('')
        .trimEnd();
    const table = runConfig([], options, extras)
      .split('\n')
      .map((line) => line.trimEnd())
      .join('\n');
    assert.equal(
      table,
      [
        row('NAME', 'REQUIRED', 'DEFAULT VALUE', 'ALTERNATE VALUE'),
        row('DEF', 'false', '', 'x'),
        row('IMG', 'true', '', ''),
        row('PLAIN', 'false', '', ''),
        row('TAG', 'false', '${DEF:+x}', ''),
        '',
      ].join('\n'),
    );
    const json = JSON.parse(runConfig([], { ...options, format: 'json' }, extras)) as Record<string, unknown>;
    assert.deepEqual(json.TAG, { Name: 'TAG', DefaultValue: '${DEF:+x}', PresenceValue: '', Required: false });
    assert.match(
      runConfig([], { ...options, format: 'yaml' }, extras),
      /^IMG:\n {4}name: IMG\n {4}defaultvalue: ""\n {4}presencevalue: ""\n {4}required: true$/m,
    );
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
      '--variables',
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
