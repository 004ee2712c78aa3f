import { defaultUserns, parseUsernsMode, USERNS_HINT, type UsernsMode } from '../../userns.js';
import { inspectFormatter } from '../go-template.js';
import { readFileSync } from 'node:fs';
import { setExitCode } from '../exit-codes.js';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { ContainerManager } from '../../../engine/containers/index.js';
import { createEngine, type Engine } from '../../../engine/index.js';
import type { ContainerMount, ContainerSpec, Ulimit } from '../../../engine/containers/index.js';
import { checkUserns, removeIfExited, withAutoRemoveHold } from '../../../engine/containers/index.js';
import { isFrozen } from '../../../engine/containers/index.js';
import { isEngineError } from '../../../engine/errors.js';
import { shortId } from '../../../engine/state/index.js';
import { containerRecordUsers } from '../../../engine/volumes/index.js';
import { TsfigError } from '../../errors.js';
import { attachStdin } from '../attach.js';
import { autoRemoveCommand } from '../cleanup-command.js';
import { openEngine } from '../engine.js';
import { renderTable, relativeTime } from '../table.js';
import { collect, expandEnv, expandEnvFlags, parseBytes, parseCount, parseCpus } from '../units.js';
import { parseDuration } from '../../config/values.js';
import { resolveCliMounts } from './mount-flags.js';
import { registerContainerVerbs } from './container-verbs.js';
import { registerContainerAttach } from '../attach-session.js';
import { userSpecProblem } from '../../../engine/containers/index.js';
import { parseLogTime } from '../log-time.js';

/** Options shared by `container run` and `container create`, with docker's names. */
interface CreateFlags {
  name?: string;
  env?: string[];
  envFile?: string[];
  user?: string;
  workdir?: string;
  entrypoint?: string;
  init?: boolean;
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  readOnly?: boolean;
  userns?: string;
  tmpfs?: string[];
  volume?: string[];
  mount?: string[];
  volumesFrom?: string[];
  network?: string;
  ip?: string;
  networkAlias?: string[];
  publish?: string[];
  publishAll?: boolean;
  addHost?: string[];
  hostname?: string;
  stopTimeout?: string;
  stopSignal?: string;
  label?: string[];
  ulimit?: string[];
  sysctl?: string[];
  securityOpt?: string[];
  groupAdd?: string[];
  logOpt?: string[];
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  restart?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  healthcheck?: boolean;
}

