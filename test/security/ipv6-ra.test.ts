// Item 3 of issue #15 (CVE-2020-13401 class). Containers have NET_RAW, as with Docker's defaults, so a hostile one can
// send IPv6 router advertisements onto its network's bridge. Networks here are IPv4 only: the bridge must not accept
// them (no address from the advertised prefix, no default route through the container), and the container ends do
// no IPv6 either. The attack is sent for real from the container's network namespace with an AF_PACKET socket (what
// a NET_RAW process in the container can do), to the all-nodes group on its own link.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, writeProject, type TestEngine } from '../helpers/engine.js';

/** Sends 3 router advertisements (prefix 2001:db8:bad::/64, autonomous, router lifetime 1800 s) out of eth0. */
const SEND_RA_PY = `
import socket, struct
ifname = 'eth0'
mac = bytes.fromhex(open('/sys/class/net/%s/address' % ifname).read().strip().replace(':', ''))
src = bytes.fromhex('fe80000000000000') + mac[:3] + b'\\xff\\xfe' + mac[3:]
src = bytes([src[0], src[1]]) + src[2:8] + bytes([src[8] ^ 2]) + src[9:]
dst = bytes.fromhex('ff020000000000000000000000000001')
prefix = bytes.fromhex('20010db80bad00000000000000000000')
ra = struct.pack('>BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)
ra += struct.pack('>BBBBIII', 3, 4, 64, 0xc0, 86400, 14400, 0) + prefix
ra += struct.pack('>BB', 1, 1) + mac
pseudo = src + dst + struct.pack('>I3xB', len(ra), 58)
data = pseudo + ra
total = sum(struct.unpack('>%dH' % (len(data) // 2), data))
while total >> 16: total = (total & 0xffff) + (total >> 16)
ra = ra[:2] + struct.pack('>H', ~total & 0xffff) + ra[4:]
ip6 = struct.pack('>IHBB', 0x60000000, len(ra), 58, 255) + src + dst
frame = bytes.fromhex('333300000001') + mac + b'\\x86\\xdd' + ip6 + ra
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
for _ in range(3): s.send(frame)
print('sent')
`;

describe('IPv6 router advertisements from a container (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  before(async () => {
    t = await makeTestEngine();
  });
  after(async () => {
    await t.cleanup();
  });

  test('the bridge takes no address or route from them, and no interface of the network does IPv6', async () => {
    const dir = await writeProject(
      t,
      'rahostile',
      'services:\n  evil:\n    image: tsfig/busybox:latest\n    init: true\n    command: sleep 600\n',
    );
    try {
      const up = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(up.code, 0, up.stderr);
      const [network] = await t.engine.networks.list();
      assert.ok(network !== undefined);
      const bridge = network.bridge;
      const [endpoint] = Object.values(network.endpoints);
      assert.ok(endpoint !== undefined);
      const sandbox = t.engine.networks.sandboxPath(endpoint.containerId);

      const sent = execFileSync('nsenter', [`--net=${sandbox}`, 'python3', '-c', SEND_RA_PY], { encoding: 'utf8' });
      assert.equal(sent.trim(), 'sent');
      await sleep(1500);

      const addresses = execFileSync('ip', ['-6', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' });
      assert.doesNotMatch(
        addresses,
        /2001:db8:bad/,
        `the bridge took an address from the container's RA:\n${addresses}`,
      );
      const routes = execFileSync('ip', ['-6', 'route', 'show', 'dev', bridge], { encoding: 'utf8' });
      assert.doesNotMatch(
        routes,
        /default|2001:db8:bad/,
        `the bridge took a route from the container's RA:\n${routes}`,
      );
      const sysctl = (name: string, key: string): string =>
        readFileSync(`/proc/sys/net/ipv6/conf/${name}/${key}`, 'utf8').trim();
      assert.equal(sysctl(bridge, 'disable_ipv6'), '1', 'IPv6 is on on the bridge of an IPv4 network');
      assert.equal(sysctl(bridge, 'accept_ra'), '0', 'the bridge accepts router advertisements');
      assert.equal(sysctl(endpoint.hostVeth, 'disable_ipv6'), '1', "IPv6 is on on the container's host veth");
      const inside = execFileSync(
        'nsenter',
        [`--net=${sandbox}`, 'cat', `/proc/sys/net/ipv6/conf/${endpoint.ifname}/disable_ipv6`],
        { encoding: 'utf8' },
      );
      assert.equal(inside.trim(), '1', "IPv6 is on on the container's interface");
    } finally {
      await t.cli(['down', '-t', '0'], { cwd: dir });
    }
  });
});
