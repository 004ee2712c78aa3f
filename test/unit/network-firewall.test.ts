import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderHostsFile } from '../../engine/network/hosts.js';
import { desiredRules, splitRule } from '../../engine/network/iptables.js';
import { renderRuleset } from '../../engine/network/nft.js';
import type { NetworkState } from '../../engine/network/types.js';

// Reviewed against Docker 28's nftables golden files (hairpin=true, bindlh=true) and checked with `nft -c -f`.
const GOLDEN = `table ip tsf1234 {}
delete table ip tsf1234
table ip tsf1234 {
	map fwd-in {
		type ifname : verdict
		elements = { "tsf1234baaaaaaa" : jump fwd-in-tsf1234baaaaaaa, "tsf1234bbbbbbbb" : jump fwd-in-tsf1234bbbbbbbb }
	}

	map fwd-out {
		type ifname : verdict
		elements = { "tsf1234baaaaaaa" : jump fwd-out-tsf1234baaaaaaa, "tsf1234bbbbbbbb" : jump fwd-out-tsf1234bbbbbbbb }
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname vmap @fwd-in
		iifname vmap @fwd-out
	}

	chain raw-prerouting {
		type filter hook prerouting priority raw; policy accept;
		ip daddr 172.18.0.0/16 iifname != { "lo", "tsf1234baaaaaaa" } drop comment "no direct access"
		ip daddr 172.19.0.0/16 iifname != { "lo", "tsf1234bbbbbbbb" } drop comment "no direct access"
		iifname { "tsf1234baaaaaaa", "tsf1234bbbbbbbb" } ip daddr 127.0.0.0/8 drop comment "no loopback from containers"
		iifname != "lo" ip daddr 127.0.0.1 tcp dport 8081 drop comment "remote loopback"
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "tsf1234baaaaaaa" ip daddr 172.18.0.1 meta l4proto { tcp, udp } th dport 53 return comment "embedded dns"
		iifname "tsf1234bbbbbbbb" ip daddr 172.19.0.1 meta l4proto { tcp, udp } th dport 53 return comment "embedded dns"
		fib daddr type local jump published
	}

	chain nat-output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump published
	}

	chain published {
		tcp dport 8080 dnat to 172.18.0.2:80
		ip daddr 127.0.0.1 tcp dport 8081 dnat to 172.18.0.2:81
		udp dport 5353 dnat to 172.18.0.3:53
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "tsf1234baaaaaaa" fib saddr type local masquerade comment "from host"
		oifname "tsf1234baaaaaaa" ip saddr 172.18.0.0/16 ct status dnat masquerade comment "hairpin"
		oifname != "tsf1234baaaaaaa" ip saddr 172.18.0.0/16 masquerade comment "outgoing"
		oifname "tsf1234bbbbbbbb" fib saddr type local masquerade comment "from host"
		oifname "tsf1234bbbbbbbb" ip saddr 172.19.0.0/16 ct status dnat masquerade comment "hairpin"
	}

	chain fwd-in-tsf1234baaaaaaa {
		ct state established,related accept
		iifname "tsf1234baaaaaaa" accept comment "icc"
		ct status dnat accept comment "published port"
		drop comment "unpublished port drop"
	}

	chain fwd-out-tsf1234baaaaaaa {
		ct state established,related accept
		accept comment "outgoing"
	}

	chain fwd-in-tsf1234bbbbbbbb {
		ct state established,related accept
		iifname "tsf1234bbbbbbbb" accept comment "icc"
		drop comment "unpublished port drop"
	}

	chain fwd-out-tsf1234bbbbbbbb {
		ct state established,related accept
		drop comment "internal network"
	}
}
`;