function addCreateOptions(command: Command): Command {
  return command
    .option('--name <name>', 'assign a name to the container')
    .option('-e, --env <KEY=VALUE>', 'set environment variables', collect)
    .option('--env-file <file>', 'read environment variables from a file', collect)
    .option('-u, --user <user[:group]>', 'user name or uid (and group)')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--entrypoint <command>', "overwrite the image's entrypoint")
    .option('--init', 'run an init inside the container that forwards signals and reaps processes')
    .option('-m, --memory <bytes>', 'memory limit')
    .option('--memory-swap <bytes>', 'memory + swap limit (-1 unlimited)')
    .option('--cpus <number>', 'number of CPUs')
    .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
    .option('--pids-limit <n>', 'tune the container pids limit (-1 unlimited)')
    .option('--cap-add <cap>', 'add Linux capabilities', collect)
    .option('--cap-drop <cap>', 'drop Linux capabilities', collect)
    .option('--privileged', 'give extended privileges to this container')
    .option('--read-only', "mount the container's root filesystem as read only")
    .option(
      '--userns <mode>',
      'user namespace: auto (a range of subordinate ids of its own) or host (default, or TSFIG_USERNS)',
    )
    .option('--tmpfs <path[:options]>', 'mount a tmpfs directory', collect)
    .option('-v, --volume <spec>', 'bind mount a volume', collect)
    .option('--mount <spec>', 'attach a filesystem mount to the container', collect)
    .option('--volumes-from <container[:ro|rw]>', 'mount volumes from the specified container', collect)
    .option('--network <network>', 'connect the container to a network (a name, none, host, container:NAME)', 'none')
    .option('--ip <address>', 'IPv4 address on the network')
    .option('--network-alias <alias>', 'add a network-scoped alias for the container', collect)
    .option('-p, --publish <spec>', "publish a container's port(s) to the host", collect)
    .option('-P, --publish-all', 'publish all exposed ports to random host ports')
    .option('--add-host <host:ip>', 'add a custom host-to-IP mapping', collect)
    .option('--hostname <name>', 'container host name')
    .option('--stop-timeout <seconds>', 'timeout to stop the container')
    .option('--stop-signal <signal>', 'signal to stop the container')
    .option('-l, --label <key=value>', 'set metadata on the container', collect)
    .option('--ulimit <name=soft[:hard]>', 'ulimit options', collect)
    .option('--sysctl <key=value>', 'sysctl options', collect)
    .option('--security-opt <opt>', 'security options (no-new-privileges, seccomp=unconfined)', collect)
    .option('--group-add <group>', 'add additional groups to join', collect)
    .option('--log-opt <key=value>', 'log driver options (max-size, max-file)', collect)
    .option('-i, --interactive', 'keep STDIN open')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--rm', 'automatically remove the container when it exits')
    .option('--restart <policy>', 'restart policy: no, always, on-failure[:max-retries], unless-stopped')
    .option('--health-cmd <command>', 'command to run to check health (run by /bin/sh -c)')
    .option('--health-interval <duration>', 'time between running the check (ms|s|m|h)')
    .option('--health-timeout <duration>', 'maximum time to allow one check to run (ms|s|m|h)')
    .option('--health-retries <n>', 'consecutive failures needed to report unhealthy')
    .option('--health-start-period <duration>', 'start period for the container to initialize (ms|s|m|h)')
    .option('--health-start-interval <duration>', 'time between checks during the start period (ms|s|m|h)')
    .option('--no-healthcheck', 'disable any container-specified healthcheck');
}

/** docker's --restart: no, always, unless-stopped, on-failure[:N]. */
function parseRestart(value: string): NonNullable<ContainerSpec['restart']> {
  const match = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(value.trim());
  if (match === null || (match[2] !== undefined && match[1] !== 'on-failure')) {
    throw new TsfigError('usage', `--restart: invalid restart policy "${value}"`, {
      hint: 'use no, always, unless-stopped or on-failure[:max-retries]',
    });
  }
  const name = match[1] as NonNullable<ContainerSpec['restart']>['name'];
  return match[2] !== undefined ? { name, maxRetries: Number(match[2]) } : { name };
}

function durationFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(value);
  } catch {
    throw new TsfigError('usage', `${flag}: invalid duration "${value}"`, {
      hint: 'use a number with a unit: 30s, 500ms, 1m',
    });
  }
}

/** The --health-* flags (--no-healthcheck = test NONE, which also disables the image's healthcheck). */
function healthFromFlags(flags: CreateFlags): ContainerSpec['healthcheck'] {
  const tuned = [
    flags.healthCmd,
    flags.healthInterval,
    flags.healthTimeout,
    flags.healthRetries,
    flags.healthStartPeriod,
    flags.healthStartInterval,
  ].some((value) => value !== undefined);
  if (flags.healthcheck === false) {
    if (tuned) throw new TsfigError('usage', '--no-healthcheck conflicts with --health-* options');
    return { test: ['NONE'] };
  }
  if (flags.healthCmd === undefined) {
    if (tuned) throw new TsfigError('usage', '--health-* options need --health-cmd');
    return undefined;
  }
  const retries = flags.healthRetries === undefined ? undefined : parseCount(flags.healthRetries, '--health-retries');
  return {
    test: ['CMD-SHELL', flags.healthCmd],
    intervalMs: durationFlag(flags.healthInterval, '--health-interval'),
    timeoutMs: durationFlag(flags.healthTimeout, '--health-timeout'),
    retries,
    startPeriodMs: durationFlag(flags.healthStartPeriod, '--health-start-period'),
    startIntervalMs: durationFlag(flags.healthStartInterval, '--health-start-interval'),
  };
}

