import { EngineError } from '../errors.js';

/** Every capability the kernel knows, in number order (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

/** Docker's default set (moby daemon/pkg/oci/caps/defaults.go): CapEff 00000000a80425fb. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

function normalize(name: string, flag: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!(ALL_CAPABILITIES as readonly string[]).includes(full)) {
    throw new EngineError('invalid', `${flag}: unknown capability "${name}"`, {
      hint: `capabilities are named like NET_ADMIN or CAP_NET_ADMIN; see capabilities(7)`,
    });
  }
  return full;
}

/** The final capability set, as docker computes it: defaults, minus drops, plus adds (`ALL` allowed in both). */
export function resolveCapabilities(
  options: { capAdd?: readonly string[]; capDrop?: readonly string[]; privileged?: boolean } = {},
): string[] {
  if (options.privileged === true) return [...ALL_CAPABILITIES];
  const adds = (options.capAdd ?? []).map((name) => normalize(name, '--cap-add'));
  const drops = (options.capDrop ?? []).map((name) => normalize(name, '--cap-drop'));
  let set = new Set<string>(DEFAULT_CAPABILITIES);
  if (drops.includes('ALL')) set = new Set();
  for (const drop of drops) set.delete(drop);
  if (adds.includes('ALL')) set = new Set(ALL_CAPABILITIES);
  for (const add of adds) if (add !== 'ALL') set.add(add);
  return ALL_CAPABILITIES.filter((name) => set.has(name));
}

/** The CapEff hex string (16 digits) the kernel shows for a set. */
export function capabilityMask(names: readonly string[]): string {
  let mask = 0n;
  for (const name of names) {
    const bit = (ALL_CAPABILITIES as readonly string[]).indexOf(name);
    if (bit >= 0) mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, '0');
}
