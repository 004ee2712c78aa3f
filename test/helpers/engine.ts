import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createEngine, type Engine } from '../../engine/index.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUSYBOX_TAR = '/var/cache/tsfig/busybox.tar';
export const DEBIAN_TAR = '/var/cache/tsfig/debian-bookworm.tar';

export const isRoot = process.getuid?.() === 0;

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
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A fresh engine root in a temp dir, with the busybox base image imported as tsfig/busybox:latest. */
export async function makeTestEngine(options: { debian?: boolean } = {}): Promise<TestEngine> {
  const dir = await mkdtemp('/tmp/tsfig-it-');
  // TSFIG_DNS_FORWARD=0: the embedded resolver answers NXDOMAIN for every name outside the test's containers.
  const env = {
    ...process.env,
    TSFIG_ROOT: path.join(dir, 'root'),
    TSFIG_RUN_ROOT: path.join(dir, 'run'),
    TSFIG_DNS_FORWARD: '0',
    // Pulls of images a test lacks must fail at once instead of looking up a registry on the internet.
    TSFIG_REGISTRY_LOOPBACK_ONLY: '1',
  };
  const engine = createEngine({ env });
  await engine.images.importRootfs({ kind: 'file', path: BUSYBOX_TAR }, { reference: 'tsfig/busybox:latest' });
  if (options.debian === true) {
    await engine.images.importRootfs({ kind: 'file', path: DEBIAN_TAR }, { reference: 'tsfig/debian:bookworm' });
  }
  const cli = (args: readonly string[], cliOptions: CliOptions = {}) => runCli(args, env, cliOptions);
  const cleanup = async () => {
    for (const summary of await engine.containers.list({ all: true })) {
      await engine.containers.remove(summary.id, { force: true }).catch(() => undefined);
    }
    // Networks own host objects (bridges, nft table, registry entries): remove them before their state goes.
    for (const network of await engine.networks.list()) await engine.networks.remove(network.name);
    await engine.networks.reconcile().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  return { engine, dir, env, cli, cleanup };
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO, 'bin', 'tsfig.js'), ...args], {
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

export function cgroupFile(controller: string, cgroup: string, file: string): string | undefined {
  const full = path.join('/sys/fs/cgroup', controller, cgroup, file);
  return existsSync(full) ? readFileSync(full, 'utf8').trim() : undefined;
}
