import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createEngine, type Engine } from '../../engine/index.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUSYBOX_TAR = '/var/cache/tsfig/busybox.tar';
export const DEBIAN_TAR = '/var/cache/tsfig/debian-bookworm.tar';

export const isRoot = process.getuid?.() === 0;

/** The prefix of makeTestEngine's temp dirs; test/integration/zz-no-leaks fails on any left after the suite. */
export const TEST_DIR_PREFIX = '/tmp/tsfig-it-';

/** The `skip` option of a describe() whose tests need root. */
export const NEEDS_ROOT = isRoot ? false : 'needs root (run: sudo npm run test:integration)';

/** Integration tests need root; as root (CI) they never skip. */
export function skipUnlessRoot(t: TestContext): boolean {
  if (isRoot) return false;
  t.skip('needs root: integration tests create namespaces, mounts and cgroups (run: sudo npm run test:integration)');
  return true;
}

export interface TestEngine {
  readonly engine: Engine;
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Runs the CLI (built dist/) against this engine's root. */
  cli(args: readonly string[], options?: CliOptions): Promise<CliResult>;
  cleanup(): Promise<void>;
}

export interface CliOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Working directory (a project directory). */
  readonly cwd?: string;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
  /** A command that runs the CLI (`nsenter ... --`): the CLI's argv is appended to it. */
  readonly wrap?: readonly string[];
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of an engine rooted in dir (state in dir/root, run files in dir/run) that reaches nothing outside
 * the host: the embedded resolver answers NXDOMAIN for every name outside the engine's containers, and pulls of images
 * it lacks fail at once instead of looking up a registry on the internet.
 */
export function engineEnv(dir: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    TSFIG_ROOT: path.join(dir, 'root'),
    TSFIG_RUN_ROOT: path.join(dir, 'run'),
    TSFIG_DNS_FORWARD: '0',
    TSFIG_REGISTRY_LOOPBACK_ONLY: '1',
  };
}

/**
 * Force-removes every container of engine, then every network: networks own host objects (bridges, nft table,
 * registry entries), so they go before their state does. A network that cannot be removed throws, unless
 * ignoreNetworkErrors (a benchmark's clean-up, which goes on to remove the rest).
 */
export async function removeEngineObjects(
  engine: Engine,
  options: { ignoreNetworkErrors?: boolean } = {},
): Promise<void> {
  for (const summary of await engine.containers.list({ all: true })) {
    await engine.containers.remove(summary.id, { force: true }).catch(() => undefined);
  }
  for (const network of await engine.networks.list()) {
    const removed = engine.networks.remove(network.name);
    await (options.ignoreNetworkErrors === true ? removed.catch(() => undefined) : removed);
  }
  await engine.networks.reconcile().catch(() => undefined);
}

/** A fresh engine root in a temp dir, with the busybox base image imported as tsfig/busybox:latest. */
export async function makeTestEngine(options: { debian?: boolean } = {}): Promise<TestEngine> {
  const dir = await mkdtemp(TEST_DIR_PREFIX);
  const env = engineEnv(dir);
  const engine = createEngine({ env });
  await engine.images.importRootfs({ kind: 'file', path: BUSYBOX_TAR }, { reference: 'tsfig/busybox:latest' });
  if (options.debian === true) {
    await engine.images.importRootfs({ kind: 'file', path: DEBIAN_TAR }, { reference: 'tsfig/debian:bookworm' });
  }
  const cli = (args: readonly string[], cliOptions: CliOptions = {}) => runCli(args, env, cliOptions);
  const cleanup = async () => {
    await removeEngineObjects(engine);
    await rm(dir, { recursive: true, force: true });
  };
  return { engine, dir, env, cli, cleanup };
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const argv = [...(options.wrap ?? []), process.execPath, path.join(REPO, 'bin', 'tsfig.js'), ...args];
    const child = spawn(argv[0] ?? process.execPath, argv.slice(1), {
      env: { ...env, ...options.env },
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    if (options.input !== undefined) child.stdin?.end(options.input);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + (signal === null ? 0 : 9), stdout, stderr }));
  });
}