describe('nft ruleset', () => {
  test('renders one transaction, deterministic whatever the input order (golden)', () => {
    const text = renderRuleset('tsf1234', [
      {
        bridge: 'tsf1234bbbbbbbb',
        subnet: '172.19.0.0/16',
        gateway: '172.19.0.1',
        internal: true,
        endpoints: [{ ip: '172.19.0.2', ports: [] }],
      },
      {
        bridge: 'tsf1234baaaaaaa',
        subnet: '172.18.0.0/16',
        gateway: '172.18.0.1',
        internal: false,
        endpoints: [
          { ip: '172.18.0.3', ports: [{ proto: 'udp', hostIp: '', hostPort: 5353, containerPort: 53 }] },
          {
            ip: '172.18.0.2',
            ports: [
              { proto: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80 },
              { proto: 'tcp', hostIp: '127.0.0.1', hostPort: 8081, containerPort: 81 },
            ],
          },
        ],
      },
    ]);
    assert.equal(text, GOLDEN);
  });

  test('rootless: the DNAT rules match the port only (slirp4netns binds the host address, traffic arrives at 10.0.2.100)', () => {
    const network = {
      bridge: 'tsf1234baaaaaaa',
      subnet: '172.18.0.0/16',
      gateway: '172.18.0.1',
      internal: false,
      endpoints: [
        {
          ip: '172.18.0.2',
          ports: [{ proto: 'tcp' as const, hostIp: '127.0.0.1', hostPort: 8081, containerPort: 81 }],
        },
      ],
    };
    assert.match(
      renderRuleset('tsf1234', [network]),
      /\tip daddr 127\.0\.0\.1 tcp dport 8081 dnat to 172\.18\.0\.2:81\n/,
    );
    const rootless = renderRuleset('tsf1234', [network], { rootless: true });
    assert.match(rootless, /\ttcp dport 8081 dnat to 172\.18\.0\.2:81\n/);
    assert.doesNotMatch(rootless, /ip daddr 127\.0\.0\.1 tcp dport 8081 dnat/);
  });

  test('no networks renders only the deletion of the table', () => {
    assert.equal(renderRuleset('tsf1234', []), 'table ip tsf1234 {}\ndelete table ip tsf1234\n');
  });
});

describe('iptables coexistence rules', () => {
  test('one accept per direction and subnet, tagged with the root', () => {
    assert.deepEqual(desiredRules('abcd1234', ['172.18.0.0/16']), [
      ['-s', '172.18.0.0/16', '-m', 'comment', '--comment', 'tsfig-abcd1234', '-j', 'ACCEPT'],
      ['-d', '172.18.0.0/16', '-m', 'comment', '--comment', 'tsfig-abcd1234', '-j', 'ACCEPT'],
    ]);
    assert.deepEqual(splitRule('-A DOCKER-USER -s 172.18.0.0/16 -m comment --comment "tsfig x" -j ACCEPT'), [
      '-A',
      'DOCKER-USER',
      '-s',
      '172.18.0.0/16',
      '-m',
      'comment',
      '--comment',
      'tsfig x',
      '-j',
      'ACCEPT',
    ]);
  });
});

describe('/etc/hosts', () => {
  test("a container's own names, then the other containers of its networks", () => {
    const endpoint = (containerId: string, ip: string, name: string, aliases: string[] = []) => ({
      containerId,
      containerName: name,
      hostname: undefined,
      aliases,
      ip,
      mac: '',
      hostVeth: '',
      ifname: 'eth0',
      sandbox: '',
      ports: [],
    });
    const network = (id: string, endpoints: ReturnType<typeof endpoint>[]): NetworkState => ({
      version: 1,
      id,
      name: id,
      driver: 'bridge',
      created: '',
      subnet: '',
      gateway: '',
      bridge: '',
      internal: false,
      labels: {},
      endpoints: Object.fromEntries(endpoints.map((e) => [e.containerId, e])),
    });
    const hosts = renderHostsFile('web', [
      network('front', [
        endpoint('web', '172.18.0.2', 'p-web-1', ['web']),
        endpoint('db', '172.18.0.3', 'p-db-1', ['db']),
      ]),
      network('other', [endpoint('x', '172.19.0.2', 'p-x-1')]),
    ]);
    assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(hosts, /^172\.18\.0\.2\tp-web-1 web$/m);
    assert.match(hosts, /^172\.18\.0\.3\tp-db-1 db$/m);
    assert.doesNotMatch(hosts, /172\.19\.0\.2/);
  });
});
