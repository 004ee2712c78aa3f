// Item 3 of issue #15 (CVE-2020-13401 class). Containers have NET_RAW, as with Docker's defaults, so a hostile one can
// send IPv6 router advertisements onto its network's bridge. Networks here are IPv4 only: the bridge must not accept
// them (no address from the advertised prefix, no default route through the container), and the container ends do
// no IPv6 either. The attack is sent for real by a process of the container (`tsfig exec`, Docker's default
// capabilities) with an AF_PACKET socket, to the all-nodes group on its own link (test/security/send-ra.c); a control
// turns the bridge's IPv6 and RA acceptance back on, as they were before, and the same advertisement then gives the
// bridge an address from the prefix.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, REPO, writeProject, type TestEngine } from '../helpers/engine.js';

describe('IPv6 router advertisements from a container (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let probeDir: string;
  before(async () => {
    t = await makeTestEngine();
    probeDir = path.join(t.dir, 'probe');
    await mkdir(probeDir);
    const source = path.join(REPO, 'test', 'security', 'send-ra.c');
    execFileSync('cc', ['-O2', '-static', '-o', path.join(probeDir, 'send-ra'), source]);
  });
  after(async () => {
    await t.cleanup();
  });

  test('the bridge takes no address or route from them, and no interface of the network does IPv6', async () => {
    const dir = await writeProject(
      t,
      'rahostile',
      `services:\n  evil:\n    image: tsfig/busybox:latest\n    init: true\n    command: sleep 600\n    volumes: ["${probeDir}:/probe:ro"]\n`,
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

      const attack = async (): Promise<void> => {
        const sent = await t.cli(['exec', '-T', 'evil', '/probe/send-ra'], { cwd: dir });
        assert.equal(sent.stdout.trim(), 'sent', sent.stderr);
        await sleep(1500);
      };
      await attack();

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

      // control: with the bridge as it came up before (IPv6 on, RAs accepted), the same attack takes it over
      writeFileSync(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, '0');
      writeFileSync(`/proc/sys/net/ipv6/conf/${bridge}/accept_ra`, '2');
      await attack();
      await attack();
      const taken = execFileSync('ip', ['-6', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' });
      assert.match(
        taken,
        /2001:db8:bad/,
        `the control's bridge took no address: the attack did not reach it\n${taken}`,
      );
    } finally {
      await t.cli(['down', '-t', '0'], { cwd: dir });
    }
  });
});