function splitKeyValue(entry: string, flag: string): [string, string] {
  const index = entry.indexOf('=');
  if (index <= 0) throw new TsfigError('usage', `${flag}: expected key=value, got "${entry}"`);
  return [entry.slice(0, index), entry.slice(index + 1)];
}

/** docker's env-file format: KEY=VALUE lines, `#` comments, a bare KEY takes the host's value. */
export function readEnvFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TsfigError('usage', `--env-file: cannot read ${file}: ${(error as Error).message}`);
  }
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((entry) => expandEnv(entry))
    .filter((entry): entry is string => entry !== undefined);
}

/** `--add-host name:ip` → an /etc/hosts line. */
function parseAddHost(entry: string): string {
  const index = entry.indexOf(':');
  const separator = index < 0 ? entry.indexOf('=') : index;
  if (separator <= 0) throw new TsfigError('usage', `--add-host: invalid value "${entry}"`, { hint: 'use HOST:IP' });
  return `${entry.slice(separator + 1)}\t${entry.slice(0, separator)}`;
}

function parseUlimit(entry: string): Ulimit {
  const match = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(entry);
  if (match === null || match[1] === undefined || match[2] === undefined) {
    throw new TsfigError('usage', `--ulimit: invalid value "${entry}"`, {
      hint: 'use name=soft[:hard], e.g. nofile=1024:2048',
    });
  }
  const soft = Number(match[2]);
  return { name: match[1], soft, hard: match[3] === undefined ? soft : Number(match[3]) };
}

function parseLogOpts(entries: readonly string[]): { logMaxSize?: number; logMaxFiles?: number } {
  const result: { logMaxSize?: number; logMaxFiles?: number } = {};
  for (const entry of entries) {
    const [key, value] = splitKeyValue(entry, '--log-opt');
    if (key === 'max-size') result.logMaxSize = parseBytes(value, '--log-opt max-size');
    else if (key === 'max-file') result.logMaxFiles = parseCount(value, '--log-opt max-file');
    else throw new TsfigError('usage', `--log-opt: unknown option "${key}"`, { hint: 'supported: max-size, max-file' });
  }
  return result;
}

function securityOptions(entries: readonly string[]): Pick<ContainerSpec, 'noNewPrivileges' | 'seccomp'> {
  const result: { noNewPrivileges?: boolean; seccomp?: 'default' | 'unconfined' } = {};
  for (const entry of entries) {
    if (entry === 'no-new-privileges' || entry === 'no-new-privileges=true' || entry === 'no-new-privileges:true') {
      result.noNewPrivileges = true;
    } else if (entry === 'seccomp=unconfined' || entry === 'seccomp:unconfined') {
      result.seccomp = 'unconfined';
    } else {
      throw new TsfigError('usage', `--security-opt: unsupported option "${entry}"`, {
        hint: 'supported: no-new-privileges, seccomp=unconfined',
      });
    }
  }
  return result;
}

/** Turns parsed flags plus the positional image and command into a ContainerSpec. Pure except for env files. */
/** --userns, else TSFIG_USERNS: a mode, or undefined for the host's ids. */
function usernsFromFlags(value: string | undefined, env: NodeJS.ProcessEnv): UsernsMode | undefined {
  if (value === undefined) return defaultUserns(env);
  const mode = parseUsernsMode(value);
  if (mode === undefined)
    throw new TsfigError('usage', `--userns: invalid user namespace mode "${value}"`, { hint: USERNS_HINT });
  return mode;
}

