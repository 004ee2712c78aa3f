import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isEngineError } from '../../engine/errors.js';
import { Command } from 'commander';
import { NetworkManager, type NetworkManagerOptions } from '../../engine/network/index.js';
import { registerNetworkCommands } from '../../src/cli/commands/network.js';
import { enginePaths, rootIdOf, type EnginePaths } from '../../engine/state/paths.js';
import { lockDirectory } from '../../engine/state/lock.js';

// Networking of the engine without containers: sandboxes (netns) entered with nsenter, python3 servers inside.
// Traffic goes only to loopback and to addresses these tests create (bridges, sandboxes, a "remote" netns on a
// 198.18.x.0/30 veth link); nothing leaves the machine, and every test removes what it made, also on failure.

const execFileP = promisify(execFile);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PYTHON = '/usr/bin/python3';
const isRoot = process.getuid?.() === 0;

/** Replies with the peer's address on TCP (one line) and UDP (one datagram): the server "sees" its client. */
const SERVER_PY = `
import socket, sys, threading
port = int(sys.argv[1])
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(('0.0.0.0', port)); t.listen(64)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(('0.0.0.0', port))
def udp():
    while True:
        data, peer = u.recvfrom(2048)
        u.sendto(peer[0].encode(), peer)
threading.Thread(target=udp, daemon=True).start()
print('ready', flush=True)
while True:
    c, peer = t.accept()
    c.sendall((peer[0] + '\\n').encode()); c.close()
`;

/** Prints what the server replied, or exits 1 (timeout, refused). */
const CLIENT_PY = `
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == 'tcp':
        s = socket.create_connection((host, port), timeout=1.5)
        print(s.recv(200).decode().strip())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
        s.sendto(b'x', (host, port)); print(s.recvfrom(200)[0].decode())
except Exception as e:
    print(type(e).__name__, file=sys.stderr); sys.exit(1)
`;

/** Asks the resolver at argv[1] for an A record (UDP, or TCP with argv[3] == 'tcp'); prints the addresses or the rcode. */
const DNS_PY = `
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
tcp = len(sys.argv) > 3 and sys.argv[3] == 'tcp'
q = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0)
for label in name.split('.'):
    q += bytes([len(label)]) + label.encode()
qtype = 12 if name.endswith('in-addr.arpa') else 1
q += b'\\x00' + struct.pack('>HH', qtype, 1)
if tcp:
    s = socket.create_connection((server, 53), timeout=2)
    s.sendall(struct.pack('>H', len(q)) + q)
    data = b''
    while len(data) < 2 or len(data) < 2 + struct.unpack('>H', data[:2])[0]:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
    r = data[2:]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(q, (server, 53)); r = s.recvfrom(4096)[0]
if r[:2] != q[:2]: print('bad id'); sys.exit(0)
rcode = struct.unpack('>H', r[2:4])[0] & 15
count = struct.unpack('>H', r[6:8])[0]
if rcode != 0: print('rcode', rcode)
elif qtype == 12:
    i, labels = len(q) + 12, []
    while r[i]: labels.append(r[i + 1:i + 1 + r[i]].decode()); i += 1 + r[i]
    print('.'.join(labels))
else: print(' '.join(socket.inet_ntoa(r[len(q) + 16 * i + 12:len(q) + 16 * i + 16]) for i in range(count)))
`;

/** A fake upstream resolver on 127.0.0.1: answers every A query with 198.18.99.99 (nothing leaves the host). */
const FAKE_UPSTREAM_PY = `
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 0))
print(s.getsockname()[1], flush=True)
while True:
    q, peer = s.recvfrom(2048)
    end = 12
    while q[end] != 0: end += q[end] + 1
    end += 5
    r = q[:2] + struct.pack('>HHHHH', 0x8180, 1, 1, 0, 0) + q[12:end]
    r += struct.pack('>HHHIH', 0xc00c, 1, 1, 60, 4) + socket.inet_aton('198.18.99.99')
    s.sendto(r, peer)
`;

async function sh(file: string, args: readonly string[]): Promise<string> {
  const { stdout } = await execFileP(file, [...args], { encoding: 'utf8' });
  return stdout;
}

async function tryRun(file: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string }> {
  try {
    return { ok: true, stdout: await sh(file, args) };
  } catch (error) {
    return { ok: false, stdout: String((error as { stdout?: string }).stdout ?? '') };
  }
}

interface Env {
  readonly dir: string;
  readonly paths: EnginePaths;
  readonly manager: NetworkManager;
  /** Starts the echo server inside a netns; killed at teardown. */
  server(netnsPath: string, port: number): Promise<void>;
  /** Asks proto host:port from inside a netns (or the host when netnsPath is undefined); the server's answer or undefined. */
  ask(netnsPath: string | undefined, proto: 'tcp' | 'udp', host: string, port: number): Promise<string | undefined>;
  /** A "remote machine": a netns linked to the host by a veth with test-owned addresses. */
  remote(): Promise<{ ns: string; hostAddr: string; remoteAddr: string }>;
  /** Runs fn first at teardown (before the test's own networks and directory go). */
  defer(fn: () => Promise<void>): void;
}

