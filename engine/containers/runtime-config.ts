import path from 'node:path';
import type { ConfEntry } from '../runtime/conf.js';
import { containerFileEnv, containerFileMounts } from '../volumes/files.js';
import type { ContainerRecord } from './types.js';

/** Where a container's files live. */
export interface ContainerDirs {
  readonly dir: string;
  readonly runDir: string;
  /** The cgroup path under each hierarchy's root, or `none` (rootless without writable cgroups). */
  readonly cgroup: string;
}

export function containerFiles(dir: string) {
  // One join, then concatenation: what path.join of each name gives (`ps` of 50 asked for 500 joins).
  const base = path.join(dir, '/');
  return {
    record: `${base}container.json`,
    runtimeConf: `${base}runtime.conf`,
    status: `${base}status.json`,
    log: `${base}container-json.log`,
    rootfs: `${base}rootfs`,
    upper: `${base}upper`,
    work: `${base}work`,
    hostname: `${base}hostname`,
    hosts: `${base}hosts`,
    resolvConf: `${base}resolv.conf`,
  };
}

/** Docker's rlimit names (`nofile`) to the runtime's (`NOFILE`). */
function rlimitName(name: string): string {
  return name.toUpperCase().replace(/^RLIMIT_/, '');
}

/** A command the monitor runs once the container has exited for good (conmon's --exit-command). */
export interface ExitCommand {
  /** argv; argv[0] is an absolute path. */
  readonly argv: readonly string[];
  /** The command's whole environment (KEY=VALUE). */
  readonly env: readonly string[];
}

/**
 * With a user namespace on a file system without idmapped mounts (chown-on-copy, engine/containers/shift.ts): what
 * is mounted as it is instead of idmapped.
 */
export interface ShiftPlan {
  /** The lower dirs given are the range's copies of the layers. */
  readonly lowerShifted: boolean;
  /** Mounts (by destination) not idmapped: a volume chowned to the range, an image mount's copies (its source). */
  readonly mounts: ReadonlyMap<string, { readonly source: string }>;
  /** The engine's files (the container's dir) are not idmapped. */
  readonly engineFiles: boolean;
}

/** Mounts whose stored ids are the container's own (a volume; an image's layers, bind or overlay): idmapped with a
 * user namespace. */
function idmapped(mount: ContainerRecord['mounts'][number]): boolean {
  return (mount.type === 'bind' && mount.volumeName !== undefined) || mount.imageId !== undefined;
}

/**
 * The runtime.conf entries for a container: pure, from its record, its image's layer dirs (topmost first), the
 * netns decided by the caller (`host`, `new`, or a path), the optional exit command (autoRemove), the
 * oom_score_adj (0, or rootless the engine's own: see containerOomScoreAdj) and, with a user namespace where
 * idmapped mounts are not available, what was chowned instead (shift).
 */
