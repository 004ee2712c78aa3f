import { run } from './exec.js';
import type { PublishedPort } from './ports.js';
import { compareText } from '../state/compare.js';

/** What the firewall of one root is derived from: its networks, their endpoints and published ports. */
export interface FirewallNetwork {
  readonly bridge: string;
  readonly subnet: string;
  /** Bridge address, where the embedded resolver listens. */
  readonly gateway: string;
  readonly internal: boolean;
  readonly endpoints: readonly { readonly ip: string; readonly ports: readonly PublishedPort[] }[];
}

interface PortRule extends PublishedPort {
  readonly ip: string;
}

function q(name: string): string {
  return `"${name}"`;
}

function compareRules(a: PortRule, b: PortRule): number {
  return compareText(a.proto, b.proto) || a.hostPort - b.hostPort || compareText(a.hostIp, b.hostIp);
}

function bridgeChains(n: FirewallNetwork): string[] {
  const br = q(n.bridge);
  const fwdIn = [
    `\tchain fwd-in-${n.bridge} {`,
    '\t\tct state established,related accept',
    `\t\tiifname ${br} accept comment "icc"`,
    ...(n.internal ? [] : ['\t\tct status dnat accept comment "published port"']),
    '\t\tdrop comment "unpublished port drop"',
    '\t}',
  ];
  const fwdOut = [
    `\tchain fwd-out-${n.bridge} {`,
    '\t\tct state established,related accept',
    n.internal ? '\t\tdrop comment "internal network"' : '\t\taccept comment "outgoing"',
    '\t}',
  ];
  return [...fwdIn, '', ...fwdOut];
}

/**
 * Renders the whole table of one root as one `nft -f` transaction: create-if-missing, delete, define. The kernel
 * applies it atomically, so a crash never leaves half a ruleset and re-applying repairs any drift. Pure and
 * deterministic (golden-tested). An empty network list renders only the deletion.
 *
 * Modelled on Docker 28's nftables backend (table `ip docker-bridges`, hairpin mode without docker-proxy):
 * DNAT from prerouting and output for `fib daddr type local`, masquerade of host-originated and hairpin traffic
 * into a bridge, masquerade of the subnet leaving through other interfaces, per-bridge forward chains that accept
 * established, intra-network and DNATed traffic and drop the rest (which isolates networks from each other), and a
 * raw-prerouting guard against direct access to container addresses and to 127.0.0.1-published ports.
 * Rootless (engine/rootless/ports.ts), slirp4netns binds the host address and every published port arrives at
 * 10.0.2.100 in the session's namespace: the DNAT rules then match the port only.
 */
export function renderRuleset(
  table: string,
  networks: readonly FirewallNetwork[],
  options: { rootless?: boolean } = {},
): string {
  const head = [`table ip ${table} {}`, `delete table ip ${table}`];
  if (networks.length === 0) return `${head.join('\n')}\n`;
  const sorted = [...networks].sort((a, b) => compareText(a.bridge, b.bridge));
  const bridges = sorted.map((n) => q(n.bridge));
  const ports: PortRule[] = sorted
    .filter((n) => !n.internal)
    .flatMap((n) => n.endpoints.flatMap((e) => e.ports.map((p) => ({ ...p, ip: e.ip }))))
    .sort(compareRules);
  const vmap = (prefix: string): string => sorted.map((n) => `${q(n.bridge)} : jump ${prefix}-${n.bridge}`).join(', ');
  const lines: string[] = [
    `table ip ${table} {`,
    '\tmap fwd-in {',
    '\t\ttype ifname : verdict',
    `\t\telements = { ${vmap('fwd-in')} }`,
    '\t}',
    '',
    '\tmap fwd-out {',
    '\t\ttype ifname : verdict',
    `\t\telements = { ${vmap('fwd-out')} }`,
    '\t}',
    '',
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    '\t\toifname vmap @fwd-in',
    '\t\tiifname vmap @fwd-out',
    '\t}',
    '',
    '\tchain raw-prerouting {',
    '\t\ttype filter hook prerouting priority raw; policy accept;',
    ...sorted.map(
      (n) => `\t\tip daddr ${n.subnet} iifname != { "lo", ${q(n.bridge)} } drop comment "no direct access"`,
    ),
    `\t\tiifname { ${bridges.join(', ')} } ip daddr 127.0.0.0/8 drop comment "no loopback from containers"`,
    ...ports
      .filter((p) => p.hostIp.startsWith('127.'))
      .map(
        (p) => `\t\tiifname != "lo" ip daddr ${p.hostIp} ${p.proto} dport ${p.hostPort} drop comment "remote loopback"`,
      ),
    '\t}',
    '',
    '\tchain nat-prerouting {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    ...sorted.map(
      (n) =>
        `\t\tiifname ${q(n.bridge)} ip daddr ${n.gateway} meta l4proto { tcp, udp } th dport 53 return comment "embedded dns"`,
    ),
    '\t\tfib daddr type local jump published',
    '\t}',
    '',
    '\tchain nat-output {',
    '\t\ttype nat hook output priority -100; policy accept;',
    '\t\tfib daddr type local jump published',
    '\t}',
    '',
    '\tchain published {',
    ...ports.map(
      (p) =>
        `\t\t${p.hostIp === '' || options.rootless === true ? '' : `ip daddr ${p.hostIp} `}${p.proto} dport ${p.hostPort} dnat to ${p.ip}:${p.containerPort}`,
    ),
    '\t}',
    '',
    '\tchain nat-postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...sorted.flatMap((n) => [
      `\t\toifname ${q(n.bridge)} fib saddr type local masquerade comment "from host"`,
      `\t\toifname ${q(n.bridge)} ip saddr ${n.subnet} ct status dnat masquerade comment "hairpin"`,
      ...(n.internal ? [] : [`\t\toifname != ${q(n.bridge)} ip saddr ${n.subnet} masquerade comment "outgoing"`]),
    ]),
    '\t}',
    '',
    ...sorted.flatMap((n) => [...bridgeChains(n), '']),
  ];
  lines.pop();
  lines.push('}');
  return `${[...head, ...lines].join('\n')}\n`;
}

/** Applies a rendered transaction with one `nft -f -`. */
export async function applyRuleset(text: string): Promise<void> {
  await run('nft', ['-f', '-'], text, 'apply nftables ruleset');
}