/** A temp root + run root per test, and a teardown that removes everything, asserting nothing of ours is left. */
async function setup(t: TestContext, options: NetworkManagerOptions = { dns: { forward: false } }): Promise<Env> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-net-'));
  const paths = enginePaths(path.join(dir, 'root'), { TSFIG_RUN_ROOT: path.join(dir, 'run') });
  // No test name ever leaves the project: names that are not containers get NXDOMAIN (or go to a fake upstream).
  const manager = new NetworkManager(paths, options);
  const children: ChildProcess[] = [];
  const remoteLinks: string[] = [];
  const remoteNs: string[] = [];
  const deferred: (() => Promise<void>)[] = [];
  await writeFile(path.join(dir, 'server.py'), SERVER_PY);
  await writeFile(path.join(dir, 'client.py'), CLIENT_PY);
  await writeFile(path.join(dir, 'dns.py'), DNS_PY);
  t.after(async () => {
    for (const fn of deferred.reverse()) await fn().catch(() => undefined);
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(
      children.map((c) =>
        c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve(),
      ),
    );
    for (const name of remoteLinks) await tryRun('ip', ['link', 'del', name]);
    for (const ns of remoteNs) {
      await tryRun('umount', ['--lazy', ns]);
      await rm(ns, { force: true });
    }
    const files = await readdir(paths.netns).catch(() => [] as string[]);
    for (const id of files) await manager.removeSandbox(id).catch(() => undefined);
    for (const n of await manager.list()) await manager.remove(n.id).catch(() => undefined);
    await manager.reconcile({ liveContainers: new Set() });
    const resolverLeft = await manager.dnsRunning();
    const links = JSON.parse(await sh('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
    const tables = await sh('nft', ['list', 'tables']);
    const mounts = await readFile('/proc/mounts', 'utf8');
    await rm(dir, { recursive: true, force: true });
    assert.deepEqual(
      links.map((l) => l.ifname).filter((n) => n.startsWith(paths.hostPrefix) || remoteLinks.includes(n)),
      [],
    );
    assert.doesNotMatch(tables, new RegExp(`table ip tsf${paths.rootId}\\b`));
    assert.equal(resolverLeft, false, 'the embedded resolver is still running');
    assert.doesNotMatch(mounts, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });
  const env: Env = {
    dir,
    paths,
    manager,
    defer: (fn) => deferred.push(fn),
    async server(netnsPath, port) {
      const child = spawn('nsenter', [`--net=${netnsPath}`, PYTHON, path.join(dir, 'server.py'), String(port)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout?.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
      });
    },
    async ask(netnsPath, proto, host, port) {
      const client = [PYTHON, path.join(dir, 'client.py'), proto, host, String(port)];
      const result =
        netnsPath === undefined
          ? await tryRun(client[0] ?? PYTHON, client.slice(1))
          : await tryRun('nsenter', [`--net=${netnsPath}`, ...client]);
      return result.ok ? result.stdout.trim() : undefined;
    },
    async remote() {
      const tag = randomBytes(2).toString('hex');
      const ns = path.join(dir, `remote-${tag}`);
      await writeFile(ns, '');
      remoteNs.push(ns);
      await sh('unshare', [`--net=${ns}`, 'ip', 'link', 'set', 'lo', 'up']);
      // Upper-case R: never this root's prefix (tsf + lower-case hex), so reconcile() leaves it alone.
      const hostLink = `tsfR${tag}`;
      remoteLinks.push(hostLink);
      const third = parseInt(tag, 16) % 250;
      const hostAddr = `198.18.${third}.1`;
      const remoteAddr = `198.18.${third}.2`;
      await sh('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await sh('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostLink]);
      await sh('ip', ['link', 'set', hostLink, 'up']);
      await sh('nsenter', [`--net=${ns}`, 'ip', 'addr', 'add', `${remoteAddr}/30`, 'dev', 'eth0']);
      await sh('nsenter', [`--net=${ns}`, 'ip', 'link', 'set', 'eth0', 'up']);
      await sh('nsenter', [`--net=${ns}`, 'ip', 'route', 'add', 'default', 'via', hostAddr]);
      return { ns, hostAddr, remoteAddr };
    },
  };
  return env;
}

function spawnResult(file: string, args: readonly string[], input = ''): { status: number | null; stdout: string } {
  const result = spawnSync(file, [...args], { input, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout };
}

function cid(name: string): string {
  return `${name}${randomBytes(8).toString('hex')}`;
}

describe('engine network (root, no containers)', { skip: !isRoot && 'needs root' }, () => {
  let ipForward = '';
  before(async () => {
    ipForward = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
  });
  after(async () => {
    // Put ip_forward back unless other tsfig networks (another root's, running concurrently) now rely on it.
    const links = JSON.parse(await sh('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
    if (!links.some((l) => /^tsf[0-9a-f]{4}b/.test(l.ifname)))
      await writeFile('/proc/sys/net/ipv4/ip_forward', ipForward);
  });

  test('sandboxes on one network reach each other; a sandbox on another network cannot', async (t) => {
    const env = await setup(t);
    const { manager } = env;
    const front = await manager.create('front', { labels: { 'io.tsfig.test': '1' } });
    const back = await manager.create('back');
    assert.notEqual(front.subnet, back.subnet);
    const [a, b, c] = [cid('a'), cid('b'), cid('c')];
    const nsA = await manager.createSandbox(a);
    const nsB = await manager.createSandbox(b);
    const nsC = await manager.createSandbox(c);
    const attA = await manager.attach(a, 'front', { containerName: 'p-a-1', aliases: ['alpha'] });
    const attB = await manager.attach(b, 'front', { containerName: 'p-b-1' });
    const attC = await manager.attach(c, 'back', { containerName: 'p-c-1' });
    assert.equal(attA.interfaceName, 'eth0');
    assert.equal(attA.gateway, front.gateway);
    assert.notEqual(attA.ip, attB.ip);
    await env.server(nsA, 8080);
    assert.equal(await env.ask(nsB, 'tcp', attA.ip, 8080), attB.ip);
    assert.equal(await env.ask(nsB, 'udp', attA.ip, 8080), attB.ip);
    assert.equal(await env.ask(nsC, 'tcp', attA.ip, 8080), undefined);
    // A second network on the same sandbox becomes eth1; then the two sandboxes share "back" too.
    const second = await manager.attach(a, 'back', { ip: attC.ip.replace(/\d+$/, '100') });
    assert.equal(second.interfaceName, 'eth1');
    assert.equal(await env.ask(nsC, 'tcp', second.ip, 8080), attC.ip);
    const hosts = await manager.hostsFile(a);
    assert.match(hosts, new RegExp(`^${attA.ip.replace(/\./g, '\\.')}\\tp-a-1 alpha$`, 'm'));
    assert.match(hosts, new RegExp(`^${attB.ip.replace(/\./g, '\\.')}\\tp-b-1$`, 'm'));
    await assert.rejects(
      manager.remove('front'),
      (e: unknown) => isEngineError(e, 'conflict') && /p-a-1/.test(e.message),
    );
    await assert.rejects(manager.attach(b, 'back', { ip: '10.1.2.3' }), (e: unknown) => isEngineError(e, 'invalid'));
    await assert.rejects(manager.create('front'), (e: unknown) => isEngineError(e, 'conflict'));
    await assert.rejects(manager.create('x', { subnet: front.subnet }), /overlaps network "front"/);
    await manager.detach(a, 'back');
    await manager.removeSandbox(b);
    await manager.removeSandbox(b);
    assert.deepEqual(Object.keys((await manager.inspect('front')).endpoints), [a]);
  });

  test('the embedded resolver answers names and aliases per network, live, and NXDOMAIN otherwise', async (t) => {
    const env = await setup(t);
    const { manager } = env;
    const front = await manager.create('dnsfront');
    const other = await manager.create('dnsother');
    const [a, b, c, d] = [cid('a'), cid('b'), cid('c'), cid('d')];
    const nsA = await manager.createSandbox(a);
    const nsB = await manager.createSandbox(b);
    const nsD = await manager.createSandbox(d);
    const attA = await manager.attach(a, 'dnsfront', { containerName: 'p-web-1', aliases: ['web'] });
    const attB = await manager.attach(b, 'dnsfront', { containerName: 'p-db-1', aliases: ['db'] });
    await manager.attach(d, 'dnsother', { containerName: 'p-x-1' });
    const resolve = async (ns: string, server: string, name: string, proto = 'udp'): Promise<string> =>
      (await sh('nsenter', [`--net=${ns}`, PYTHON, path.join(env.dir, 'dns.py'), server, name, proto])).trim();
    const eventually = async (check: () => Promise<boolean>): Promise<void> => {
      for (let i = 0; i < 100 && !(await check().catch(() => false)); i++) await new Promise((r) => setTimeout(r, 100));
    };
    await eventually(async () => (await resolve(nsB, front.gateway, 'web')) === attA.ip);
    assert.equal(await resolve(nsB, front.gateway, 'web'), attA.ip);
    assert.equal(await resolve(nsA, front.gateway, 'P-DB-1'), attB.ip);
    assert.equal(await resolve(nsA, front.gateway, 'db', 'tcp'), attB.ip);
    assert.equal(await resolve(nsA, front.gateway, 'example.com'), 'rcode 3');
    const reverse = `${attB.ip.split('.').reverse().join('.')}.in-addr.arpa`;
    assert.equal(await resolve(nsA, front.gateway, reverse), 'p-db-1');
    // Names are per network: the other network's resolver does not know them.
    await eventually(async () => (await resolve(nsD, other.gateway, 'p-x-1')) !== '');
    assert.equal(await resolve(nsD, other.gateway, 'web'), 'rcode 3');
    // A replica attached later is resolvable from the containers started earlier, without a restart.
    await manager.createSandbox(c);
    const attC = await manager.attach(c, 'dnsfront', { containerName: 'p-web-2', aliases: ['web'] });
    await eventually(async () => (await resolve(nsB, front.gateway, 'web')).includes(attC.ip));
    assert.deepEqual((await resolve(nsB, front.gateway, 'web')).split(' ').sort(), [attA.ip, attC.ip].sort());
    assert.match(
      (await manager.resolvConf(a)) ?? '',
      new RegExp(`^nameserver ${front.gateway.replace(/\./g, '\\.')}$`, 'm'),
    );
    // The resolver holds no host port: a wildcard -p 53:53/udp does not collide with it.
    const published = await manager.publish(b, 'dnsfront', ['53:53/udp']);
    assert.equal(published[0]?.hostPort, 53);
    assert.equal(await resolve(nsA, front.gateway, 'web', 'tcp').then((x) => x.split(' ').length), 2);
    await manager.removeSandbox(d);
    await manager.remove('dnsother');
    assert.equal(await manager.dnsRunning(), true);
  });

  test('the resolver forwards other names to its upstream, restoring the query id', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-upstream-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(path.join(dir, 'fake.py'), FAKE_UPSTREAM_PY);
    const fake = spawn(PYTHON, [path.join(dir, 'fake.py')], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => {
      fake.kill('SIGKILL');
    });
    const port = await new Promise<string>((resolve) =>
      fake.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())),
    );
    const env = await setup(t, { dns: { upstreams: [`127.0.0.1:${port}`] } });
    const n = await env.manager.create('fwd');
    const a = cid('a');
    const ns = await env.manager.createSandbox(a);
    await env.manager.attach(a, 'fwd', { containerName: 'p-a-1' });
    const resolve = async (name: string, proto = 'udp'): Promise<string> =>
      (await sh('nsenter', [`--net=${ns}`, PYTHON, path.join(env.dir, 'dns.py'), n.gateway, name, proto])).trim();
    for (let i = 0; i < 100 && (await resolve('p-a-1').catch(() => '')) === ''; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(await resolve('somewhere.example'), '198.18.99.99');
    assert.equal(await resolve('somewhere.example', 'tcp'), '198.18.99.99');
  });

  test('published TCP and UDP ports reach the sandbox from 127.0.0.1, a remote and another sandbox', async (t) => {
    const env = await setup(t);
    const { manager } = env;
    await manager.create('pub');
    const [a, b] = [cid('a'), cid('b')];
    const nsA = await manager.createSandbox(a);
    const nsB = await manager.createSandbox(b);
    const att = await manager.attach(a, 'pub', {
      containerName: 'web',
      ports: ['8080', '127.0.0.1::8080', '8080/udp'],
    });
    const attB = await manager.attach(b, 'pub', { containerName: 'other' });
    const [all, local, udp] = att.ports;
    assert.ok(all && local && udp);
    const range = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    for (const p of att.ports) assert.ok(p.hostPort >= (range[0] ?? 0) && p.hostPort <= (range[1] ?? 0), 'ephemeral');
    assert.equal(local.hostIp, '127.0.0.1');
    assert.deepEqual(
      (await manager.publishedPorts()).map((p) => p.hostPort),
      att.ports.map((p) => p.hostPort),
    );
    await env.server(nsA, 8080);
    const gateway = (await manager.inspect('pub')).gateway;
    // From the host: 127.0.0.1 is masqueraded to the bridge address (route_localnet).
    assert.equal(await env.ask(undefined, 'tcp', '127.0.0.1', all.hostPort), gateway);
    assert.equal(await env.ask(undefined, 'tcp', '127.0.0.1', local.hostPort), gateway);
    assert.equal(await env.ask(undefined, 'udp', '127.0.0.1', udp.hostPort), gateway);
    // From a "remote machine": DNAT keeps the client's address.
    const remote = await env.remote();
    assert.equal(await env.ask(remote.ns, 'tcp', remote.hostAddr, all.hostPort), remote.remoteAddr);
    // From the host to one of its own (test-created) addresses: output DNAT.
    assert.equal(await env.ask(undefined, 'tcp', remote.hostAddr, all.hostPort), gateway);
    assert.equal(await env.ask(undefined, 'tcp', remote.hostAddr, local.hostPort), undefined);
    assert.equal(await env.ask(remote.ns, 'udp', remote.hostAddr, udp.hostPort), remote.remoteAddr);
    assert.equal(await env.ask(remote.ns, 'tcp', remote.hostAddr, local.hostPort), undefined);
    // Container addresses are not reachable from the remote except through published ports.
    await sh('nsenter', [`--net=${remote.ns}`, 'ip', 'route', 'add', att.ip, 'via', remote.hostAddr]);
    assert.equal(await env.ask(remote.ns, 'tcp', att.ip, 8080), undefined);
    // Hairpin: another sandbox on the network through the host's published port.
    assert.equal(await env.ask(nsB, 'tcp', remote.hostAddr, all.hostPort), gateway);
    assert.equal(await env.ask(nsB, 'udp', gateway, udp.hostPort), gateway);
    assert.ok(attB.ip);
    // ...and the container itself through its own published port.
    assert.equal(await env.ask(nsA, 'tcp', remote.hostAddr, all.hostPort), gateway);
    // Outbound traffic is masqueraded: the remote sees the host's address.
    await env.server(remote.ns, 9090);
    assert.equal(await env.ask(nsA, 'tcp', remote.remoteAddr, 9090), remote.hostAddr);
  });

  test('a host port held by a process or another container is a conflict naming the holder', async (t) => {
    const env = await setup(t);
    const { manager } = env;
    await manager.create('ports');
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const port = (holder.address() as net.AddressInfo).port;
    const [a, b] = [cid('a'), cid('b')];
    await manager.createSandbox(a);
    await manager.createSandbox(b);
    await assert.rejects(
      manager.attach(a, 'ports', { ports: [`${port}:80`] }),
      (e: unknown) =>
        isEngineError(e, 'conflict') &&
        e.message.includes(`process ${process.pid}`) &&
        /already in use/.test(e.message) &&
        /-p \d+:80\/tcp/.test(e.hint ?? ''),
    );
    assert.deepEqual((await manager.inspect('ports')).endpoints, {});
    const att = await manager.attach(a, 'ports', { containerName: 'first', ports: ['127.0.0.1::80'] });
    const taken = att.ports[0]?.hostPort ?? 0;
    await assert.rejects(manager.attach(b, 'ports', { ports: [`${taken}:80`] }), /in use by container first/);
    await assert.rejects(manager.attach(b, 'ports', { ports: ['80:80:80'] }), (e: unknown) =>
      isEngineError(e, 'invalid'),
    );
    await assert.rejects(manager.attach(b, 'ports', { ports: ['203.0.113.7:8000:80'] }), /not an address of this host/);
  });

  test('attaches from separate processes never share an address', async (t) => {
    const env = await setup(t);
    await env.manager.create('busy');
    const script = path.join(env.dir, 'attach.mts');
    await writeFile(
      script,
      [
        `import { NetworkManager } from ${JSON.stringify(path.join(REPO, 'engine/network/index.ts'))};`,
        `import { enginePaths } from ${JSON.stringify(path.join(REPO, 'engine/state/paths.ts'))};`,
        `const m = new NetworkManager(enginePaths(${JSON.stringify(env.paths.root)}, { TSFIG_RUN_ROOT: ${JSON.stringify(env.paths.runRoot)} }));`,
        'const out = [];',
        'for (let i = 0; i < 3; i++) {',
        '  const id = `p${process.pid}x${i}`;',
        '  await m.createSandbox(id);',
        "  out.push((await m.attach(id, 'busy', { ports: ['127.0.0.1::80'] })));",
        '}',
        'console.log(JSON.stringify(out));',
      ].join('\n'),
    );
    const runs = await Promise.all(
      Array.from({ length: 6 }, () =>
        execFileP(process.execPath, ['--import', 'tsx', script], { cwd: REPO, encoding: 'utf8' }),
      ),
    );
    const attachments = runs.flatMap((r) => JSON.parse(r.stdout) as { ip: string; ports: { hostPort: number }[] }[]);
    assert.equal(attachments.length, 18);
    assert.equal(new Set(attachments.map((x) => x.ip)).size, 18);
    assert.equal(new Set(attachments.map((x) => x.ports[0]?.hostPort)).size, 18);
    assert.equal(Object.keys((await env.manager.inspect('busy')).endpoints).length, 18);
  });

  test('networks created concurrently by separate processes of different roots get distinct subnets', async (t) => {
    const env = await setup(t);
    const roots = Array.from({ length: 4 }, (_, i) => path.join(env.dir, `root${i}`));
    const managerOf = (root: string) =>
      new NetworkManager(enginePaths(root, { TSFIG_RUN_ROOT: `${root}-run` }), { dns: false });
    env.defer(async () => {
      for (const root of roots) {
        const m = managerOf(root);
        for (const n of await m.list()) await m.remove(n.id).catch(() => undefined);
        await m.reconcile({ liveContainers: new Set() }).catch(() => undefined);
      }
    });
    const script = path.join(env.dir, 'create.mts');
    await writeFile(
      script,
      [
        `import { NetworkManager } from ${JSON.stringify(path.join(REPO, 'engine/network/index.ts'))};`,
        `import { enginePaths } from ${JSON.stringify(path.join(REPO, 'engine/state/paths.ts'))};`,
        'const root = process.argv[2];',
        'const m = new NetworkManager(enginePaths(root, { TSFIG_RUN_ROOT: `${root}-run` }), { dns: false });',
        "const subnets = [(await m.create('one')).subnet, (await m.create('two')).subnet];",
        'console.log(JSON.stringify(subnets));',
      ].join('\n'),
    );
    const runs = await Promise.all(
      roots.map((root) =>
        execFileP(process.execPath, ['--import', 'tsx', script, root], { cwd: REPO, encoding: 'utf8' }),
      ),
    );
    const subnets = runs.flatMap((r) => JSON.parse(r.stdout) as string[]);
    assert.equal(subnets.length, 8);
    assert.equal(new Set(subnets).size, 8, subnets.join(' '));
  });

  test('reconcile repairs what a crash leaves: missing table, orphan and missing veths, dead sandboxes', async (t) => {
    const env = await setup(t);
    const { manager, paths } = env;
    await manager.create('crash');
    const [a, b] = [cid('a'), cid('b')];
    const nsA = await manager.createSandbox(a);
    const nsB = await manager.createSandbox(b);
    const attA = await manager.attach(a, 'crash', { ports: ['8080'] });
    await manager.attach(b, 'crash');
    const network = await manager.inspect('crash');
    const vethA = network.endpoints[a]?.hostVeth ?? '';
    // What kill -9 between steps leaves: table gone, an orphan veth, a veth of a live endpoint missing,
    // a netns file that was never mounted.
    await sh('nft', ['delete', 'table', 'ip', `tsf${paths.rootId}`]);
    await sh('ip', [
      'link',
      'add',
      `${paths.hostPrefix}v0000000`,
      'type',
      'veth',
      'peer',
      'name',
      `${paths.hostPrefix}v0000001`,
    ]);
    await sh('ip', ['link', 'del', vethA]);
    await writeFile(path.join(paths.netns, 'halfmade'), '');
    const report = await manager.reconcile();
    assert.deepEqual(report.removedLinks.sort(), [`${paths.hostPrefix}v0000000`, `${paths.hostPrefix}v0000001`]);
    assert.deepEqual(report.replumbed, [vethA]);
    assert.deepEqual(report.removedSandboxes, ['halfmade']);
    const links = JSON.parse(await sh('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
    assert.ok(!links.some((l) => l.ifname.startsWith(`${paths.hostPrefix}v000000`)));
    await env.server(nsA, 8080);
    assert.equal(await env.ask(nsB, 'tcp', attA.ip, 8080), network.endpoints[b]?.ip);
    assert.ok(await env.ask(undefined, 'tcp', '127.0.0.1', attA.ports[0]?.hostPort ?? 0));
    // After a reboot the state survives but bridges and rules do not: attach rebuilds them.
    await manager.detach(b, 'crash');
    await sh('ip', ['link', 'del', network.bridge]);
    await sh('nft', ['delete', 'table', 'ip', `tsf${paths.rootId}`]);
    const attB = await manager.attach(b, 'crash');
    assert.equal(await env.ask(nsB, 'tcp', attA.ip, 8080), attB.ip);
    assert.match(await sh('nft', ['list', 'tables']), new RegExp(`table ip tsf${paths.rootId}`));
    assert.equal((await manager.inspect('crash')).endpoints[b]?.ip, attB.ip);
    // A sandbox whose container is gone: reconcile with the live set drops it and its endpoint.
    const again = await manager.reconcile({ liveContainers: new Set([a]) });
    assert.equal(again.droppedEndpoints.length, 1);
    assert.deepEqual(Object.keys((await manager.inspect('crash')).endpoints), [a]);
    await manager.removeSandbox(a);
    await manager.remove('crash');
    assert.doesNotMatch(await sh('nft', ['list', 'tables']), new RegExp(`tsf${paths.rootId}`));
  });

  test('connect: concurrent connects each get their endpoints; a failing one leaves nothing of its own', async (t) => {
    const env = await setup(t);
    const { manager, paths } = env;
    await manager.create('front');
    await manager.create('back', { internal: true });
    const ids = Array.from({ length: 8 }, (_, i) => cid(`c${i}`));
    const bad = cid('bad');
    const outcomes = await Promise.allSettled([
      ...ids.map((id, i) =>
        manager.connect(id, [
          { network: 'front', options: { aliases: [`svc${i}`], ports: i === 0 ? ['127.0.0.1::7070'] : [] } },
          { network: 'back' },
        ]),
      ),
      // In the same batch: its second network does not exist, so its first endpoint and its sandbox must go.
      manager.connect(bad, [{ network: 'front' }, { network: 'nowhere' }]),
    ]);
    const failed = outcomes.at(-1);
    assert.equal(failed?.status, 'rejected');
    assert.match(String(failed.reason), /network "nowhere" not found/);
    const attachments = outcomes.slice(0, -1).map((o) => {
      assert.equal(o.status, 'fulfilled');
      return o.value;
    });
    assert.deepEqual(
      attachments.map((a) => a.map((x) => x.interfaceName)),
      ids.map(() => ['eth0', 'eth1']),
    );
    const front = await manager.inspect('front');
    assert.deepEqual(Object.keys(front.endpoints).sort(), [...ids].sort());
    assert.equal(new Set(attachments.map((a) => a[0]?.ip)).size, ids.length);
    assert.ok(!(await readdir(paths.netns)).includes(bad), 'the failed container kept its sandbox');
    // Each sandbox: its addresses, the default route via the first (external) network only, and lo up.
    const ns0 = manager.sandboxPath(ids[0] ?? '');
    const addrs = await sh('nsenter', [`--net=${ns0}`, 'ip', '-4', '-o', 'addr', 'show']);
    assert.match(addrs, new RegExp(`eth0\\s+inet ${(attachments[0]?.[0]?.ip ?? '').replace(/\./g, '\\.')}/`));
    assert.match(addrs, /lo\s+inet 127\.0\.0\.1/);
    assert.match(await sh('nsenter', [`--net=${ns0}`, 'ip', 'route', 'show', 'default']), /via \S+ dev eth0/);
    // Traffic between two of them over the internal network, and the published port from 127.0.0.1.
    const ns1 = manager.sandboxPath(ids[1] ?? '');
    await env.server(ns0, 7070);
    assert.equal(await env.ask(ns1, 'tcp', attachments[0]?.[1]?.ip ?? '', 7070), attachments[1]?.[1]?.ip);
    assert.ok(await env.ask(undefined, 'tcp', '127.0.0.1', attachments[0]?.[0]?.ports[0]?.hostPort ?? 0));
    await Promise.all(ids.map((id) => manager.removeSandbox(id)));
    assert.deepEqual(Object.keys((await manager.inspect('front')).endpoints), []);
    assert.deepEqual(await readdir(paths.netns), []);
  });

  test('tsfig-runtime netns: one line per item, a failing item does not stop the others', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-netns-'));
    const good = path.join(dir, 'good');
    const missing = path.join(dir, 'missing');
    t.after(async () => {
      await tryRun('umount', ['--lazy', good]);
      await rm(dir, { recursive: true, force: true });
    });
    await writeFile(good, '');
    const runtime = path.join(REPO, 'native', 'build', 'tsfig-runtime');
    const created = spawnResult(runtime, ['netns', 'create', missing, good, 'relative']);
    assert.equal(created.status, 1);
    assert.deepEqual(
      created.stdout.split('\n').map((line) => line.split(' ')[0]),
      ['error', 'ok', 'error', ''],
    );
    assert.match(await sh('nsenter', [`--net=${good}`, 'ip', '-o', 'link', 'show', 'lo']), /[<,]UP[,>]/);
    await sh('nsenter', [`--net=${good}`, 'ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    const input = [`${good} eth0 10.123.4.5 24 10.123.4.1`, `${missing} eth0 10.123.4.6 24 -`, 'garbage', ''].join(
      '\n',
    );
    const configured = spawnResult(runtime, ['netns', 'config'], input);
    assert.equal(configured.status, 1);
    assert.deepEqual(
      configured.stdout.split('\n').map((line) => line.split(' ')[0]),
      ['ok', 'error', 'error', ''],
    );
    assert.match(await sh('nsenter', [`--net=${good}`, 'ip', '-4', '-o', 'addr', 'show', 'eth0']), /10\.123\.4\.5\/24/);
    assert.match(
      await sh('nsenter', [`--net=${good}`, 'ip', 'route', 'show', 'default']),
      /via 10\.123\.4\.1 dev eth0/,
    );
    assert.equal(spawnResult(runtime, ['netns', 'bogus']).status, 2);
  });

  test('reconcile leaves an unchanged firewall alone and re-applies a missing table', async (t) => {
    const env = await setup(t);
    const { manager, paths } = env;
    await manager.create('quiet');
    const a = cid('a');
    await manager.connect(a, [{ network: 'quiet', options: { ports: ['127.0.0.1::8081'] } }]);
    assert.equal((await manager.reconcile()).firewall, 'unchanged');
    await sh('nft', ['delete', 'table', 'ip', `tsf${paths.rootId}`]);
    assert.equal((await manager.reconcile()).firewall, 'applied');
    assert.match(await sh('nft', ['list', 'tables']), new RegExp(`table ip tsf${paths.rootId}`));
    assert.equal((await manager.reconcile()).firewall, 'unchanged');
    // A repair (a dead sandbox) re-applies too.
    await writeFile(path.join(paths.netns, 'halfmade'), '');
    assert.equal((await manager.reconcile()).firewall, 'applied');
    await manager.removeSandbox(a);
  });

  test('kill -9 in the middle of attaches and detaches: reconcile converges the host to the state', async (t) => {
    const env = await setup(t);
    const { manager, paths } = env;
    await manager.create('killed');
    const script = path.join(env.dir, 'churn.mts');
    await writeFile(
      script,
      [
        `import { NetworkManager } from ${JSON.stringify(path.join(REPO, 'engine/network/index.ts'))};`,
        `import { enginePaths } from ${JSON.stringify(path.join(REPO, 'engine/state/paths.ts'))};`,
        `const m = new NetworkManager(enginePaths(${JSON.stringify(paths.root)}, { TSFIG_RUN_ROOT: ${JSON.stringify(paths.runRoot)} }));`,
        'console.log("started");',
        'for (let i = 0; ; i++) {',
        '  const id = `churn${i % 4}`;',
        '  await m.createSandbox(id);',
        "  try { await m.attach(id, 'killed', { ports: ['127.0.0.1::80'] }); } catch { await m.detach(id, 'killed'); }",
        '}',
      ].join('\n'),
    );
    const killed: number[] = [];
    for (const delay of [150, 400, 700]) {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (child.pid !== undefined) killed.push(child.pid);
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      // An `ip` the CLI had already started runs to its end; give it that time.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await manager.reconcile();
      const network = await manager.inspect('killed');
      const links = (
        JSON.parse(await sh('ip', ['-j', '-d', 'link', 'show'])) as { ifname: string; master?: string }[]
      ).filter((l) => l.ifname.startsWith(paths.hostPrefix));
      const wanted = [network.bridge, ...Object.values(network.endpoints).map((ep) => ep.hostVeth)].sort();
      assert.deepEqual(links.map((l) => l.ifname).sort(), wanted);
      for (const l of links) if (l.ifname !== network.bridge) assert.equal(l.master, network.bridge);
      const table = await sh('nft', ['list', 'table', 'ip', `tsf${paths.rootId}`]);
      for (const ep of Object.values(network.endpoints)) {
        for (const p of ep.ports)
          assert.match(table, new RegExp(`dport ${p.hostPort} dnat to ${ep.ip.replace(/\./g, '\\.')}:80`));
      }
    }
    // The killed processes' lock sockets and entries (kill -9 skips their exit) go with the next command's first lock.
    const next = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { withLock } = await import(${JSON.stringify(path.join(REPO, 'engine/state/lock.ts'))}); await withLock('test-next-command', async () => {});`,
      ],
      { cwd: REPO, encoding: 'utf8' },
    );
    assert.equal(next.status, 0, next.stderr);
    const locks = await readdir(lockDirectory()).catch(() => [] as string[]);
    for (const pid of killed) {
      assert.deepEqual(
        locks.filter((entry) => entry.includes(`.${pid.toString(36)}-`)),
        [],
        `what killed process ${pid} held`,
      );
    }
  });

  test('an internal network has no outside access and publishes nothing', async (t) => {
    const env = await setup(t);
    const { manager } = env;
    await manager.create('inner', { internal: true });
    await manager.create('outer');
    const [a, b] = [cid('a'), cid('b')];
    const nsA = await manager.createSandbox(a);
    const nsB = await manager.createSandbox(b);
    await assert.rejects(manager.attach(a, 'inner', { ports: ['80'] }), /internal network/);
    const attA = await manager.attach(a, 'inner');
    const attB = await manager.attach(b, 'inner');
    const remote = await env.remote();
    await env.server(remote.ns, 9090);
    await env.server(nsA, 8080);
    assert.equal(await env.ask(nsB, 'tcp', attA.ip, 8080), attB.ip);
    assert.equal(await env.ask(nsA, 'tcp', remote.remoteAddr, 9090), undefined);
    // Joining a second, external network gives the sandbox its way out (default route via that network).
    await manager.attach(a, 'outer');
    assert.equal(await env.ask(nsA, 'tcp', remote.remoteAddr, 9090), remote.hostAddr);
  });

  test('a root deleted without removing its networks is cleaned up by the next root that registers', async (t) => {
    const env = await setup(t);
    const staleDir = path.join(env.dir, 'stale');
    const stalePaths = enginePaths(path.join(staleDir, 'root'), { TSFIG_RUN_ROOT: path.join(staleDir, 'run') });
    const stale = new NetworkManager(stalePaths, { dns: false });
    env.defer(async () => {
      // Only if the test failed before the clean-up: remove what the stale root made.
      const links = JSON.parse(await sh('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
      for (const l of links)
        if (l.ifname.startsWith(stalePaths.hostPrefix)) await tryRun('ip', ['link', 'del', l.ifname]);
      await tryRun('umount', ['--lazy', path.join(stalePaths.netns, 'x1')]);
      await tryRun('nft', ['delete', 'table', 'ip', `tsf${stalePaths.rootId}`]);
    });
    const network = await stale.create('leaky');
    await stale.createSandbox('x1');
    await stale.attach('x1', 'leaky', { ports: ['127.0.0.1::80'] });
    await rm(stalePaths.root, { recursive: true, force: true });
    await env.manager.create('next');
    const links = JSON.parse(await sh('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
    assert.ok(!links.some((l) => l.ifname === network.bridge || l.ifname.startsWith(`${stalePaths.hostPrefix}v`)));
    assert.doesNotMatch(await readFile('/proc/mounts', 'utf8'), new RegExp(stalePaths.netns));
    assert.doesNotMatch(await sh('nft', ['list', 'tables']), new RegExp(`table ip tsf${stalePaths.rootId}\\b`));
  });

  test('tsfig network create|ls|inspect|rm|prune with docker flags', async (t) => {
    const env = await setup(t);
    let out = '';
    const cli = async (...args: string[]): Promise<string> => {
      out = '';
      const program = new Command('tsfig').exitOverride();
      registerNetworkCommands(program, {
        paths: () => env.paths,
        stdout: { write: (text: string) => (out += text) },
        stderr: { write: () => true },
        confirm: () => Promise.resolve(true),
      });
      await program.parseAsync(args, { from: 'user' });
      return out;
    };
    const id = (
      await cli(
        'network',
        'create',
        '--subnet',
        '10.231.7.0/24',
        '--gateway',
        '10.231.7.254',
        '--internal',
        '--label',
        'a=b',
        'cli1',
      )
    ).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await cli('network', 'create', 'cli2');
    assert.deepEqual(
      (await cli('network', 'ls', '-q')).trim().split('\n').sort(),
      (await env.manager.list()).map((n) => n.id.slice(0, 12)).sort(),
    );
    const lines = (await cli('network', 'ls', '--format', 'json', '--filter', 'label=a=b')).trim().split('\n');
    assert.equal(lines.length, 1);
    assert.equal((JSON.parse(lines[0] ?? '{}') as { Name: string }).Name, 'cli1');
    const [inspected] = JSON.parse(await cli('network', 'inspect', 'cli1')) as {
      IPAM: { Config: { Subnet: string; Gateway: string }[] };
      Internal: boolean;
      Labels: Record<string, string>;
    }[];
    assert.deepEqual(inspected?.IPAM.Config, [{ Subnet: '10.231.7.0/24', Gateway: '10.231.7.254' }]);
    assert.equal(inspected?.Internal, true);
    assert.deepEqual(inspected?.Labels, { a: 'b' });
    assert.match(await cli('network', 'ls'), /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\n/);
    await assert.rejects(cli('network', 'create', '--subnet', '10.231.7.128/25', 'cli3'), /overlaps network "cli1"/);
    await assert.rejects(cli('network', 'rm', 'nope'), /not found/);
    assert.equal(await cli('network', 'rm', 'cli2'), 'cli2\n');
    assert.equal(await cli('network', 'prune', '-f'), 'Deleted Networks:\ncli1\n');
    assert.equal(await cli('network', 'ls', '-q'), '');
  });

  test('two roots sharing the 4-hex host prefix never touch each other (own table, link aliases)', async (t) => {
    const env = await setup(t);
    // Find a second root path whose id starts like the first one's (about 65536 hashes).
    const base = path.join(env.dir, 'twin');
    let twinRoot = '';
    for (let i = 0; twinRoot === ''; i++) {
      if (rootIdOf(`${base}${i}`).slice(0, 4) === env.paths.rootId.slice(0, 4)) twinRoot = `${base}${i}`;
    }
    const twinPaths = enginePaths(twinRoot, { TSFIG_RUN_ROOT: `${twinRoot}-run` });
    assert.equal(twinPaths.hostPrefix, env.paths.hostPrefix);
    const twin = new NetworkManager(twinPaths, { dns: false });
    env.defer(async () => {
      for (const id of await readdir(twinPaths.netns).catch(() => [] as string[])) await twin.removeSandbox(id);
      for (const n of await twin.list()) await twin.remove(n.id);
      await twin.reconcile({ liveContainers: new Set() });
    });
    await twin.create('twin');
    const [x, y] = [cid('x'), cid('y')];
    const nsX = await twin.createSandbox(x);
    const nsY = await twin.createSandbox(y);
    const attX = await twin.attach(x, 'twin');
    const attY = await twin.attach(y, 'twin');
    await env.manager.create('mine');
    const report = await env.manager.reconcile();
    assert.deepEqual(report.removedLinks, []);
    await env.server(nsX, 8080);
    assert.equal(await env.ask(nsY, 'tcp', attX.ip, 8080), attY.ip);
    await env.manager.remove('mine');
    assert.match(await sh('nft', ['list', 'tables']), new RegExp(`table ip tsf${twinPaths.rootId}\\b`));
  });

  test("Docker's situation: FORWARD policy DROP, DOCKER-USER and br_netfilter; host settings restored", async (t) => {
    const hasIptables = (await tryRun('iptables-nft', ['-V'])).ok;
    if (!hasIptables) {
      t.skip('iptables is not installed (apt-get install -y iptables)');
      return;
    }
    const env = await setup(t);
    const { manager, paths } = env;
    const filterExisted = /^table ip filter$/m.test(await sh('nft', ['list', 'tables', 'ip']));
    const forward = await sh('iptables-nft', ['-S', 'FORWARD']);
    const policy = /^-P FORWARD (\w+)$/m.exec(forward)?.[1] ?? 'ACCEPT';
    const hadDockerUser = (await tryRun('iptables-nft', ['-S', 'DOCKER-USER'])).ok;
    const brnf = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    const brnfBefore = await readFile(brnf, 'utf8').catch(() => undefined);
    t.after(async () => {
      await sh('iptables-nft', ['-P', 'FORWARD', policy]);
      if (!hadDockerUser) {
        await tryRun('iptables-nft', ['-D', 'FORWARD', '-j', 'DOCKER-USER']);
        await tryRun('iptables-nft', ['-X', 'DOCKER-USER']);
      }
      if (!filterExisted) await tryRun('nft', ['delete', 'table', 'ip', 'filter']);
      if (brnfBefore !== undefined) await writeFile(brnf, brnfBefore.trim());
    });
    if (!hadDockerUser) {
      await sh('iptables-nft', ['-N', 'DOCKER-USER']);
      await sh('iptables-nft', ['-I', 'FORWARD', '-j', 'DOCKER-USER']);
    }
    await sh('iptables-nft', ['-P', 'FORWARD', 'DROP']);
    if (brnfBefore !== undefined) await writeFile(brnf, '1');
    const n = await manager.create('docker');
    const rules = await sh('iptables-nft', ['-S', 'DOCKER-USER']);
    assert.match(rules, new RegExp(`-s ${n.subnet.replace(/\./g, '\\.')} .*tsfig-${paths.rootId}.* -j ACCEPT`));
    const [a, b] = [cid('a'), cid('b')];
    const nsA = await manager.createSandbox(a);
    const nsB = await manager.createSandbox(b);
    const attA = await manager.attach(a, 'docker', { ports: ['8080'] });
    const attB = await manager.attach(b, 'docker');
    await env.server(nsA, 8080);
    assert.equal(await env.ask(nsB, 'tcp', attA.ip, 8080), attB.ip);
    const remote = await env.remote();
    assert.equal(await env.ask(remote.ns, 'tcp', remote.hostAddr, attA.ports[0]?.hostPort ?? 0), remote.remoteAddr);
    // Without DOCKER-USER the accept goes to the top of FORWARD.
    await manager.removeSandbox(a);
    await manager.removeSandbox(b);
    await manager.remove('docker');
    assert.doesNotMatch(await sh('iptables-nft', ['-S']), new RegExp(`tsfig-${paths.rootId}`));
    if (!hadDockerUser) {
      await sh('iptables-nft', ['-D', 'FORWARD', '-j', 'DOCKER-USER']);
      await sh('iptables-nft', ['-X', 'DOCKER-USER']);
      const m = await manager.create('plain');
      assert.match(
        await sh('iptables-nft', ['-S', 'FORWARD']),
        new RegExp(`-A FORWARD -d ${m.subnet.replace(/\./g, '\\.')}`),
      );
      await manager.remove('plain');
      assert.doesNotMatch(await sh('iptables-nft', ['-S']), new RegExp(`tsfig-${paths.rootId}`));
    }
  });
});
