import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import {
  allocateAddress,
  chooseGateway,
  chooseSubnet,
  defaultPool,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
  parseSubnet,
  takenFromHost,
} from '../../engine/network/ipam.js';
import {
  bridgeName,
  firewallTable,
  IFNAMSIZ_MAX,
  isValidIfname,
  linkAlias,
  macForIp,
  vethName,
} from '../../engine/network/names.js';
import { enginePaths } from '../../engine/state/paths.js';

function cidr(text: string) {
  const c = parseCidr(text);
  assert.ok(c, text);
  return c;
}

describe('subnet allocation', () => {
  test("the pool follows Docker's order: 172.17-31/16 then 192.168.x/20", () => {
    const pool = defaultPool().map(formatCidr);
    assert.equal(pool[0], '172.17.0.0/16');
    assert.equal(pool[14], '172.31.0.0/16');
    assert.equal(pool[15], '192.168.0.0/20');
    assert.equal(pool[16], '192.168.16.0/20');
    assert.equal(pool.at(-1), '192.168.240.0/20');
  });

  test('routes, addresses and nameservers of the host are skipped', () => {
    const routes = [
      { dst: 'default', gateway: '10.0.0.1', dev: 'eth0' },
      { dst: '172.17.0.0/16', dev: 'docker0' },
      { dst: '172.18.5.0/24', dev: 'wg0' },
      { dst: '10.0.0.0/8', dev: 'eth0' },
    ];
    const addresses = [{ ifname: 'eth1', addr_info: [{ family: 'inet', local: '172.19.3.4', prefixlen: 32 }] }];
    const taken = takenFromHost(routes, addresses, ['172.20.0.53']);
    assert.equal(formatCidr(chooseSubnet(defaultPool(), taken) ?? cidr('0.0.0.0/0')), '172.21.0.0/16');
    assert.match(taken[0]?.holder ?? '', /host route 172\.17\.0\.0\/16 dev docker0/);
  });

  test('a covering route (172.16.0.0/12) pushes allocation to 192.168.0.0/20', () => {
    const taken = takenFromHost([{ dst: '172.16.0.0/12', dev: 'vpn0' }], []);
    assert.equal(formatCidr(chooseSubnet(defaultPool(), taken) ?? cidr('0.0.0.0/0')), '192.168.0.0/20');
  });

  test('networks of other roots count as taken, and an exhausted pool gives undefined', () => {
    const taken = defaultPool().map((c) => ({ cidr: c, holder: 'x' }));
    assert.equal(chooseSubnet(defaultPool(), taken), undefined);
  });

  test('user subnets and gateways are validated', () => {
    assert.equal(formatCidr(parseSubnet('10.99.0.0/24')), '10.99.0.0/24');
    assert.throws(() => parseSubnet('10.99.0.1/24'), /host bits/);
    assert.throws(() => parseSubnet('10.99.0.0'), /invalid subnet/);
    assert.throws(() => parseSubnet('10.99.0.0/31'), /between 8 and 30/);
    const subnet = cidr('10.99.0.0/24');
    assert.equal(formatIpv4(chooseGateway(subnet)), '10.99.0.1');
    assert.equal(formatIpv4(chooseGateway(subnet, '10.99.0.254')), '10.99.0.254');
    assert.throws(() => chooseGateway(subnet, '10.99.1.1'), /not a host address/);
    assert.throws(() => chooseGateway(subnet, '10.99.0.255'), /not a host address/);
  });

  test('addresses: lowest free, fixed ones validated inside the subnet', () => {
    const subnet = cidr('10.99.0.0/29');
    const gw = parseIpv4('10.99.0.1') ?? 0;
    const used = new Set([parseIpv4('10.99.0.2') ?? 0]);
    assert.equal(formatIpv4(allocateAddress(subnet, gw, used)), '10.99.0.3');
    assert.equal(formatIpv4(allocateAddress(subnet, gw, used, '10.99.0.6')), '10.99.0.6');
    assert.throws(
      () => allocateAddress(subnet, gw, used, '10.99.0.9'),
      (e: unknown) => isEngineError(e, 'invalid'),
    );
    assert.throws(() => allocateAddress(subnet, gw, used, '10.99.0.7'), /not a host address/);
    assert.throws(
      () => allocateAddress(subnet, gw, used, '10.99.0.2'),
      (e: unknown) => isEngineError(e, 'conflict'),
    );
    assert.throws(() => allocateAddress(subnet, gw, used, '10.99.0.1'), /gateway/);
    const full = new Set([2, 3, 4, 5, 6].map((n) => (parseIpv4('10.99.0.0') ?? 0) + n));
    assert.throws(() => allocateAddress(subnet, gw, full), /no free address/);
  });
});

describe('interface names', () => {
  test('bridges and veths fit IFNAMSIZ and carry the root prefix', () => {
    for (const root of ['/var/lib/tsfig', '/tmp/a', '/x/y/z']) {
      const { hostPrefix } = enginePaths(root, {});
      const br = bridgeName(hostPrefix, 'f'.repeat(64));
      const veth = vethName(hostPrefix, 'c'.repeat(64), 'f'.repeat(64));
      for (const name of [br, veth]) {
        assert.ok(name.length <= IFNAMSIZ_MAX, name);
        assert.ok(name.startsWith(hostPrefix), name);
        assert.ok(isValidIfname(name), name);
      }
      assert.match(br, /^tsf[0-9a-f]{4}b[0-9a-f]{7}$/);
      assert.match(veth, /^tsf[0-9a-f]{4}v[0-9a-f]{7}$/);
    }
    assert.notEqual(vethName('tsf0000', 'a', 'n'), vethName('tsf0000', 'b', 'n'));
    assert.equal(isValidIfname('a'.repeat(16)), false);
    assert.equal(macForIp(parseIpv4('172.17.0.2') ?? 0), '02:42:ac:11:00:02');
    // Roots whose 4-hex prefixes collide still get their own table and link alias.
    assert.notEqual(firewallTable('abcd0001'), firewallTable('abcd0002'));
    assert.equal(firewallTable('abcd0001'), 'tsfabcd0001');
    assert.equal(linkAlias('abcd0001'), 'tsfig:abcd0001');
  });
});
