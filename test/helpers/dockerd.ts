/**
 * A private dockerd, for the conformance oracle (test/conformance/run.ts) and the benchmarks that compare with
 * docker-compose (bench/dockerd.ts): its own data root, exec root, pid file and unix socket, no firewall changes
 * (--iptables=false --ip-masq=false), a default bridge of its own (not docker0, which another dockerd may hold) and an
 * address pool away from tsfig's, and a proxy that refuses everything so that no pull can leave the host. stop()
 * stops it (SIGTERM, then SIGKILL) and removes everything it made: mounts left under its roots (deepest first), the
 * bridge, the directories. Its log is the file dockerd.log in the data root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';

export interface DockerdOptions {
  /** mkdtemp prefixes of the data root (under /var/tmp: overlay2 needs a real file system) and the exec root. */
  readonly dataPrefix: string;
  readonly execPrefix: string;
  /** The default bridge, made before and removed after, with its address (`10.232.0.1/24`). */
  readonly bridge: string;
  readonly bridgeAddress: string;
  /** `--default-address-pool base=...` (`10.231.0.0/16`; /24 networks). */
  readonly addressPool: string;
  /** How long stop() waits for the daemon after SIGTERM before SIGKILL. @default 10_000 */
  readonly stopWaitMs?: number;
  /** Added to the environment docker and docker-compose get. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface PrivateDockerd {
  /** The environment docker and docker-compose need to reach it (DOCKER_HOST, DOCKER_CONFIG...). */
  readonly env: Record<string, string>;
  /** `docker-compose X on dockerd Y`. */
  readonly label: string;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Why no private dockerd can run here (docker.io or docker-compose missing), or undefined when one can. */
export function dockerdMissing(): string | undefined {
  for (const tool of ['dockerd', 'docker', 'docker-compose']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error !== undefined) {
      return `${tool} is not installed (Debian's docker.io and docker-compose)`;
    }
  }
  return undefined;
}

export function mustRun(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): string {
  const result = spawnSync(file, [...args], { encoding: 'utf8', env, timeout: 300_000 });
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${result.stderr || String(result.error)}`);
  return result.stdout;
}

/** The environment without the caller's DOCKER_*, COMPOSE_* and TSFIG_* settings, with the sbin dirs on PATH. */
export function dockerBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(COMPOSE_|DOCKER_|TSFIG_)/.test(key)) continue;
    env[key] = value;
  }
  env.PATH = `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`;
  return env;
}

/**
 * Starts the daemon and waits until it answers (30 s at most); then setup (images to import...) runs. A failure of
 * either stops it and removes what it made.
 */
export async function startPrivateDockerd(
  options: DockerdOptions,
  setup: (env: Record<string, string>) => void = () => undefined,
): Promise<PrivateDockerd> {
  // before anything is made: a spawn of a missing dockerd fails asynchronously, after the bridge and the roots exist
  const missing = dockerdMissing();
  if (missing !== undefined) throw new Error(`no private dockerd: ${missing}`);
  const data = await mkdtemp(options.dataPrefix);
  const execRoot = await mkdtemp(options.execPrefix);
  const socket = path.join(execRoot, 'docker.sock');
  const dockerConfig = path.join(data, 'config');
  mkdirSync(dockerConfig);
  spawnSync('ip', ['link', 'del', options.bridge], { stdio: 'ignore' });
  mustRun('ip', ['link', 'add', options.bridge, 'type', 'bridge']);
  mustRun('ip', ['addr', 'add', options.bridgeAddress, 'dev', options.bridge]);
  mustRun('ip', ['link', 'set', options.bridge, 'up']);
  // dockerd's log goes to a file: through a pipe, a caller blocked in spawnSync (docker-compose) leaves it unread, and
  // once 64 KiB are queued dockerd blocks in its logger and answers nothing (a `down` of 50 hung for minutes)
  const logFile = path.join(data, 'dockerd.log');
  const logFd = openSync(logFile, 'a', 0o600);
  const daemon = spawn(
    'dockerd',
    [
      '--data-root',
      path.join(data, 'root'),
      '--exec-root',
      execRoot,
      '--pidfile',
      path.join(execRoot, 'dockerd.pid'),
      '-H',
      `unix://${socket}`,
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--ip-forward=false',
      '--bridge',
      options.bridge,
      '--default-address-pool',
      `base=${options.addressPool},size=24`,
      '--storage-driver',
      'overlay2',
    ],
    {
      env: { ...dockerBaseEnv(), HTTP_PROXY: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '' },
      stdio: ['ignore', 'ignore', logFd],
    },
  );
  closeSync(logFd);
  const daemonLog = (): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };
  const env: Record<string, string> = {
    ...dockerBaseEnv(),
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: dockerConfig,
    DOCKER_BUILDKIT: '0',
    COMPOSE_DOCKER_CLI_BUILD: '0',
    ...options.env,
  };
  const stop = async (): Promise<void> => {
    if (daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      for (let i = 0; i < (options.stopWaitMs ?? 10_000) / 100 && daemon.exitCode === null; i++) await sleep(100);
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    }
    // Mounts dockerd may have left (overlay, netns, shm) under its roots, deepest first, then the files.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4] ?? '')
      .filter((mount) => mount.startsWith(data) || mount.startsWith(execRoot))
      .sort((a, b) => b.length - a.length);
    for (const mount of mounts) spawnSync('umount', ['-l', mount]);
    spawnSync('ip', ['link', 'del', options.bridge], { stdio: 'ignore' });
    await rm(execRoot, { recursive: true, force: true });
    await rm(data, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      if (daemon.exitCode !== null) throw new Error(`dockerd exited: ${daemonLog()}`);
      if (spawnSync('docker', ['version'], { env, stdio: 'ignore' }).status === 0) break;
      if (i > 300) throw new Error(`dockerd did not answer in 30 s: ${daemonLog()}`);
      await sleep(100);
    }
    setup(env);
  } catch (error) {
    await stop();
    throw error;
  }
  const dockerVersion = mustRun('docker', ['version', '--format', '{{.Server.Version}}'], env).trim();
  const composeVersion = mustRun('docker-compose', ['version', '--short'], env).trim();
  return { env, label: `docker-compose ${composeVersion} on dockerd ${dockerVersion}`, stop };
}