export function specFromFlags(
  image: string,
  command: readonly string[],
  flags: CreateFlags,
  mounts: readonly ContainerMount[],
  exposedPorts?: readonly string[],
  env_: NodeJS.ProcessEnv = process.env,
): ContainerSpec {
  const network = flags.network ?? 'none';
  const mode = network === 'none' || network === 'host' || network.startsWith('container:');
  if (mode && ((flags.publish ?? []).length > 0 || flags.publishAll === true)) {
    throw new TsfigError('usage', `--publish: ports cannot be published with --network ${network}`, {
      hint: 'attach the container to a network: tsfig network create NAME, then --network NAME',
    });
  }
  if (mode && (flags.ip !== undefined || (flags.networkAlias ?? []).length > 0)) {
    throw new TsfigError('usage', `--ip and --network-alias need a user-defined network, not --network ${network}`);
  }
  const networking = mode
    ? { network }
    : {
        networks: [
          {
            name: network,
            ...(flags.ip !== undefined ? { ip: flags.ip } : {}),
            aliases: flags.networkAlias ?? [],
          },
        ],
        ports: [...(flags.publish ?? []), ...(flags.publishAll === true ? (exposedPorts ?? []) : [])],
      };
  const env = [...(flags.envFile ?? []).flatMap(readEnvFile), ...expandEnvFlags(flags.env)].filter(
    (entry): entry is string => entry !== undefined,
  );
  const labels = Object.fromEntries((flags.label ?? []).map((entry) => splitKeyValue(entry, '--label')));
  const sysctls = Object.fromEntries((flags.sysctl ?? []).map((entry) => splitKeyValue(entry, '--sysctl')));
  const pidsLimit = flags.pidsLimit === undefined ? undefined : parseCount(flags.pidsLimit, '--pids-limit');
  const healthcheck = healthFromFlags(flags);
  checkRmRestart(flags);
  checkUserFlag(flags.user);
  const userns = usernsFromFlags(flags.userns, env_);
  return {
    image,
    ...(command.length > 0 ? { cmd: [...command] } : {}),
    ...(flags.entrypoint !== undefined ? { entrypoint: flags.entrypoint === '' ? [] : [flags.entrypoint] } : {}),
    ...(flags.name !== undefined ? { name: flags.name } : {}),
    env,
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    ...(flags.workdir !== undefined ? { workingDir: flags.workdir } : {}),
    ...(flags.hostname !== undefined ? { hostname: flags.hostname } : {}),
    labels,
    tty: flags.tty === true,
    openStdin: flags.interactive === true,
    init: flags.init === true,
    readonlyRootfs: flags.readOnly === true,
    ...(userns !== undefined ? { userns } : {}),
    privileged: flags.privileged === true,
    capAdd: flags.capAdd ?? [],
    capDrop: flags.capDrop ?? [],
    ...securityOptions(flags.securityOpt ?? []),
    ...(flags.memory !== undefined ? { memory: parseBytes(flags.memory, '--memory') } : {}),
    ...(flags.memorySwap !== undefined
      ? { memorySwap: flags.memorySwap === '-1' ? -1 : parseBytes(flags.memorySwap, '--memory-swap') }
      : {}),
    ...(flags.cpus !== undefined ? { nanoCpus: parseCpus(flags.cpus) } : {}),
    ...(flags.cpuShares !== undefined ? { cpuShares: parseCount(flags.cpuShares, '--cpu-shares') } : {}),
    ...(pidsLimit !== undefined && pidsLimit > 0 ? { pidsLimit } : {}),
    ulimits: (flags.ulimit ?? []).map(parseUlimit),
    sysctls,
    groupAdd: flags.groupAdd ?? [],
    mounts: [...mounts],
    ...networking,
    extraHosts: (flags.addHost ?? []).map(parseAddHost),
    ...(flags.stopTimeout !== undefined ? { stopTimeout: parseCount(flags.stopTimeout, '--stop-timeout') } : {}),
    ...(flags.stopSignal !== undefined ? { stopSignal: flags.stopSignal } : {}),
    ...parseLogOpts(flags.logOpt ?? []),
    ...(flags.restart !== undefined ? { restart: parseRestart(flags.restart) } : {}),
    ...(flags.rm === true ? { autoRemove: true } : {}),
    ...(healthcheck !== undefined ? { healthcheck } : {}),
  };
}

/** docker: "Conflicting options: --restart and --rm" (the engine refuses it too), before anything is created. */
function checkRmRestart(flags: CreateFlags): void {
  if (flags.rm === true && flags.restart !== undefined && parseRestart(flags.restart).name !== 'no') {
    throw new TsfigError('usage', 'conflicting options: --restart and --rm', {
      hint: 'a container removed when it exits cannot be restarted by a policy: drop --restart or --rm',
    });
  }
}

