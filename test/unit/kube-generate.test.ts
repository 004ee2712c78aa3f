/** `kube generate` mappings one by one, from compose text written to a temporary project. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadProject } from '../../src/config/load.js';
import { generate, kubeName, type GenerateOptions } from '../../src/kube/generate.js';
import type {
  IConfigMap,
  IDeployment,
  IJob,
  INetworkPolicy,
  IPersistentVolumeClaim,
  ISecret,
  IService,
  IStatefulSet,
  KubeObject,
} from '../../src/kube/objects.js';
import { positionIndex } from '../../src/kube/positions.js';
import { validateObjects } from '../../src/kube/validate.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function gen(yaml: string, options: Partial<GenerateOptions> = {}, files: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-kube-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'compose.yaml'), yaml);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const { project } = loadProject({ cwd: dir, env: { HOME: '/home/user' } });
  const result = generate(project, {
    positions: positionIndex(project.config_files),
    readFile: (f) => readFileSync(f),
    ...options,
  });
  if (!result.diagnostics.some((d) => d.severity === 'error'))
    assert.deepEqual(await validateObjects(result.objects), []);
  const find = <T extends KubeObject>(kind: T['kind'], name: string): T => {
    const found = result.objects.find((o) => o.kind === kind && o.metadata?.name === name);
    assert.ok(found, `no ${kind}/${name} in ${result.objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
    return found as T;
  };
  const messages = result.diagnostics.map(
    (d) => `${d.position?.line}:${d.position?.column} ${d.severity}: ${d.message}`,
  );
  return { ...result, find, messages };
}

test('kubeName makes DNS labels', () => {
  assert.equal(kubeName('db_main'), 'db-main');
  assert.equal(kubeName('Api.V2'), 'api-v2');
  assert.equal(kubeName('1st'), 's-1st');
  assert.equal(kubeName('x'.repeat(80)).length, 63);
});

test('a build: service without image is an error at its build key, with the push hint', async () => {
  const r = await gen('services:\n  web:\n    build: .\n');
  const error = r.diagnostics.find((d) => d.severity === 'error');
  assert.ok(error);
  assert.equal(error.message, 'services.web.build has no image: the cluster cannot build it');
  assert.deepEqual([error.position?.line, error.position?.column], [3, 5]);
  assert.match(error.hint ?? '', /set services\.web\.image .* tsfig push web/);
});

test('a bind mount is a warning at its line, or a hostPath with allowHostpath', async () => {
  const yaml = 'services:\n  web:\n    image: nginx\n    volumes:\n      - ./site:/usr/share/nginx/html:ro\n';
  const plain = await gen(yaml);
  assert.ok(
    plain.messages.some((m) =>
      /^5:9 warning: services\.web\.volumes\[0\] bind mount of .*\/site on \/usr\/share\/nginx\/html/.test(m),
    ),
    plain.messages.join('\n'),
  );
  assert.equal(plain.find<IDeployment>('Deployment', 'web').spec?.template.spec?.volumes, undefined);
  const host = await gen(yaml, { allowHostpath: true });
  const spec = host.find<IDeployment>('Deployment', 'web').spec?.template.spec;
  assert.match(spec?.volumes?.[0]?.hostPath?.path ?? '', /\/site$/);
  assert.deepEqual(spec?.containers[0]?.volumeMounts, [
    { name: 'host-site', mountPath: '/usr/share/nginx/html', readOnly: true },
  ]);
});

test('named volumes make a StatefulSet with claim templates, or shared PVCs with --pvc', async () => {
  const yaml =
    'services:\n  db:\n    image: postgres\n    volumes: [data:/var/lib/postgresql/data]\nvolumes:\n  data: {}\n';
  const sts = (await gen(yaml)).find<IStatefulSet>('StatefulSet', 'db');
  assert.equal(sts.spec?.volumeClaimTemplates?.[0]?.metadata?.name, 'data');
  assert.deepEqual(sts.spec?.template.spec?.containers[0]?.volumeMounts, [
    { name: 'data', mountPath: '/var/lib/postgresql/data' },
  ]);
  const pvc = await gen(yaml, { pvc: true, volumeSize: '5Gi' });
  assert.equal(
    pvc.find<IPersistentVolumeClaim>('PersistentVolumeClaim', 'data').spec?.resources?.requests?.storage,
    '5Gi',
  );
  const deployment = pvc.find<IDeployment>('Deployment', 'db');
  assert.equal(deployment.spec?.template.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName, 'data');
  assert.equal(deployment.spec?.strategy?.type, 'Recreate');
});

test('a one-shot service others wait on is a Job; dependents wait with init containers', async () => {
  const r = await gen(
    [
      'services:',
      '  db:',
      '    image: redis',
      '    expose: ["6379"]',
      '    healthcheck: {test: [CMD, redis-cli, ping], interval: 2s, retries: 4, start_period: 10s}',
      '  migrate:',
      '    image: app',
      '    command: [migrate]',
      '    depends_on: {db: {condition: service_healthy}}',
      '  app:',
      '    image: app',
      '    depends_on: {migrate: {condition: service_completed_successfully}, db: {condition: service_started}}',
      '',
    ].join('\n'),
  );
  const job = r.find<IJob>('Job', 'migrate');
  assert.equal(job.spec?.template.spec?.restartPolicy, 'Never');
  assert.equal(job.spec?.backoffLimit, 0);
  assert.equal(job.spec?.template.spec?.initContainers?.[0]?.name, 'wait-for-db');
  assert.match(job.spec?.template.spec?.initContainers?.[0]?.command?.[2] ?? '', /nc -z -w 2 db 6379/);
  const app = r.find<IDeployment>('Deployment', 'app').spec?.template;
  assert.deepEqual(
    app?.spec?.initContainers?.map((c) => c.name),
    ['wait-for-db', 'wait-for-job-migrate'],
  );
  assert.match(app?.spec?.serviceAccountName ?? '', /^tsfig-kube-.*-job-waiter$/);
  assert.deepEqual(JSON.parse(app?.metadata?.annotations?.['io.tsfig.kube/depends-on'] ?? '{}'), {
    migrate: 'service_completed_successfully',
    db: 'service_started',
  });
  const db = r.find<IDeployment>('Deployment', 'db').spec?.template.spec?.containers[0];
  assert.deepEqual(db?.readinessProbe?.exec?.command, ['redis-cli', 'ping']);
  assert.equal(db?.readinessProbe?.periodSeconds, 2);
  assert.equal(db?.livenessProbe?.failureThreshold, 4);
  assert.equal(db?.startupProbe?.failureThreshold, 5 + 4);
  assert.ok(r.objects.some((o) => o.kind === 'Role') && r.objects.some((o) => o.kind === 'RoleBinding'));
});

test('ports: a Service named after the service, aliases as Services, published ports in <name>-published', async () => {
  const r = await gen(
    'services:\n  web:\n    image: nginx\n    ports: ["8080:80", "9000"]\n    networks:\n      default:\n        aliases: [www]\n',
    { serviceType: 'NodePort' },
  );
  assert.deepEqual(
    r.find<IService>('Service', 'web').spec?.ports?.map((p) => p.port),
    [80, 9000],
  );
  assert.deepEqual(
    r.find<IService>('Service', 'www').spec?.selector,
    r.find<IService>('Service', 'web').spec?.selector,
  );
  const published = r.find<IService>('Service', 'web-published');
  assert.equal(published.spec?.type, 'NodePort');
  assert.deepEqual(published.spec?.ports, [{ name: 'tcp-8080', port: 8080, targetPort: 80, protocol: 'TCP' }]);
  assert.ok(r.messages.some((m) => /8080 is outside the NodePort range/.test(m)));
});

test('networks become NetworkPolicies: ingress only from pods on a shared network', async () => {
  const r = await gen(
    [
      'services:',
      '  proxy: {image: nginx, networks: [front], ports: ["80:80"]}',
      '  app: {image: app, networks: [front, back]}',
      '  db: {image: db, networks: [back]}',
      'networks:',
      '  front: {}',
      '  back: {internal: true}',
      '',
    ].join('\n'),
  );
  const db = r.find<INetworkPolicy>('NetworkPolicy', 'db');
  assert.deepEqual(db.spec?.ingress, [
    { from: [{ podSelector: { matchLabels: { 'io.tsfig.network/back': 'true' } } }] },
  ]);
  assert.deepEqual(db.spec?.policyTypes, ['Ingress', 'Egress']);
  const proxy = r.find<INetworkPolicy>('NetworkPolicy', 'proxy');
  assert.deepEqual(proxy.spec?.ingress?.[1], { ports: [{ port: 80, protocol: 'TCP' }] });
  assert.deepEqual(proxy.spec?.policyTypes, ['Ingress']);
  const labels = r.find<IDeployment>('Deployment', 'app').spec?.template.metadata?.labels ?? {};
  assert.equal(labels['io.tsfig.network/front'], 'true');
  assert.equal(labels['io.tsfig.network/back'], 'true');
});

test('environment goes to a ConfigMap, secrets and configs are mounted at their compose paths', async () => {
  const r = await gen(
    [
      'services:',
      '  app:',
      '    image: app',
      '    environment: {A: "1", B: "two"}',
      '    secrets: [{source: token, target: api.key, mode: 0400}]',
      '    configs: [{source: conf, target: /etc/app.conf}]',
      'secrets:',
      '  token: {file: ./token.txt}',
      'configs:',
      '  conf: {content: "debug=1\\n"}',
      '',
    ].join('\n'),
    {},
    { 'token.txt': 's3cret' },
  );
  assert.deepEqual(r.find<IConfigMap>('ConfigMap', 'app-env').data, { A: '1', B: 'two' });
  assert.equal(Buffer.from(r.find<ISecret>('Secret', 'token').data?.token ?? '', 'base64').toString(), 's3cret');
  const spec = r.find<IDeployment>('Deployment', 'app').spec?.template.spec;
  assert.deepEqual(spec?.containers[0]?.envFrom, [{ configMapRef: { name: 'app-env' } }]);
  assert.deepEqual(spec?.containers[0]?.volumeMounts, [
    { name: 'secret-token', mountPath: '/run/secrets/api.key', subPath: 'api.key', readOnly: true },
    { name: 'config-conf', mountPath: '/etc/app.conf', subPath: 'app.conf', readOnly: true },
  ]);
  assert.deepEqual(spec?.volumes?.[0]?.secret, {
    secretName: 'token',
    items: [{ key: 'token', path: 'api.key', mode: 0o400 }],
  });
});

test('security, resources, command and entrypoint', async () => {
  const r = await gen(
    [
      'services:',
      '  app:',
      '    image: app',
      '    entrypoint: [/bin/run]',
      '    command: [--fast]',
      '    working_dir: /srv',
      '    user: "1000:1000"',
      '    cap_add: [NET_ADMIN]',
      '    cap_drop: [ALL]',
      '    read_only: true',
      '    sysctls: {net.core.somaxconn: "1024"}',
      '    deploy: {replicas: 3, resources: {limits: {cpus: "0.5", memory: 256M}, reservations: {memory: 64M}}}',
      '    security_opt: [no-new-privileges:true]',
      '',
    ].join('\n'),
  );
  const deployment = r.find<IDeployment>('Deployment', 'app');
  assert.equal(deployment.spec?.replicas, 3);
  const c = deployment.spec?.template.spec?.containers[0];
  assert.deepEqual([c?.command, c?.args, c?.workingDir], [['/bin/run'], ['--fast'], '/srv']);
  assert.deepEqual(c?.securityContext, {
    runAsUser: 1000,
    runAsGroup: 1000,
    capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
  });
  assert.deepEqual(c?.resources, {
    limits: { cpu: '500m', memory: String(256 * 1024 * 1024) },
    requests: { memory: String(64 * 1024 * 1024) },
  });
  assert.deepEqual(deployment.spec?.template.spec?.securityContext?.sysctls, [
    { name: 'net.core.somaxconn', value: '1024' },
  ]);
});

test('only the services asked for are generated', async () => {
  const r = await gen('services:\n  a: {image: a}\n  b: {image: b}\n', { services: ['b'] });
  assert.deepEqual(
    r.objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata?.name),
    ['b'],
  );
});
