/**
 * `tsfig publish` and `-f oci://` against Debian's `docker-registry` (CNCF distribution 2.8) on a free 127.0.0.1
 * port: the artifact has docker compose's format (artifact type, layer media types, annotations), the published
 * project loads back to the same `config`, env files travel only with --with-env, and refusals push nothing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RegistryClient, pushArtifact } from '../../engine/registry/index.js';
import { runCli, type CliResult } from '../helpers/engine.js';
import { freePort } from '../helpers/registry.js';

function get(url: string, accept: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { Accept: accept } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe('tsfig publish and -f oci://', () => {
  let dir = '';
  let domain = '';
  let child: ChildProcess | undefined;
  let env: NodeJS.ProcessEnv = {};
  let project = '';

  before(async () => {
    dir = await fs.mkdtemp('/tmp/tsfig-publish-');
    const port = await freePort();
    domain = `127.0.0.1:${port}`;
    const config = path.join(dir, 'registry.yml');
    await fs.writeFile(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${dir}/registry`,
        'http:',
        `  addr: ${domain}`,
        '',
      ].join('\n'),
    );
    const log = await fs.open(path.join(dir, 'registry.log'), 'w');
    child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', log.fd, log.fd] });
    await log.close();
    for (let tries = 0; ; tries++) {
      const up = await get(`http://${domain}/v2/`, '*/*').then(
        (res) => res.status === 200,
        () => false,
      );
      if (up) break;
      if (tries > 150) throw new Error('docker-registry did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    env = {
      ...process.env,
      XDG_CACHE_HOME: path.join(dir, 'cache'),
      TSFIG_ROOT: path.join(dir, 'root'),
      TSFIG_REGISTRY_LOOPBACK_ONLY: '1',
    };
    project = path.join(dir, 'shop');
    await fs.mkdir(project);
    await fs.writeFile(
      path.join(project, 'compose.yaml'),
      [
        'name: shop',
        'services:',
        '  web:',
        '    image: tsfig/busybox',
        '    command: ["httpd", "-f", "-p", "8080"]',
        '    environment:',
        '      MODE: ${MODE:-prod}',
        '    depends_on:',
        '      db: { condition: service_healthy }',
        '    networks: [front, back]',
        '  db:',
        '    extends: { file: base.yaml, service: db }',
        '    networks: [back]',
        'networks:',
        '  front:',
        '  back:',
        '',
      ].join('\n'),
    );
    await fs.writeFile(
      path.join(project, 'base.yaml'),
      'services:\n  db:\n    image: tsfig/busybox\n    command: sleep 1000\n    healthcheck: { test: [CMD, "true"] }\n',
    );
  });

  after(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    if (dir !== '') await fs.rm(dir, { recursive: true, force: true });
  });

  const cli = (args: readonly string[], cwd = project): Promise<CliResult> => runCli(args, env, { cwd });

  test('publish pushes the files in compose format; -f oci:// gives the same config as the files', async () => {
    const published = await cli(['publish', `${domain}/shop/app:v1`]);
    assert.equal(published.code, 0, published.stderr);
    assert.match(published.stderr, / Artifact .*shop\/app:v1 {2}Published sha256:[0-9a-f]{64}\n/);
    assert.doesNotMatch(published.stderr, /OCI 1\.0/, 'the registry took the OCI 1.1 artifact');
    // --dry-run: the plan on stdout, with the files; nothing pushed
    const dry = await cli(['publish', '--dry-run', `${domain}/shop/dry:v1`]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /^& push artifact .*shop\/dry:v1 \(tsfig publish: compose\.yaml \(\d+ bytes\), [0-9a-f]{64}\.yaml/,
    );
    assert.equal((await get(`http://${domain}/v2/shop/dry/manifests/v1`, OCI_MANIFEST)).status, 404);

    const manifest = await get(`http://${domain}/v2/shop/app/manifests/v1`, OCI_MANIFEST);
    const parsed = JSON.parse(manifest.body) as {
      artifactType: string;
      config: { mediaType: string; size: number };
      layers: Array<{ mediaType: string; annotations: Record<string, string> }>;
    };
    assert.equal(parsed.artifactType, 'application/vnd.docker.compose.project');
    assert.equal(parsed.config.mediaType, 'application/vnd.oci.empty.v1+json');
    assert.deepEqual(
      parsed.layers.map((layer) => [layer.mediaType, layer.annotations['com.docker.compose.extends'] ?? '']),
      [
        ['application/vnd.docker.compose.file+yaml', ''],
        ['application/vnd.docker.compose.file+yaml', 'true'],
      ],
    );
    assert.equal(parsed.layers[0]?.annotations['com.docker.compose.file'], 'compose.yaml');
    assert.match(parsed.layers[1]?.annotations['com.docker.compose.file'] ?? '', /^[0-9a-f]{64}\.yaml$/);

    const original = await cli(['config']);
    assert.equal(original.code, 0, original.stderr);
    // from another directory too: nothing local is read, the project directory is where the command runs
    for (const cwd of [project, dir]) {
      const remote = await cli(['-f', `oci://${domain}/shop/app:v1`, 'config'], cwd);
      assert.equal(remote.code, 0, remote.stderr);
      assert.equal(remote.stdout, original.stdout);
    }
    const graph = await cli(['-f', `oci://${domain}/shop/app:v1`, 'graph'], dir);
    assert.match(graph.stdout, /^web \[networks: back, front\]\n└── db \(service_healthy\)/);
  });

  test('env files are published only with --with-env; without -y the question is refused and nothing is pushed', async () => {
    const withEnv = path.join(dir, 'withenv');
    await fs.mkdir(withEnv);
    await fs.writeFile(
      path.join(withEnv, 'compose.yaml'),
      'name: envy\nservices:\n  app:\n    image: tsfig/busybox\n    env_file: [app.env]\n',
    );
    await fs.writeFile(path.join(withEnv, 'app.env'), 'GREETING=hello from the env file\n');
    const refused = await runCli(['publish', `${domain}/envy/app:v1`], env, { cwd: withEnv, input: '' });
    assert.equal(refused.code, 64, refused.stderr);
    assert.match(refused.stderr, /publish cancelled: nothing was pushed/);
    assert.match(refused.stderr, /--with-env/);
    assert.equal((await get(`http://${domain}/v2/envy/app/manifests/v1`, OCI_MANIFEST)).status, 404);

    const published = await runCli(['publish', '--with-env', `${domain}/envy/app:v1`], env, { cwd: withEnv });
    assert.equal(published.code, 0, published.stderr);
    const manifest = JSON.parse((await get(`http://${domain}/v2/envy/app/manifests/v1`, OCI_MANIFEST)).body) as {
      layers: Array<{ mediaType: string; annotations: Record<string, string> }>;
    };
    const envLayer = manifest.layers.find((layer) => layer.mediaType === 'application/vnd.docker.compose.envfile');
    assert.match(envLayer?.annotations['com.docker.compose.envfile'] ?? '', /^[0-9a-f]{64}\.env$/);

    const original = await runCli(['config', '--format', 'json'], env, { cwd: withEnv });
    const remote = await runCli(['-f', `oci://${domain}/envy/app:v1`, 'config', '--format', 'json'], env, {
      cwd: withEnv,
    });
    assert.equal(remote.code, 0, remote.stderr);
    type Config = { services: { app: { environment: Record<string, string>; env_file: Array<{ path: string }> } } };
    const [a, b] = [JSON.parse(original.stdout) as Config, JSON.parse(remote.stdout) as Config];
    assert.deepEqual(b.services.app.environment, { GREETING: 'hello from the env file' });
    assert.deepEqual(b.services.app.environment, a.services.app.environment);
    // the env file is read from the artifact's copy, never from the publisher's path
    assert.notEqual(b.services.app.env_file[0]?.path, a.services.app.env_file[0]?.path);
    assert.ok(b.services.app.env_file[0]?.path.startsWith(path.join(dir, 'cache', 'tsfig', 'oci')));
  });

  test('--oci-version 1.0 pushes the compose config media type instead of artifactType, and loads back', async () => {
    const published = await cli(['publish', '--oci-version', '1.0', `${domain}/shop/legacy:v1`]);
    assert.equal(published.code, 0, published.stderr);
    const parsed = JSON.parse((await get(`http://${domain}/v2/shop/legacy/manifests/v1`, OCI_MANIFEST)).body) as {
      artifactType?: string;
      config: { mediaType: string };
    };
    assert.equal(parsed.artifactType, undefined);
    assert.equal(parsed.config.mediaType, 'application/vnd.docker.compose.config.empty.v1+json');
    const remote = await cli(['-f', `oci://${domain}/shop/legacy:v1`, 'config', '--services'], dir);
    assert.equal(remote.stdout, 'db\nweb\n');
  });

  test('refusals: local include, build-only service, bind mount without -y, an artifact that is no project', async () => {
    const bad = path.join(dir, 'bad');
    await fs.mkdir(bad);
    const write = (text: string) => fs.writeFile(path.join(bad, 'compose.yaml'), text);
    await fs.writeFile(path.join(bad, 'other.yaml'), 'services:\n  other:\n    image: tsfig/busybox\n');

    await write('include: [other.yaml]\nservices:\n  a:\n    image: tsfig/busybox\n');
    let result = await runCli(['publish', `${domain}/bad/a:v1`], env, { cwd: bad });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /cannot publish a project with local includes/);

    await write('services:\n  a:\n    build: .\n');
    result = await runCli(['publish', `${domain}/bad/a:v1`], env, { cwd: bad });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /service\(s\) "a" only have a build section/);

    await write('services:\n  a:\n    image: tsfig/busybox\n    volumes: ["/etc:/host-etc"]\n');
    result = await runCli(['publish', `${domain}/bad/a:v1`], env, { cwd: bad, input: 'n\n' });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /bind mount declarations[^]*a: \/etc:\/host-etc/);
    assert.equal((await get(`http://${domain}/v2/bad/a/manifests/v1`, OCI_MANIFEST)).status, 404);
    result = await runCli(['publish', '-y', `${domain}/bad/a:v1`], env, { cwd: bad });
    assert.equal(result.code, 0, result.stderr);

    // an artifact of another type is not loaded; a missing one is a clear error
    const client = new RegistryClient({ loopbackOnly: true });
    try {
      await pushArtifact(client, `${domain}/other/kind:v1`, {
        artifactType: 'application/vnd.example.other',
        legacyConfigMediaType: 'application/vnd.example.other.config',
        layers: [{ mediaType: 'application/vnd.docker.compose.file+yaml', data: Buffer.from('services: {}\n') }],
      });
    } finally {
      client.close();
    }
    const other = await runCli(['-f', `oci://${domain}/other/kind:v1`, 'config'], env, { cwd: bad });
    assert.equal(other.code, 65, other.stderr);
    assert.match(other.stderr, /is not a compose project artifact \(application\/vnd\.example\.other\)/);
    const missing = await runCli(['-f', `oci://${domain}/nothing/here:v1`, 'config'], env, { cwd: bad });
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /^error: .*nothing\/here/m);
    assert.doesNotMatch(missing.stderr, /internal error/);
  });
});
