import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { EngineError } from '../../engine/errors.js';
import { isRoot, makeTestEngine, type TestEngine } from '../helpers/engine.js';

const IMAGE = 'tsfig/busybox:latest';

/** GET over plain TCP (busybox httpd in the container); only loopback addresses are ever used from the host. */
function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('GET /index.html HTTP/1.0\r\n\r\n'));
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(data));
    socket.setTimeout(5000, () => socket.destroy(new Error('timed out')));
  });
}

describe('containers on networks (root)', { skip: isRoot ? false : 'needs root' }, () => {
  let t: TestEngine;
  before(async () => {
    t = await makeTestEngine();
    await t.engine.networks.create('front');
    await t.engine.networks.create('back');
  });
  after(async () => {
    const prefix = t.engine.paths.hostPrefix;
    await t.cleanup();
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    assert.ok(!links.includes(prefix), `interfaces of ${prefix} are left: ${links}`);
    const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
    assert.ok(!tables.includes(prefix), `nft table of ${prefix} is left`);
  });

  test('containers reach each other by name and alias, including one started later, and publish to 127.0.0.1', async () => {
    const web = await t.engine.containers.create({
      image: IMAGE,
      name: 'web',
      networks: [{ name: 'front', aliases: ['www'] }],
      ports: ['127.0.0.1::8080'],
      cmd: ['sh', '-c', 'echo hello-from-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'],
    });
    await t.engine.containers.start(web.id);
    // Started after web: web's /etc/hosts must learn its name without a restart.
    const client = await t.engine.containers.create({
      image: IMAGE,
      name: 'client',
      networks: [{ name: 'front' }],
      cmd: ['sleep', '60'],
    });
    await t.engine.containers.start(client.id);
    const fetched = await t.engine.containers.exec('client', {
      argv: ['sh', '-c', 'wget -q -O - http://www:8080/index.html && wget -q -O - http://web:8080/index.html'],
    });
    assert.equal(fetched.stdout, 'hello-from-web\nhello-from-web\n', fetched.stderr);
    const resolved = await t.engine.containers.exec('web', { argv: ['sh', '-c', 'grep -w client /etc/hosts'] });
    assert.equal(resolved.exitCode, 0, 'a container started later is missing from /etc/hosts');
    const [port] = await t.engine.containers.ports('web');
    assert.ok(port !== undefined && port.hostIp === '127.0.0.1' && port.hostPort > 0);
    assert.match(await httpGet(port.hostPort), /hello-from-web/);
    const inspect = (await t.engine.containers.inspect('web')) as {
      NetworkSettings: { Ports: Record<string, { HostPort: string }[]> };
    };
    assert.equal(inspect.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort, String(port.hostPort));
  });

  test('a container on another network cannot reach them (checked by IP)', async () => {
    const inspect = (await t.engine.containers.inspect('web')) as {
      NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
    };
    const ip = inspect.NetworkSettings.Networks.front?.IPAddress;
    assert.ok(ip !== undefined);
    const outsider = await t.engine.containers.create({
      image: IMAGE,
      networks: [{ name: 'back' }],
      cmd: ['sleep', '60'],
    });
    await t.engine.containers.start(outsider.id);
    const probe = await t.engine.containers.exec(outsider.id, {
      argv: ['sh', '-c', `wget -q -T 2 -O - http://${ip}:8080/index.html`],
    });
    assert.notEqual(probe.exitCode, 0, 'a container reached another network');
    await t.engine.containers.remove(outsider.id, { force: true });
  });

  test('a host port held by another container is refused before anything is created', async () => {
    const [port] = await t.engine.containers.ports('web');
    assert.ok(port !== undefined);
    const before = (await t.engine.containers.list({ all: true })).length;
    await assert.rejects(
      t.engine.containers.create({
        image: IMAGE,
        networks: [{ name: 'front' }],
        ports: [`127.0.0.1:${port.hostPort}:80`],
        cmd: ['true'],
      }),
      (error: unknown) =>
        error instanceof EngineError && error.kind === 'conflict' && /web|already/.test(error.message),
    );
    assert.equal((await t.engine.containers.list({ all: true })).length, before);
  });

  test('removing containers releases their addresses and links', async () => {
    await t.engine.containers.remove('client', { force: true });
    await t.engine.containers.remove('web', { force: true });
    const front = await t.engine.networks.inspect('front');
    assert.deepEqual(Object.keys(front.endpoints), []);
  });
});