/** The CLI (bin/tsfig.js) as a running child process, stdin closed, its stdout and stderr collected together. */
export function spawnCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { cwd?: string } = {},
): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [path.join(REPO, 'bin', 'tsfig.js'), ...args], {
    env,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { child, output: () => text };
}

/** Stops child as Ctrl-C would (SIGINT), with SIGKILL after killAfterMs; resolves once it has exited. */
export async function stopChild(child: ChildProcess, killAfterMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
}

/** Polls check until it returns a value other than undefined, or fails after timeoutMs. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Every tsfig-owned thing on this host whose name contains marker (a root id): cgroups, mounts, processes. */
export function leftovers(marker: string): string[] {
  const found: string[] = [];
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', controller);
    try {
      for (const entry of readdirSync(dir)) if (entry.includes(marker)) found.push(path.join(dir, entry));
    } catch {
      // not a directory
    }
  }
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) if (line.includes(marker)) found.push(line);
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  for (const line of ps.split('\n')) if (line.includes(marker) && !line.includes('ps -eo')) found.push(line.trim());
  return found;
}

/**
 * Processes that name dir in their arguments or in their environment (TSFIG_ROOT=dir/root...): a detached process of
 * a test root, such as a container's exit command (`container cleanup --rm`, which names its root only in its env).
 * As `pid args` lines; this process is left out.
 */
export function processesOf(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    if (Number(pid) === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (
        args.includes(dir) ||
        env.split('\0').some((entry) => /^TSFIG_(RUN_)?ROOT=/.test(entry) && entry.includes(dir))
      ) {
        found.push(`${pid} ${args}`);
      }
    } catch {
      // gone, or a kernel thread
    }
  }
  return found;
}

export function cgroupFile(controller: string, cgroup: string, file: string): string | undefined {
  const full = path.join('/sys/fs/cgroup', controller, cgroup, file);
  return existsSync(full) ? readFileSync(full, 'utf8').trim() : undefined;
}

/**
 * What a suite checks after cleaning up its engine: `interfaces`, no host interface carries the engine's host prefix;
 * `root`, no cgroup, mount or process names the engine's root id; `dir`, none names its temp dir or its cgroup parent.
 */
export type LeftoverCheck = 'interfaces' | 'root' | 'dir';

/** Cleans up t (a suite's engine, in its after()), then asserts that it left nothing of the given kind on the host. */
export async function cleanupAndCheck(t: TestEngine, check: LeftoverCheck): Promise<void> {
  const { hostPrefix, rootId, cgroupParent } = t.engine.paths;
  await t.cleanup();
  if (check === 'interfaces') {
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    assert.ok(!links.includes(hostPrefix), 'interfaces were left behind');
  } else if (check === 'root') {
    assert.deepEqual(leftovers(rootId), [], 'cgroups, mounts or processes were left behind');
  } else {
    assert.deepEqual(
      [...leftovers(t.dir), ...leftovers(cgroupParent)],
      [],
      'the suite left cgroups, mounts or processes behind',
    );
  }
}

/**
 * Registers hooks of the current suite: makeTestEngine() before its tests, cleanupAndCheck(check) after them. Returns
 * the suite's engine, usable inside its tests and hooks.
 */
export function suiteEngine(check: LeftoverCheck): TestEngine {
  let made: TestEngine | undefined;
  const current = (): TestEngine => {
    if (made === undefined) throw new Error('the suite engine is made in before(): use it inside tests and hooks');
    return made;
  };
  before(async () => {
    made = await makeTestEngine();
  });
  after(() => cleanupAndCheck(current(), check));
  return {
    get engine() {
      return current().engine;
    },
    get dir() {
      return current().dir;
    },
    get env() {
      return current().env;
    },
    cli: (args, options) => current().cli(args, options),
    cleanup: () => current().cleanup(),
  };
}

/** A fresh project directory t.dir/name holding tsfig.yml with the given text; returns the directory. */
export async function writeProject(t: TestEngine, name: string, yaml: string): Promise<string> {
  const dir = path.join(t.dir, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'tsfig.yml'), yaml);
  return dir;
}
