import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanupAndCheck, eventually, isRoot, leftovers, makeTestEngine, type TestEngine } from '../helpers/engine.js';

const IMAGE = 'tsfig/busybox:latest';

interface Inspected {
  NetworkSettings: { Networks: Record<string, { IPAddress: string; Aliases?: string[] }> };
}

/** The IPv4 addresses of the container's interfaces other than lo, as `ifname address/prefix` lines. */
async function addresses(t: TestEngine, container: string): Promise<string[]> {
  const result = await t.engine.containers.exec(container, { argv: ['ip', '-o', '-4', 'addr', 'show'] });
  assert.equal(result.exitCode, 0, result.stderr);
  return result.stdout
    .split('\n')
    .map((line) => /^\d+:\s+(\S+)\s+inet\s+(\S+)/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[1] !== 'lo')
    .map((m) => `${m[1]} ${m[2]}`);
}

/** The address at `offset` in an IPv4 CIDR (`172.20.0.0/16`, 50 → `172.20.0.50`). */
function addressIn(cidr: string, offset: number): string {
  const [base = ''] = cidr.split('/');
  const n = base.split('.').reduce((acc, part) => acc * 256 + Number(part), 0) + offset;
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** Every network state file of the engine, to show a refused command changed nothing. */
/**
 * `nslookup name` in container until its success is `resolves` (the embedded resolver re-reads the network state on
 * fs.watch events; a change that lands while it is reading waits for its 1 s poll, see the report of this test's
 * commit). Returns the last output.
 */
async function lookupUntil(t: TestEngine, container: string, name: string, resolves: boolean): Promise<string> {
  let output = '';
  try {
    return await eventually(async () => {
      const looked = await t.engine.containers.exec(container, { argv: ['nslookup', name] });
      output = looked.stdout + looked.stderr;
      return (looked.exitCode === 0) === resolves ? output : undefined;
    }, 3000);
  } catch {
    assert.fail(`${name} ${resolves ? 'does not resolve' : 'still resolves'} in ${container}: ${output}`);
  }
}

function networkFiles(t: TestEngine): string {
  const dir = t.engine.paths.networks;
  return readdirSync(dir)
    .sort()
    .map((file) => readFileSync(path.join(dir, file), 'utf8'))
    .join('\n');
}

describe('network connect / disconnect (root)', { skip: isRoot ? false : 'needs root' }, () => {
  let t: TestEngine;
  let serverIp = '';
  let twoSubnet = '';
  before(async () => {
    t = await makeTestEngine();
    await t.engine.networks.create('one');
    twoSubnet = (await t.engine.networks.create('two')).subnet;
    const server = await t.engine.containers.create({
      image: IMAGE,
      name: 'server',
      networks: [{ name: 'two' }],
      cmd: ['sh', '-c', 'echo hello-from-server > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'],
    });
    await t.engine.containers.start(server.id);
    const roamer = await t.engine.containers.create({
      image: IMAGE,
      name: 'roamer',
      networks: [{ name: 'one' }],
      cmd: ['sleep', '300'],
    });
    await t.engine.containers.start(roamer.id);
    const inspected = (await t.engine.containers.inspect('server')) as unknown as Inspected;
    serverIp = inspected.NetworkSettings.Networks.two?.IPAddress ?? '';
    assert.ok(serverIp !== '');
  });
  after(async () => {
    const { rootId } = t.engine.paths;
    await cleanupAndCheck(t, 'interfaces');
    assert.deepEqual(leftovers(rootId), [], 'cgroups, mounts or processes were left behind');
  });

  test('connect: the running container gets eth1 on the network and reaches it by IP and name, both ways', async () => {
    const fixed = addressIn(twoSubnet, 50);
    const connected = await t.cli(['network', 'connect', '--ip', fixed, '--alias', 'rover', 'two', 'roamer']);
    assert.equal(connected.code, 0, connected.stderr);
    assert.equal(connected.stdout, '');
    const prefix = twoSubnet.split('/')[1];
    assert.ok((await addresses(t, 'roamer')).includes(`eth1 ${fixed}/${prefix}`), 'no eth1 with the fixed address');
    const inspected = (await t.engine.containers.inspect('roamer')) as unknown as Inspected;
    assert.equal(inspected.NetworkSettings.Networks.two?.IPAddress, fixed);
    assert.ok(inspected.NetworkSettings.Networks.one !== undefined, 'the first network is still attached');
    // By IP and by name (the container's /etc/hosts was rewritten).
    const fetched = await t.engine.containers.exec('roamer', {
      argv: [
        'sh',
        '-c',
        `timeout 5 wget -q -O - http://${serverIp}:8080/index.html && timeout 5 wget -q -O - http://server:8080/index.html`,
      ],
    });
    assert.equal(fetched.stdout, 'hello-from-server\nhello-from-server\n', fetched.stderr);
    // Its resolver (on its first network's gateway) answers names of the network it just joined too, as Docker's does.
    assert.match(
      await lookupUntil(t, 'roamer', 'server', true),
      new RegExp(`Address: ${serverIp.replaceAll('.', '\\.')}`),
    );
    // The other side: the embedded resolver answers the new name and alias at once, and /etc/hosts lists it.
    for (const name of ['roamer', 'rover']) {
      assert.match(await lookupUntil(t, 'server', name, true), new RegExp(`Address: ${fixed.replaceAll('.', '\\.')}`));
    }
    const hosts = await t.engine.containers.exec('server', { argv: ['cat', '/etc/hosts'] });
    assert.match(hosts.stdout, new RegExp(`^${fixed.replaceAll('.', '\\.')}\\s.*\\broamer\\b`, 'm'));
    const ping = await t.engine.containers.exec('server', { argv: ['ping', '-c', '1', '-W', '2', 'roamer'] });
    assert.equal(ping.exitCode, 0, ping.stdout + ping.stderr);
  });

  test('refusals: unknown network or container, already connected, network mode none; nothing changes', async () => {
    const none = await t.engine.containers.create({ image: IMAGE, name: 'loner', cmd: ['sleep', '300'] });
    const before = networkFiles(t);
    const cases: [string[], RegExp][] = [
      [['network', 'connect', 'nope', 'roamer'], /network "nope" not found/],
      [['network', 'connect', 'two', 'ghost'], /no such container: ghost/],
      [['network', 'connect', 'two', 'roamer'], /endpoint with name roamer already exists in network two/],
      [['network', 'connect', 'one', 'loner'], /private \(none\) mode/],
      [['network', 'disconnect', 'one', 'server'], /container server is not connected to network one/],
      [['network', 'disconnect', 'nope', 'roamer'], /network "nope" not found/],
      [['network', 'disconnect', 'two', 'ghost'], /no such container: ghost/],
      [['network', 'disconnect', '-f', 'two', 'ghost'], /container ghost is not connected to network two/],
    ];
    for (const [args, message] of cases) {
      const result = await t.cli(args);
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'a stack trace was printed');
    }
    assert.equal(networkFiles(t), before, 'a refused command changed the network state');
    await t.engine.containers.remove(none.id);
  });

  test('disconnect: the interface goes, the name no longer resolves, /etc/hosts forget it', async () => {
    const result = await t.cli(['network', 'disconnect', 'two', 'roamer']);
    assert.equal(result.code, 0, result.stderr);
    const left = await addresses(t, 'roamer');
    assert.equal(left.length, 1, left.join('; '));
    assert.match(left[0] ?? '', /^eth0 /);
    const inspected = (await t.engine.containers.inspect('roamer')) as unknown as Inspected;
    assert.deepEqual(Object.keys(inspected.NetworkSettings.Networks), ['one']);
    await lookupUntil(t, 'server', 'roamer', false);
    const hosts = await t.engine.containers.exec('server', { argv: ['cat', '/etc/hosts'] });
    assert.doesNotMatch(hosts.stdout, /roamer|rover/);
    const own = await t.engine.containers.exec('roamer', { argv: ['cat', '/etc/hosts'] });
    assert.doesNotMatch(own.stdout, /server/);
    const fetched = await t.engine.containers.exec('roamer', {
      argv: ['timeout', '2', 'wget', '-q', '-O', '-', `http://${serverIp}:8080/index.html`],
    });
    assert.notEqual(fetched.exitCode, 0, 'still reaches the network it left');
  });

  test('the last network can be disconnected; a stopped container can be connected', async () => {
    const last = await t.cli(['network', 'disconnect', 'one', 'roamer']);
    assert.equal(last.code, 0, last.stderr);
    assert.deepEqual(await addresses(t, 'roamer'), []);
    await t.engine.containers.kill('roamer');
    await t.engine.containers.wait('roamer');
    const connected = await t.cli(['network', 'connect', 'two', 'roamer']);
    assert.equal(connected.code, 0, connected.stderr);
    await t.engine.containers.start('roamer');
    const [eth] = await addresses(t, 'roamer');
    assert.match(eth ?? '', /^eth0 /);
    const fetched = await t.engine.containers.exec('roamer', {
      argv: ['timeout', '5', 'wget', '-q', '-O', '-', 'http://server:8080/index.html'],
    });
    assert.equal(fetched.stdout, 'hello-from-server\n', fetched.stderr);
    const shown = await t.cli(['network', 'inspect', 'two']);
    const [two] = JSON.parse(shown.stdout) as { Containers: Record<string, { Name: string }> }[];
    assert.deepEqual(
      Object.values(two?.Containers ?? {})
        .map((c) => c.Name)
        .sort(),
      ['roamer', 'server'],
    );
  });

  test("disconnecting a container's first network moves its default route and its resolver to the next", async () => {
    const hopper = await t.engine.containers.create({
      image: IMAGE,
      name: 'hopper',
      networks: [{ name: 'one' }, { name: 'two' }],
      cmd: ['sleep', '300'],
    });
    await t.engine.containers.start(hopper.id);
    const [one, two] = [await t.engine.networks.inspect('one'), await t.engine.networks.inspect('two')];
    const route = async () =>
      (await t.engine.containers.exec('hopper', { argv: ['ip', 'route', 'show', 'default'] })).stdout.trim();
    const resolver = async () =>
      (await t.engine.containers.exec('hopper', { argv: ['cat', '/etc/resolv.conf'] })).stdout.match(
        /^nameserver (\S+)/m,
      )?.[1];
    assert.match(await route(), new RegExp(`^default via ${one.gateway.replaceAll('.', '\\.')} dev eth0`));
    assert.equal(await resolver(), one.gateway);
    const result = await t.cli(['network', 'disconnect', 'one', 'hopper']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(await route(), new RegExp(`^default via ${two.gateway.replaceAll('.', '\\.')} dev eth1`));
    assert.equal(await resolver(), two.gateway);
    assert.match(
      await lookupUntil(t, 'hopper', 'server', true),
      new RegExp(`Address: ${serverIp.replaceAll('.', '\\.')}`),
    );
    await t.engine.containers.remove(hopper.id, { force: true });
  });

  test('disconnect -f drops the endpoint of a container that is gone', async () => {
    const ghost = await t.engine.containers.create({
      image: IMAGE,
      name: 'ghosty',
      networks: [{ name: 'two' }],
      cmd: ['sleep', '300'],
    });
    // Gone behind the engine's back: its record is deleted, its endpoint on "two" is not.
    await rm(path.join(t.engine.paths.containers, ghost.id), { recursive: true, force: true });
    const plain = await t.cli(['network', 'disconnect', 'two', 'ghosty']);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /no such container: ghosty/);
    const forced = await t.cli(['network', 'disconnect', '-f', 'two', 'ghosty']);
    assert.equal(forced.code, 0, forced.stderr);
    const state = await t.engine.networks.inspect('two');
    assert.equal(state.endpoints[ghost.id], undefined);
    const hosts = await t.engine.containers.exec('server', { argv: ['cat', '/etc/hosts'] });
    assert.doesNotMatch(hosts.stdout, /ghosty/);
    await t.engine.networks.removeSandbox(ghost.id);
  });
});