/** `--rm`: remove the container unless it is gone already (its monitor's cleanup may have been first). */
async function removeIfPresent(engine: Engine, id: string): Promise<void> {
  try {
    const record = await engine.containers.remove(id, { force: true });
    await engine.volumes.removeAnonymous(record.mounts, { usersOf: containerRecordUsers(engine.paths) });
  } catch (error) {
    if (!isEngineError(error, 'not-found')) throw error;
  }
}

async function createFromFlags(engine: Engine, image: string, command: readonly string[], flags: CreateFlags) {
  checkRmRestart(flags);
  // before any volume is made for it: a bad --userns or no subordinate ids changes nothing
  if (usernsFromFlags(flags.userns, process.env) === 'auto') await checkUserns();
  // One lock around both, so a concurrent `volume prune` cannot remove the volumes made for this container.
  return engine.volumes.withLock(async () => {
    const mounts = await resolveCliMounts(engine, image, flags);
    const exposed = Object.keys((await engine.images.resolve(image)).config.config?.ExposedPorts ?? {});
    const spec = specFromFlags(image, command, flags, mounts, exposed);
    // --rm: the monitor runs this CLI's `container cleanup --rm` once the container has exited; warnings are printed
    // as docker prints its create's Warnings (rootless: limits ignored without cgroups)
    return engine.containers.create(
      spec.autoRemove === true ? { ...spec, autoRemoveCommand: autoRemoveCommand() } : spec,
      {
        onWarning: (message) =>
          process.stderr.write(`WARNING: ${message}
`),
      },
    );
  });
}

/** Prints a container's log entries as they come, stdout to stdout and stderr to stderr. */
async function pipeLogs(
  containers: ContainerManager,
  id: string,
  options: {
    follow: boolean;
    tail?: number;
    timestamps?: boolean;
    since?: string;
    until?: string;
    signal?: AbortSignal;
  },
): Promise<void> {
  for await (const entry of containers.logs(id, options)) {
    const text = options.timestamps === true ? `${entry.time} ${entry.text}` : entry.text;
    (entry.stream === 'stderr' ? process.stderr : process.stdout).write(text);
  }
}

async function runAttached(containers: ContainerManager, id: string, flags: CreateFlags): Promise<number> {
  const forward = (signal: NodeJS.Signals) => {
    containers.kill(id, signal).catch(() => undefined);
  };
  const signals: NodeJS.Signals[] = flags.tty === true ? [] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  const detachStdin = flags.interactive === true ? attachStdin(containers.paths, id, flags.tty === true) : undefined;
  try {
    await pipeLogs(containers, id, { follow: true });
    return await containers.wait(id);
  } finally {
    detachStdin?.();
    for (const signal of signals) process.off(signal, forward);
  }
}

function registerRun(group: Command): void {
  addCreateOptions(
    group
      .command('run')
      .description('create and run a new container from an image')
      .argument('<image>', 'image reference')
      .argument('[command...]', 'command and arguments')
      .option('-d, --detach', 'run the container in the background and print its id')
      .helpOption('--help', 'display help for command')
      .passThroughOptions(),
  ).action(async (image: string, command: string[], flags: CreateFlags & { detach?: boolean }, cmd: Command) => {
    checkRmRestart(flags);
    const engine = await openEngine();
    const record = await createFromFlags(engine, image, command, flags);
    const attachedRm = flags.rm === true && flags.detach !== true;
    // attached --rm: this CLI reads the exit code and removes the container, its monitor's cleanup waits for it
    // (and does the removal alone if this CLI is killed); docker's CLI also returns once the container is gone
    const hold = <T>(fn: () => Promise<T>) => (attachedRm ? withAutoRemoveHold(engine.paths, record.id, fn) : fn());
    await hold(async () => {
      try {
        await engine.containers.start(record.id);
      } catch (error) {
        if (flags.rm === true) await removeIfPresent(engine, record.id);
        throw error;
      }
      if (flags.detach === true) {
        process.stdout.write(`${record.id}\n`);
        return;
      }
      const exitCode = await runAttached(engine.containers, record.id, flags);
      if (flags.rm === true) await removeIfPresent(engine, record.id);
      setExitCode(cmd, exitCode);
    });
  });
}

