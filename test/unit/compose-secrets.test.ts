/** Compose secrets and configs: loading, `config` output (values never printed) and the container spec. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { after, describe, test } from 'node:test';
import { runConfig } from '../../src/cli/commands/config.js';
import { ConfigError } from '../../src/config/diagnostics.js';
import { loadProject } from '../../src/config/load.js';
import { TsfigError } from '../../src/errors.js';
import { serviceContainerSpec } from '../../src/planner/container-spec.js';
import { FileContent } from '../../engine/volumes/files.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-secrets-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'hunter2-the-secret-value';

/** A project directory `name` holding compose.yaml with `text`. */
function write(name: string, text: string): string {
  const sub = path.join(dir, name);
  mkdirSync(sub, { recursive: true });
  writeFileSync(path.join(sub, 'compose.yaml'), text);
  return sub;
}

const PROJECT = `name: sec
services:
  app:
    image: busybox
    secrets:
      - pw
      - source: token
        target: api-token
        uid: "1000"
        gid: "1001"
        mode: 0440
      - source: key
        target: /etc/key.pem
    configs:
      - app_conf
      - source: inline
        target: conf/inline.txt
        mode: 0600
secrets:
  pw:
    environment: DB_PASSWORD
  token:
    file: ./token.txt
  key:
    file: ./key.pem
configs:
  app_conf:
    file: ./app.conf
  inline:
    content: "level=\${LEVEL:-info}"
`;

describe('compose secrets and configs', () => {
  const projectDir = write('main', PROJECT);
  const env = { HOME: '/home/u', DB_PASSWORD: SECRET };

  test('long and short syntax: targets, ids and octal modes as compose reads them', () => {
    const { project } = loadProject({ cwd: projectDir, env });
    const app = project.services.app;
    assert.ok(app !== undefined);
    assert.deepEqual(
      app.secrets.map((s) => [s.source, s.target, s.uid, s.gid, s.mode]),
      [
        ['pw', '/run/secrets/pw', undefined, undefined, undefined],
        ['token', '/run/secrets/api-token', '1000', '1001', 0o440],
        ['key', '/etc/key.pem', undefined, undefined, undefined],
      ],
    );
    assert.deepEqual(
      app.configs.map((c) => [c.source, c.target, c.mode]),
      [
        ['app_conf', '/app_conf', undefined],
        ['inline', '/conf/inline.txt', 0o600],
      ],
    );
    assert.equal(project.secrets.token?.file, path.join(projectDir, 'token.txt'));
    assert.equal(project.secrets.pw?.environment, 'DB_PASSWORD');
  });

  test('config (yaml and json) names the variable, never its value', () => {
    for (const format of ['yaml', 'json'] as const) {
      const out = runConfig([], { format, interpolate: true }, { cwd: projectDir, env, warn: () => undefined });
      assert.ok(!out.includes(SECRET), `${format} output holds the secret:\n${out}`);
      assert.match(out, /DB_PASSWORD/);
      assert.match(out, /level=info/, 'a content: config is printed as compose does');
    }
  });

  test('the container spec: file sources bound read-only, the rest written by the engine, values hidden', () => {
    const { project } = loadProject({ cwd: projectDir, env });
    const app = project.services.app;
    assert.ok(app !== undefined);
    const { spec, warnings } = serviceContainerSpec(project, app, 1, { configHash: 'h' });
    assert.deepEqual(warnings, []);
    const binds = spec.mounts.filter((m) => m.type === 'bind');
    assert.deepEqual(
      binds.map((m) => [m.target, m.type === 'bind' ? m.source : '', m.readonly]),
      [
        ['/etc/key.pem', path.join(projectDir, 'key.pem'), true],
        ['/app_conf', path.join(projectDir, 'app.conf'), true],
      ],
    );
    const files = spec.container.files ?? [];
    assert.deepEqual(
      files.map((f) => [f.destination, f.uid, f.gid, f.mode.toString(8)]),
      [
        ['/run/secrets/pw', 0, 0, '444'],
        ['/run/secrets/api-token', 1000, 1001, '440'],
        ['/conf/inline.txt', 0, 0, '600'],
      ],
    );
    const shown = [JSON.stringify(spec), inspect(spec, { depth: 20 }), String(files[0]?.content)].join('\n');
    assert.ok(!shown.includes(SECRET), 'the plan shows the secret');
    assert.match(JSON.stringify(files[0]), /"sha256":"[0-9a-f]{64}"/);
    assert.match(JSON.stringify(files[1]), /token\.txt/, 'a file source shows its path');
  });

  test('FileContent gives its bytes only through read()', async () => {
    const content = FileContent.of(SECRET);
    assert.equal((await content.read('x')).toString(), SECRET);
    assert.deepEqual(Object.keys(content), []);
    await assert.rejects(FileContent.fromFile(path.join(dir, 'missing')).read('secrets.x'), /does not exist/);
  });

  test('an unset variable, an external or a driver secret fails the plan with a clear error', () => {
    const { project } = loadProject({ cwd: projectDir, env: { HOME: '/home/u' } });
    const app = project.services.app;
    assert.ok(app !== undefined);
    assert.throws(
      () => serviceContainerSpec(project, app, 1, { configHash: 'h' }),
      (error: unknown) =>
        error instanceof TsfigError &&
        /environment variable "DB_PASSWORD" required by secret "pw" is not set/.test(error.message),
    );
    const external = write(
      'external',
      'services:\n  app:\n    image: busybox\n    secrets: [s]\nsecrets:\n  s:\n    external: true\n',
    );
    const loaded = loadProject({ cwd: external, env }).project;
    assert.throws(
      () => serviceContainerSpec(loaded, loaded.services.app!, 1, { configHash: 'h' }),
      /secrets\.s: external secrets live in a swarm cluster/,
    );
  });

  test('bad uid, gid, mode or target: errors at their position', () => {
    const bad = write(
      'bad',
      `services:
  app:
    image: busybox
    secrets:
      - source: s
        uid: www-data
      - source: s
        target: /proc/x
    configs:
      - source: c
        mode: rw
secrets:
  s:
    file: ./s
configs:
  c:
    file: ./c
`,
    );
    assert.throws(
      () => loadProject({ cwd: bad, env }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const text = error.message;
        assert.match(text, /uid.*"www-data" is not a numeric user or group id/);
        assert.match(text, /"\/proc\/x" cannot be a secret's or config's path/);
        assert.match(text, /mode.*not an octal file mode/);
        return true;
      },
    );
  });
});

