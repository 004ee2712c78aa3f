/** `kube play`'s translation of Kubernetes objects into a compose document (pure), and the plan it runs as `up -d`. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { convergeLocked } from '../../src/compose/up.js';
import { loadProject } from '../../src/config/load.js';
import { generate } from '../../src/kube/generate.js';
import { translate, type SourceObject } from '../../src/kube/play.js';
import { positionIndex } from '../../src/kube/positions.js';
import { observedEmpty } from '../helpers/project.js';
import { recordingContext } from '../helpers/recording-port.js';

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const sources = (objects: readonly object[]): SourceObject[] =>
  objects.map((object, i) => ({ object: object as Record<string, unknown>, file: 'x.yaml', line: i + 1 }));

test('generated redis-app manifests play back as the compose project they came from', () => {
  const dir = path.join(repo, 'examples', 'redis-app');
  const { project } = loadProject({ cwd: dir, env: { HOME: '/home/user', WEB_PORT: '8123' } });
  const { objects } = generate(project, { positions: positionIndex(project.config_files), allowHostpath: true });
  const result = translate(sources(objects), '/state/files');
  const web = result.compose.services.web ?? {};
  const redis = result.compose.services.redis ?? {};
  assert.deepEqual(web.depends_on, { redis: { condition: 'service_healthy' } });
  assert.deepEqual(web.ports, ['127.0.0.1:8123:8000/tcp']);
  assert.deepEqual(web.environment, { REDIS_HOST: 'redis' });
  assert.deepEqual(web.command, ['python3', '-u', 'app.py']);
  assert.equal(web.working_dir, '/app');
  assert.equal(web.restart, 'always');
  assert.deepEqual(web.volumes, [
    { type: 'bind', source: path.join(dir, 'app'), target: '/app', read_only: true, bind: { create_host_path: true } },
  ]);
  assert.deepEqual((redis.healthcheck as { test: string[] }).test, ['CMD', 'redis-cli', 'ping']);
  assert.deepEqual(Object.keys(result.compose.services).sort(), ['redis', 'web']);
  assert.ok(result.warnings.some((w) => /NetworkPolicy\/web: NetworkPolicy is not played/.test(w)));
});

test("a pod of two containers shares the first one's network; a Service becomes an alias; secrets become files", () => {
  const result = translate(
    sources([
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 's' },
        data: { token: Buffer.from('abc').toString('base64') },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'api', labels: { app: 'api' } },
        spec: {
          restartPolicy: 'Never',
          initContainers: [{ name: 'setup', image: 'busybox', command: ['true'] }],
          containers: [
            {
              name: 'main',
              image: 'app',
              ports: [{ containerPort: 80, hostPort: 8080 }],
              env: [{ name: 'T', valueFrom: { secretKeyRef: { name: 's', key: 'token' } } }],
              volumeMounts: [{ name: 'sec', mountPath: '/run/secrets/token', subPath: 'token' }],
            },
            { name: 'sidecar', image: 'proxy' },
          ],
          volumes: [{ name: 'sec', secret: { secretName: 's', defaultMode: 0o400 } }],
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'backend' },
        spec: { selector: { app: 'api' }, ports: [{ port: 80 }] },
      },
    ]),
    '/state/files',
  );
  const api = result.compose.services.api ?? {};
  assert.equal(api.restart, 'no');
  assert.deepEqual(api.ports, ['127.0.0.1:8080:80/tcp']);
  assert.deepEqual(api.environment, { T: 'abc' });
  assert.deepEqual(api.depends_on, { 'api-init-setup': { condition: 'service_completed_successfully' } });
  assert.deepEqual(api.networks, { default: { aliases: ['backend'] } });
  assert.deepEqual(api.volumes, [
    { type: 'bind', source: '/state/files/api/sec/token', target: '/run/secrets/token', read_only: true },
  ]);
  assert.deepEqual(result.files.get('api/sec/token'), { content: Buffer.from('abc'), mode: 0o400 });
  assert.equal(result.compose.services['api-sidecar']?.network_mode, 'service:api');
  assert.equal(result.compose.services['api-init-setup']?.restart, 'no');
});

test('kube play runs as up -d: a missing image is an image.pull of the plan (planImages), before the containers', async () => {
  const result = translate(
    sources([
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'one' },
        spec: { containers: [{ name: 'app', image: 'reg.example/app:1' }] },
      },
    ]),
    '/state/files',
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-kube-unit-'));
  try {
    writeFileSync(path.join(dir, 'compose.yaml'), stringify({ name: 'one', ...result.compose }, { version: '1.1' }));
    const { project } = loadProject({ files: [path.join(dir, 'compose.yaml')], cwd: dir, env: {}, interpolate: false });
    const missing = recordingContext({ ...observedEmpty(project), images: {} });
    const options = { project, services: [], plan: {}, detach: true };
    await convergeLocked(missing.ctx, { ...options, dryRun: true });
    assert.match(missing.stdout.text, /^v pull image reg\.example\/app:1 \(not present locally \(\w+\)\)\n\+ create /m);
    assert.deepEqual(missing.port.calls, [], 'a dry run calls nothing');
    const { port } = missing;
    port.pullImage = async (spec: { image: string }) => {
      port.calls.push(`pullImage ${spec.image}`);
      port.observed = { ...port.observed, images: { [spec.image]: { id: 'sha256:pulled' } } };
      return Promise.resolve();
    };
    await convergeLocked(missing.ctx, options);
    const calls: readonly string[] = missing.port.calls;
    assert.ok(calls.some((call) => call.startsWith('createContainer')));
    assert.equal(calls[0], 'pullImage reg.example/app:1', 'the pull comes first');
    // present: no pull
    const present = recordingContext(observedEmpty(project));
    await convergeLocked(present.ctx, options);
    assert.ok(!present.port.calls.some((call) => call.startsWith('pullImage')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
