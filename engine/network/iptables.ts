import { promises as fs } from 'node:fs';
import { execCommand } from './exec.js';

/**
 * Coexistence with iptables firewalls (Docker's, or a host's FORWARD policy DROP). A packet crosses every base chain
 * on a hook, so an accept in tsfig's own nft table is not enough when an iptables FORWARD chain drops it. Where an
 * iptables filter table exists, tsfig keeps one pair of rules per subnet, tagged with a comment naming its root:
 * in `DOCKER-USER` when that chain exists (Docker's documented place), else at the top of `FORWARD` when its policy
 * is DROP. Rules of the root no longer wanted are deleted, so removing the last network removes them all.
 */
export interface IptablesVariant {
  readonly binary: string;
  /** Whether a filter table exists for this variant; listing an absent table must not create it. */
  present(): Promise<boolean>;
}

async function nftHasFilterTable(): Promise<boolean> {
  const result = await execCommand('nft', ['list', 'tables', 'ip']).catch(() => undefined);
  return result !== undefined && result.code === 0 && /^table ip filter$/m.test(result.stdout);
}

async function legacyHasFilterTable(): Promise<boolean> {
  const text = await fs.readFile('/proc/net/ip_tables_names', 'utf8').catch(() => '');
  return /^filter$/m.test(text);
}

export const IPTABLES_VARIANTS: readonly IptablesVariant[] = [
  { binary: 'iptables-nft', present: nftHasFilterTable },
  { binary: 'iptables-legacy', present: legacyHasFilterTable },
];

export function ruleComment(rootId: string): string {
  return `tsfig-${rootId}`;
}

/** Desired rule specs (without `-A chain`) for the subnets. */
export function desiredRules(rootId: string, subnets: readonly string[]): string[][] {
  const comment = ['-m', 'comment', '--comment', ruleComment(rootId)];
  return subnets.flatMap((subnet) => [
    ['-s', subnet, ...comment, '-j', 'ACCEPT'],
    ['-d', subnet, ...comment, '-j', 'ACCEPT'],
  ]);
}

async function ipt(binary: string, args: readonly string[]): Promise<{ code: number; stdout: string }> {
  const result = await execCommand(binary, ['-w', '5', ...args]).catch(() => ({ code: 127, stdout: '', stderr: '' }));
  return result;
}

/** Splits one `iptables -S` line into arguments, honouring double quotes. */
export function splitRule(line: string): string[] {
  const args: string[] = [];
  for (const match of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) args.push(match[1] ?? match[2] ?? '');
  return args;
}

/** Brings one variant's tsfig rules for rootId in line with subnets. Returns a description of what changed. */
export async function syncVariant(
  variant: IptablesVariant,
  rootId: string,
  subnets: readonly string[],
): Promise<string[]> {
  if (!(await variant.present())) return [];
  const { binary } = variant;
  const changes: string[] = [];
  const comment = ruleComment(rootId);
  const hasDockerUser = (await ipt(binary, ['-S', 'DOCKER-USER'])).code === 0;
  const forward = await ipt(binary, ['-S', 'FORWARD']);
  if (forward.code !== 0) return [];
  const forwardDrops = /^-P FORWARD DROP$/m.test(forward.stdout);
  const target = hasDockerUser ? 'DOCKER-USER' : forwardDrops ? 'FORWARD' : undefined;
  const wanted = target === undefined ? [] : desiredRules(rootId, subnets);
  const wantedKeys = new Set(wanted.map((r) => `${target} ${r.join(' ')}`));
  const present = new Set<string>();
  for (const chain of hasDockerUser ? ['DOCKER-USER', 'FORWARD'] : ['FORWARD']) {
    const listing = chain === 'FORWARD' ? forward : await ipt(binary, ['-S', chain]);
    for (const line of listing.stdout.split('\n')) {
      if (!line.startsWith(`-A ${chain} `) || !line.includes(comment)) continue;
      const args = splitRule(line).slice(2);
      const key = `${chain} ${args.join(' ')}`;
      if (wantedKeys.has(key) && !present.has(key)) {
        present.add(key);
        continue;
      }
      await ipt(binary, ['-D', chain, ...args]);
      changes.push(`${binary} -D ${chain} ${args.join(' ')}`);
    }
  }
  if (target !== undefined) {
    for (const rule of [...wanted].reverse()) {
      if (present.has(`${target} ${rule.join(' ')}`)) continue;
      const result = await ipt(binary, ['-I', target, ...rule]);
      if (result.code === 0) changes.push(`${binary} -I ${target} ${rule.join(' ')}`);
    }
  }
  return changes;
}

export async function syncIptables(rootId: string, subnets: readonly string[]): Promise<string[]> {
  const changes: string[] = [];
  for (const variant of IPTABLES_VARIANTS) changes.push(...(await syncVariant(variant, rootId, subnets)));
  return changes;
}