function registerLifecycle(group: Command): void {
  addCreateOptions(
    group
      .command('create')
      .description('create a new container')
      .argument('<image>')
      .argument('[command...]')
      .helpOption('--help', 'display help for command')
      .passThroughOptions(),
  ).action(async (image: string, command: string[], flags: CreateFlags) => {
    const engine = await openEngine();
    const record = await createFromFlags(engine, image, command, flags);
    process.stdout.write(`${record.id}\n`);
  });

  group
    .command('start')
    .description('start one or more stopped containers')
    .argument('<container...>')
    .option('-a, --attach', 'attach STDOUT/STDERR and forward signals')
    .action(async (refs: string[], flags: { attach?: boolean }, cmd: Command) => {
      const engine = await openEngine();
      for (const ref of refs) {
        if (flags.attach === true && refs.length === 1) {
          const record = await engine.containers.get(ref);
          const attach = async () => {
            await engine.containers.start(record.id);
            setExitCode(cmd, await runAttached(engine.containers, record.id, {}));
            if (record.spec.autoRemove === true) await removeIfPresent(engine, record.id);
          };
          // created with --rm: as attached `run --rm` (the exit code is read before the removal)
          await (record.spec.autoRemove === true ? withAutoRemoveHold(engine.paths, record.id, attach) : attach());
          return;
        }
        await engine.containers.start(ref);
        process.stdout.write(`${ref}\n`);
      }
    });

  group
    .command('stop')
    .description('stop one or more running containers')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait before killing the container')
    .action(async (refs: string[], flags: { time?: string }) => {
      const engine = await openEngine();
      const timeout = flags.time === undefined ? undefined : parseCount(flags.time, '--time');
      for (const ref of refs) {
        await engine.containers.stop(ref, timeout);
        process.stdout.write(`${ref}\n`);
      }
    });

  group
    .command('kill')
    .description('kill one or more running containers')
    .argument('<container...>')
    .option('-s, --signal <signal>', 'signal to send to the container', 'SIGKILL')
    .action(async (refs: string[], flags: { signal: string }) => {
      const engine = await openEngine();
      for (const ref of refs) {
        await engine.containers.kill(ref, flags.signal);
        process.stdout.write(`${ref}\n`);
      }
    });

  group
    .command('rm')
    .description('remove one or more containers')
    .argument('<container...>')
    .option('-f, --force', 'force the removal of a running container (uses SIGKILL)')
    .option('-v, --volumes', 'remove anonymous volumes associated with the container')
    .action(async (refs: string[], flags: { force?: boolean }) => {
      const engine = await openEngine();
      for (const ref of refs) {
        await engine.containers.remove(ref, { force: flags.force === true });
        process.stdout.write(`${ref}\n`);
      }
    });

  // Internal: the exit command of an autoRemove container (`run --rm`), started by its monitor once it has exited
  // (podman's `container cleanup --rm`). Removes it and its anonymous volumes if it is still exited; silent.
  group
    .command('cleanup', { hidden: true })
    .description('remove an exited --rm container (run by its monitor)')
    .argument('<container>')
    .requiredOption('--rm', 'remove the container')
    .action(async (ref: string) => {
      // Not openEngine(): this runs detached after the container's exit, possibly after its root was removed (a
      // test's temp root), and must not create the root again; a missing root holds nothing to clean (not-found).
      const engine = createEngine({ createRoot: false });
      const record = await removeIfExited(engine.containers, ref);
      if (record !== undefined) {
        await engine.volumes.removeAnonymous(record.mounts, { usersOf: containerRecordUsers(engine.paths) });
      }
    });

  group
    .command('wait')
    .description('block until one or more containers stop, then print their exit codes')
    .argument('<container...>')
    .action(async (refs: string[]) => {
      const engine = await openEngine();
      for (const ref of refs) process.stdout.write(`${await engine.containers.wait(ref)}\n`);
    });
}