describe('label_file and gw_priority', () => {
  test('label_file: KEY=VALUE files, later files win, labels: wins over all; a missing file is an error', () => {
    const project = write(
      'labels',
      `services:
  app:
    image: busybox
    label_file: [./a.labels, ./b.labels]
    labels:
      c: from-labels
    networks:
      back: {}
      front:
        gw_priority: 10
networks:
  front: {}
  back: {}
`,
    );
    writeFileSync(path.join(project, 'a.labels'), 'a=1\nb=from-a\n# comment\nc=from-a\n');
    writeFileSync(path.join(project, 'b.labels'), 'b=from-b\n');
    const loaded = loadProject({ cwd: project, env: {} }).project;
    const app = loaded.services.app;
    assert.ok(app !== undefined);
    assert.deepEqual(app.labels, { a: '1', b: 'from-b', c: 'from-labels' });
    const { spec, warnings } = serviceContainerSpec(loaded, app, 1, { configHash: 'h' });
    assert.deepEqual(warnings, []);
    assert.equal(spec.container.labels?.b, 'from-b');
    // gw_priority: the network with the highest one is attached first (it gives the default route)
    assert.ok(spec.network.mode === 'networks');
    assert.deepEqual(
      spec.network.networks.map((n) => n.network),
      [`${loaded.name}_front`, `${loaded.name}_back`],
    );
    rmSync(path.join(project, 'b.labels'));
    assert.throws(() => loadProject({ cwd: project, env: {} }), /label_file: file .*b\.labels does not exist/);
  });
});