export function runtimeConfEntries(
  record: ContainerRecord,
  lowerDirs: readonly string[],
  dirs: ContainerDirs,
  netns: string,
  exit?: ExitCommand,
  oomScoreAdj = 0,
  shift?: ShiftPlan,
): ConfEntry[] {
  const files = containerFiles(dirs.dir);
  const spec = record.spec;
  const fileEnv = containerFileEnv(dirs.dir, spec.files ?? []);
  const fileEnvKeys = new Set(fileEnv.map((entry) => entry.slice(0, entry.indexOf('='))));
  const entries: ConfEntry[] = [
    ['id', record.id],
    ['name', record.name],
    ['rootfs', files.rootfs],
    ...lowerDirs.map((dir): ConfEntry => ['lower', dir]),
    ['upper', files.upper],
    ['work', files.work],
    ['readonly', spec.readonlyRootfs === true],
    ['hostname', record.hostname],
    ...record.process.argv.map((arg): ConfEntry => ['arg', arg]),
    ...record.process.env
      .filter((env) => !fileEnvKeys.has(env.slice(0, env.indexOf('=') < 0 ? env.length : env.indexOf('='))))
      .map((env): ConfEntry => ['env', env]),
    ...fileEnv.map((env): ConfEntry => ['env_file', env]),
    ['cwd', record.process.cwd],
    ['user', record.process.user],
    ...(spec.groupAdd ?? []).map((group): ConfEntry => ['group_add', group]),
    ['netns', netns],
  ];
  // User mounts first (sorted parents-first by engine/volumes), then the files the engine writes, so a volume on
  // /etc does not hide /etc/hosts; a user mount on exactly one of those files wins.
  for (const mount of record.mounts) {
    const shifted = shift?.mounts.get(mount.destination);
    const source = shifted?.source ?? mount.source;
    entries.push(['mount', mount.destination], ['mount.type', mount.type], ['mount.source', source]);
    entries.push(['mount.options', mount.options.join(',')]);
    if (mount.copy === true) entries.push(['mount.copy', true]);
    if (mount.subpath !== undefined) entries.push(['mount.subpath', mount.subpath]);
    // A volume is stored with the container's own ids and mapped to each container's range, and so is an image
    // mounted as a volume (its layers, as the root file system's); a host path is not.
    if (record.userns !== undefined && idmapped(mount) && shifted === undefined) entries.push(['mount.idmap', true]);
  }
  const engineIdmap = record.userns !== undefined && shift?.engineFiles !== true;
  // The files the engine wrote (secrets, configs): after the user's mounts, so a tmpfs on /run keeps /run/secrets.
  for (const file of containerFileMounts(dirs.dir, spec.files ?? [])) {
    entries.push(['mount', file.destination], ['mount.type', 'bind'], ['mount.source', file.source]);
    entries.push(['mount.options', file.options.join(',')]);
    if (engineIdmap) entries.push(['mount.idmap', true]);
  }
  const userDestinations = new Set(record.mounts.map((mount) => mount.destination));
  const systemMounts: Array<[string, string]> = [
    ['/etc/hostname', files.hostname],
    ['/etc/hosts', files.hosts],
    ['/etc/resolv.conf', files.resolvConf],
  ];
  for (const [destination, source] of systemMounts) {
    if (userDestinations.has(destination)) continue;
    entries.push(
      ['mount', destination],
      ['mount.type', 'bind'],
      ['mount.source', source],
      ['mount.options', 'rbind,rprivate'],
      ...(engineIdmap ? [['mount.idmap', true] as ConfEntry] : []),
    );
  }
  for (const cap of record.capabilities) entries.push(['cap', cap]);
  entries.push(
    ['privileged', spec.privileged === true],
    ['seccomp', spec.privileged === true ? 'unconfined' : (spec.seccomp ?? 'default')],
    ['no_new_privs', spec.noNewPrivileges === true],
  );
  for (const limit of spec.ulimits ?? [])
    entries.push(['rlimit', `${rlimitName(limit.name)} ${limit.soft} ${limit.hard}`]);
  for (const [key, value] of Object.entries(usernsSysctls(record, netns))) entries.push(['sysctl', `${key} ${value}`]);
  if (record.userns !== undefined) {
    const { uid, gid, size } = record.userns;
    entries.push(['userns', `${uid} ${gid} ${size}`]);
    if (shift?.lowerShifted === true) entries.push(['lower_shifted', true]);
  }
  entries.push(['cgroup', dirs.cgroup]);
  entries.push(['memory', spec.memory ?? 0], ['memory_swap', spec.memorySwap ?? 0], ['pids', spec.pidsLimit ?? 0]);
  if (spec.shmSize !== undefined && spec.shmSize > 0) entries.push(['shm_size', spec.shmSize]);
  if (spec.nanoCpus !== undefined && spec.nanoCpus > 0) {
    const period = 100_000;
    entries.push(['cpu_quota', Math.round((spec.nanoCpus / 1e9) * period)], ['cpu_period', period]);
  }
  entries.push(['cpu_shares', spec.cpuShares ?? 0]);
  entries.push(['init', spec.init === true], ['tty', spec.tty === true], ['stdin', spec.openStdin === true]);
  entries.push(['log', files.log], ['log_max_size', spec.logMaxSize ?? 0], ['log_max_files', spec.logMaxFiles ?? 1]);
  entries.push(['stop_signal', record.stopSignal], ['oom_score_adj', oomScoreAdj]);
  entries.push(...policyEntries(spec));
  entries.push(['run_dir', dirs.runDir], ['status', files.status]);
  for (const arg of exit?.argv ?? []) entries.push(['exit_cmd', arg]);
  for (const env of exit?.env ?? []) entries.push(['exit_env', env]);
  return entries;
}

/**
 * The container's sysctls. With a user namespace its network namespace is still the host user namespace's (as with
 * Docker's userns-remap), where container root has no CAP_NET_BIND_SERVICE or CAP_NET_RAW: ports below 1024 and ping
 * are opened to every uid of the container instead, as Docker does for every container (its defaults,
 * `net.ipv4.ip_unprivileged_port_start=0` and `net.ipv4.ping_group_range=0 2147483647`), unless the spec sets them.
 */
function usernsSysctls(record: ContainerRecord, netns: string): Readonly<Record<string, string>> {
  const own = record.spec.sysctls ?? {};
  if (record.userns === undefined || netns === 'host' || (record.spec.network ?? '').startsWith('container:'))
    return own;
  return {
    'net.ipv4.ip_unprivileged_port_start': '0',
    'net.ipv4.ping_group_range': '0 2147483647',
    ...own,
  };
}

/** Restart policy and healthcheck, enforced by the container's monitor (native/PROTOCOL.md). */
function policyEntries(spec: ContainerRecord['spec']): ConfEntry[] {
  const entries: ConfEntry[] = [];
  const restart = spec.restart;
  if (restart !== undefined && restart.name !== 'no') {
    entries.push(['restart', restart.name]);
    const max = restart.maxRetries ?? 0;
    if (restart.name === 'on-failure' && max > 0) entries.push(['restart_max', Math.trunc(max)]);
  }
  const health = spec.healthcheck;
  if (health !== undefined && health.test.length > 0 && health.test[0] !== 'NONE') {
    for (const part of health.test) entries.push(['health_cmd', part]);
    const durations: Array<[string, number | undefined]> = [
      ['health_interval_ms', health.intervalMs],
      ['health_timeout_ms', health.timeoutMs],
      ['health_retries', health.retries],
      ['health_start_period_ms', health.startPeriodMs],
      ['health_start_interval_ms', health.startIntervalMs],
    ];
    for (const [key, value] of durations) {
      if (value !== undefined && value > 0) entries.push([key, Math.round(value)]);
    }
  }
  return entries;
}