function statusText(
  state: {
    status: string;
    exitCode: number;
    startedAt: string;
    finishedAt: string;
    health?: { status: string };
  },
  paused = false,
): string {
  const health = paused ? ' (Paused)' : state.health === undefined ? '' : ` (${state.health.status})`;
  if (state.status === 'running') return `Up ${relativeTime(state.startedAt, false)}${health}`;
  if (state.status === 'restarting') return `Restarting (${state.exitCode}) ${relativeTime(state.finishedAt)}`;
  if (state.status === 'exited') return `Exited (${state.exitCode}) ${relativeTime(state.finishedAt)}`;
  return 'Created';
}

function registerInspection(group: Command): void {
  group
    .command('ls')
    .alias('ps')
    .alias('list')
    .description('list containers')
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('-q, --quiet', 'only display container ids')
    .option('--no-trunc', "don't truncate output")
    .option('--filter <key=value>', 'filter output (label=KEY[=VALUE], name=NAME, status=STATUS)', collect)
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (flags: { all?: boolean; quiet?: boolean; trunc: boolean; filter?: string[]; format: string }) => {
      const engine = await openEngine();
      const labels: Record<string, string | undefined> = {};
      const names: string[] = [];
      const statuses: string[] = [];
      for (const filter of flags.filter ?? []) {
        const [key, value] = splitKeyValue(filter, '--filter');
        if (key === 'label') {
          const index = value.indexOf('=');
          labels[index < 0 ? value : value.slice(0, index)] = index < 0 ? undefined : value.slice(index + 1);
        } else if (key === 'name') names.push(value);
        else if (key === 'status') statuses.push(value);
        else
          throw new TsfigError('usage', `--filter: unsupported filter "${key}"`, {
            hint: 'use label=, name= or status=',
          });
      }
      const all = flags.all === true || statuses.length > 0;
      const list = (await engine.containers.list({ all, labels })).filter(
        (summary) =>
          (names.length === 0 || names.some((name) => summary.name.includes(name))) &&
          (statuses.length === 0 || statuses.includes(summary.state.status)),
      );
      if (flags.quiet === true) {
        for (const summary of list) process.stdout.write(`${flags.trunc ? shortId(summary.id) : summary.id}\n`);
        return;
      }
      if (flags.format === 'json') {
        for (const summary of list) process.stdout.write(`${JSON.stringify(summary)}\n`);
        return;
      }
      const paused = new Set<string>();
      for (const summary of list) {
        if (summary.state.status === 'running' && (await isFrozen(engine.paths, summary.id))) paused.add(summary.id);
      }
      const rows = list.map((summary) => [
        flags.trunc ? shortId(summary.id) : summary.id,
        summary.image,
        JSON.stringify(
          flags.trunc && summary.command.length > 20 ? `${summary.command.slice(0, 19)}…` : summary.command,
        ),
        relativeTime(summary.created),
        statusText(summary.state, paused.has(summary.id)),
        summary.name,
      ]);
      process.stdout.write(renderTable(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES'], rows));
    });

  group
    .command('port')
    .description('list port mappings or a specific mapping for the container')
    .argument('<container>')
    .argument('[port]', 'PRIVATE_PORT[/PROTO]')
    .action(async (ref: string, port: string | undefined) => {
      const engine = await openEngine();
      const [wantedPort, wantedProto = 'tcp'] = (port ?? '').split('/');
      const mappings = (await engine.containers.ports(ref)).filter(
        (mapping) =>
          port === undefined || (String(mapping.containerPort) === wantedPort && mapping.proto === wantedProto),
      );
      if (port !== undefined && mappings.length === 0) {
        throw new TsfigError('not-found', `no public port '${port}' published for ${ref}`);
      }
      for (const mapping of mappings) {
        const host = `${mapping.hostIp === '' ? '0.0.0.0' : mapping.hostIp}:${mapping.hostPort}`;
        process.stdout.write(
          port === undefined ? `${mapping.containerPort}/${mapping.proto} -> ${host}\n` : `${host}\n`,
        );
      }
    });

  group
    .command('inspect')
    .description('display detailed information on one or more containers')
    .argument('<container...>')
    .option('-f, --format <format>', "json (default), or a Go template as docker's (e.g. '{{.State.Status}}')")
    .action(async (refs: string[], flags: { format?: string }) => {
      const format = inspectFormatter(flags.format);
      const engine = await openEngine();
      const results = [];
      for (const ref of refs) results.push(await engine.containers.inspect(ref));
      process.stdout.write(format(results));
    });

  group
    .command('logs')
    .description('fetch the logs of a container')
    .argument('<container>')
    .option('-f, --follow', 'follow log output')
    .option('-n, --tail <lines>', 'number of lines to show from the end of the logs', 'all')
    .option('-t, --timestamps', 'show timestamps')
    .option('--since <timestamp>', 'show logs since timestamp (e.g. 2026-01-02T13:23:37Z) or relative (e.g. 42m)')
    .option('--until <timestamp>', 'show logs before a timestamp (e.g. 2026-01-02T13:23:37Z) or relative (e.g. 42m)')
    .action(
      async (
        ref: string,
        flags: { follow?: boolean; tail: string; timestamps?: boolean; since?: string; until?: string },
      ) => {
        const engine = await openEngine();
        const tail = flags.tail === 'all' ? undefined : parseCount(flags.tail, '--tail');
        await pipeLogs(engine.containers, ref, {
          follow: flags.follow === true,
          ...(tail !== undefined ? { tail } : {}),
          timestamps: flags.timestamps === true,
          ...(flags.since !== undefined ? { since: parseLogTime(flags.since, '--since') } : {}),
          ...(flags.until !== undefined ? { until: parseLogTime(flags.until, '--until') } : {}),
        });
      },
    );

  group
    .command('exec')
    .description('execute a command in a running container')
    .argument('<container>')
    .argument('<command...>')
    .option('-e, --env <KEY=VALUE>', 'set environment variables', collect)
    .option('-u, --user <user[:group]>', 'user name or uid (and group)')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-i, --interactive', 'keep STDIN open')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('-d, --detach', 'detached mode: run the command in the background')
    .passThroughOptions()
    .action(
      async (
        ref: string,
        command: string[],
        flags: {
          env?: string[];
          user?: string;
          workdir?: string;
          tty?: boolean;
          interactive?: boolean;
          detach?: boolean;
        },
        cmd: Command,
      ) => {
        checkUserFlag(flags.user);
        const engine = await openEngine();
        const detach = flags.detach === true;
        const result = await engine.containers.exec(ref, {
          argv: command,
          env: expandEnvFlags(flags.env),
          ...(flags.user !== undefined ? { user: flags.user } : {}),
          ...(flags.workdir !== undefined ? { workingDir: flags.workdir } : {}),
          // docker exec -d: no stdio, back at once; the process stays after this command
          tty: flags.tty === true && !detach,
          interactive: flags.interactive === true,
          stdio: detach ? 'pipe' : 'inherit',
          detach,
        });
        setExitCode(cmd, result.exitCode);
      },
    );
}

/** -u/--user: ids beyond 0..2147483647 are refused before anything runs (4294967295 would be "unchanged": root). */
function checkUserFlag(user: string | undefined): void {
  const problem = user === undefined ? undefined : userSpecProblem(user);
  if (problem !== undefined) {
    throw new TsfigError('usage', `invalid --user "${user ?? ''}": ${problem}`, {
      hint: 'use a user name or a uid in 0..2147483647',
    });
  }
}

/** `tsfig container ...`: docker's container commands against the embedded engine. */
export function registerContainerCommands(program: Command): void {
  const group = program.command('container').description('manage containers').enablePositionalOptions();
  registerRun(group);
  registerLifecycle(group);
  registerInspection(group);
  registerContainerVerbs(group);
  registerContainerAttach(group);
}
