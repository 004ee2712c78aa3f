/**
 * What the benchmarks share: command-line options, a temporary engine root with a base image imported, the CLI
 * (bin/tsfig.js) as a child process, statistics, and the facts a BENCHMARKS.md section names (commit, machine, load).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createEngine, type Engine } from '../engine/index.js';
import { BUSYBOX_TAR, DEBIAN_TAR, engineEnv, removeEngineObjects } from '../test/helpers/engine.js';
import { REPO } from './report.js';

export { BUSYBOX_TAR, DEBIAN_TAR };

/** The CLI the benchmarks run: dist/ as built in the tree. */
export const CLI = path.join(REPO, 'bin', 'tsfig.js');

// ---- options and timing ----------------------------------------------------------------------------------------

/** The value after `name` on the command line, or fallback. */
export function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls check every everyMs until it returns a value other than undefined; throws after timeoutMs. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined> | T | undefined,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// ---- statistics ------------------------------------------------------------------------------------------------

/** The q-quantile of ascending `sorted`, interpolated linearly between its two nearest samples (NaN when empty). */
export function quantileOfSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = sorted[Math.floor(pos)] ?? NaN;
  const hi = sorted[Math.ceil(pos)] ?? NaN;
  return lo + (hi - lo) * (pos - Math.floor(pos));
}

/** The q-quantile of values (any order), interpolated as quantileOfSorted does. */
export function quantile(values: readonly number[], q: number): number {
  return quantileOfSorted(
    [...values].sort((a, b) => a - b),
    q,
  );
}

/** The median of the values that are numbers (the mean of the middle two of an even count); NaN when none is. */
export function median(values: readonly number[]): number {
  return quantile(
    values.filter((value) => !Number.isNaN(value)),
    0.5,
  );
}

/** The sample at rank floor(q × n) of the sorted values (no interpolation: the upper median for q = 0.5). */
export function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

export interface Stats {
  n: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  mean: number;
}

/** Interpolated median, p10 and p90, extremes and mean of samples (NaN where there is no sample). */
export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: quantileOfSorted(sorted, 0.5),
    p10: quantileOfSorted(sorted, 0.1),
    p90: quantileOfSorted(sorted, 0.9),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sorted.reduce((sum, x) => sum + x, 0) / (sorted.length || 1),
  };
}

// ---- report text -----------------------------------------------------------------------------------------------

/** x with 0, 1 or 2 decimals; `n/a` when it is not a finite number (a series without samples). */
export const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
export const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
export const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

/** x / base as `1.23x`; `n/a` when that is not a finite number. */
export const ratio = (x: number, base: number): string =>
  Number.isFinite(x / base) ? `${(x / base).toFixed(2)}x` : 'n/a';

/** The collapsed raw-samples block that ends a report section: lines in a fenced block inside <details>. */
export function rawSamplesBlock(lines: readonly string[]): string[] {
  return ['<details><summary>Raw samples (ms, in run order)</summary>', '', '```', ...lines, '```', '', '</details>'];
}

// ---- machine and tree facts ------------------------------------------------------------------------------------

/** The three load averages, as /proc/loadavg has them (`0.52 0.48 0.50`). */
export const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** CPUs and their model, memory, kernel and Node version, in one line. */
export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} CPUs (${cpus[0]?.model.trim() ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, kernel ${os.release()}, node ${process.version}`;
}

/** The short id of the commit checked out in the repo. */
export function headCommit(): string {
  return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
}

/** Paths git reports as changed in the working tree (under `paths` when given; untracked files unless told not). */
export function dirtyPaths(options: { paths?: readonly string[]; untracked?: boolean } = {}): string[] {
  const args = ['status', '--porcelain', ...(options.untracked === false ? ['--untracked-files=no'] : [])];
  return execFileSync('git', [...args, ...(options.paths !== undefined ? ['--', ...options.paths] : [])], {
    cwd: REPO,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.slice(3));
}

/** The commit, marked when tracked files of the shared tree have uncommitted edits. */
export function commitLabel(): string {
  const commit = headCommit();
  return dirtyPaths({ untracked: false }).length === 0
    ? commit
    : `${commit}+dirty (uncommitted edits in the shared tree)`;
}

// ---- engine root and CLI ---------------------------------------------------------------------------------------

/** Runs as root or throws: the benchmarks create namespaces, mounts and cgroups. */
export function requireRoot(message = 'run as root'): void {
  if (process.getuid?.() !== 0) throw new Error(message);
}

/** Builds the base images (scripts/base-images.sh) when tar is missing. */
export function ensureBaseImage(tar: string): void {
  if (!existsSync(tar)) execFileSync('bash', [path.join(REPO, 'scripts', 'base-images.sh')], { stdio: 'inherit' });
}

export interface BenchEngine {
  /** The temp dir holding the engine root (dir/root), its run root (dir/run) and whatever the benchmark puts there. */
  readonly dir: string;
  /** The engine's environment (engineEnv of test/helpers/engine.ts), for the CLI runs too. */
  readonly env: NodeJS.ProcessEnv;
  readonly engine: Engine;
  /** Imports a base image tar (a rootfs) as reference; returns how long it took, in ms. */
  importImage(tar: string, reference: string): Promise<number>;
  /** Force-removes every container and network of the engine, then the temp dir; errors do not stop it. */
  cleanup(): Promise<void>;
}

/**
 * A fresh engine in /tmp/tsfig-bench-<name>-XXXXXX, its environment base plus extra (an engine that reaches nothing
 * outside the host, as in the integration tests).
 */
export async function benchEngine(
  name: string,
  extra: Readonly<Record<string, string>> = {},
  base: NodeJS.ProcessEnv = process.env,
): Promise<BenchEngine> {
  const dir = await mkdtemp(`/tmp/tsfig-bench-${name}-`);
  const env = { ...engineEnv(dir, base), ...extra };
  const engine = createEngine({ env });
  return {
    dir,
    env,
    engine,
    async importImage(tar, reference) {
      const started = performance.now();
      await engine.images.importRootfs({ kind: 'file', path: tar }, { reference });
      return performance.now() - started;
    },
    async cleanup() {
      await removeEngineObjects(engine, { ignoreNetworkErrors: true }).catch((error: unknown) => {
        process.stderr.write(`clean-up failed: ${String(error)}\n`);
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface CliRun {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** The CLI entry point; CLI by default. */
  readonly bin?: string;
  readonly maxBuffer?: number;
}

/** Runs the CLI to its exit (2 min at most) and times it; throws with its stderr unless it exits 0. */
export function runCli(args: readonly string[], options: CliRun): { ms: number; stdout: string } {
  const started = performance.now();
  const result = spawnSync(process.execPath, [options.bin ?? CLI, ...args], {
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    env: options.env,
    encoding: 'utf8',
    ...(options.maxBuffer !== undefined ? { maxBuffer: options.maxBuffer } : {}),
    timeout: 120_000,
  });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`tsfig ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return { ms, stdout: result.stdout };
}

/** `tsfig [globalArgs] --progress quiet down -t 1` as a clean-up step: a failure is reported on stderr, not thrown. */
export function downQuietly(options: CliRun, globalArgs: readonly string[] = []): void {
  try {
    runCli([...globalArgs, '--progress', 'quiet', 'down', '-t', '1'], options);
  } catch (error) {
    process.stderr.write(`down failed: ${String(error)}\n`);
  }
}
