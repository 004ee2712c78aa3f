/**
 * The redis + web example end to end (issue 5): `tsfig up -d` of examples/redis-app timed until the web service
 * answers on 127.0.0.1, cold (after `down`: network and containers created) and warm (after `stop`: the containers
 * exist and are only started), interleaved, then `down`.
 *
 *   sudo node --import tsx bench/redis-app.ts [--runs 5] [--no-write]
 *
 * The debian base image (/var/cache/tsfig/debian-bookworm.tar, built by scripts/base-images.sh) is imported into a
 * temporary engine root as tsfig/debian:bookworm, as the integration tests do. WEB_PORT is a port that was free on
 * 127.0.0.1 a moment before. Each sample starts the CLI and polls GET http://127.0.0.1:WEB_PORT/ every 20 ms; it also
 * reads, from the engine, when redis started, when its first health check passed and when web started, to show where
 * the time goes. Everything (containers, network, temp dirs) is removed at the end, also on failure.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createEngine, type Engine } from '../engine/index.js';
import { REPO, updateSection } from './report.js';

const SECTION = 'Example: redis-app up until the web port answers';
const DEBIAN_TAR = '/var/cache/tsfig/debian-bookworm.tar';
const EXAMPLE = path.join(REPO, 'examples', 'redis-app');
const PROJECT = 'benchredis';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const runs = Number(option('--runs', '5'));
const write = !process.argv.includes('--no-write');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function cli(args: readonly string[], env: NodeJS.ProcessEnv): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, [path.join(REPO, 'bin', 'tsfig.js'), '-p', PROJECT, ...args], {
    cwd: EXAMPLE,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`tsfig ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return performance.now() - started;
}

/** The body of GET url, or undefined when nothing answers yet. */
async function get(url: string): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    const body = await response.text();
    return response.status === 200 ? body : undefined;
  } catch {
    return undefined;
  }
}

interface Sample {
  kind: 'cold' | 'warm';
  /** CLI start to the first 200 answer. */
  answer: number;
  /** CLI start to its exit. */
  cli: number;
  /** Offsets from the CLI start, from the engine's records (ms). */
  redisStarted: number;
  redisHealthy: number;
  webStarted: number;
  body: string;
}

interface Inspect {
  State: { StartedAt: string; Health?: { Log?: { End: string; ExitCode: number }[] } };
}

/** One `up -d`, timed until the web port answers; the engine's timestamps say where the time went. */
async function upSample(kind: 'cold' | 'warm', engine: Engine, env: NodeJS.ProcessEnv, url: string): Promise<Sample> {
  const wallStart = Date.now();
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [path.join(REPO, 'bin', 'tsfig.js'), '-p', PROJECT, '--progress', 'quiet', 'up', '-d'],
    { cwd: EXAMPLE, env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let cliMs: number | undefined;
  let code: number | null = null;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (exitCode) => {
      cliMs = performance.now() - started;
      code = exitCode;
      resolve();
    }),
  );
  try {
    let body: string | undefined;
    const deadline = Date.now() + 120_000;
    while ((body = await get(url)) === undefined) {
      if (Date.now() > deadline) throw new Error(`${url} never answered; up stderr: ${stderr}`);
      if (cliMs !== undefined && code !== 0) throw new Error(`up -d failed (${code}): ${stderr}`);
      await sleep(20);
    }
    const answer = performance.now() - started;
    await exited;
    if (code !== 0) throw new Error(`up -d failed (${code}): ${stderr}`);
    const [redis, web] = (await Promise.all([
      engine.containers.inspect(`${PROJECT}-redis-1`),
      engine.containers.inspect(`${PROJECT}-web-1`),
    ])) as unknown as [Inspect, Inspect];
    const offset = (iso: string | undefined) => (iso === undefined ? NaN : Date.parse(iso) - wallStart);
    // health checks of this start only (a warm start keeps the log of the previous run)
    const healthy = redis.State.Health?.Log?.find(
      (entry) => entry.ExitCode === 0 && entry.End >= redis.State.StartedAt,
    )?.End;
    return {
      kind,
      answer,
      cli: cliMs ?? NaN,
      redisStarted: offset(redis.State.StartedAt),
      redisHealthy: offset(healthy),
      webStarted: offset(web.State.StartedAt),
      body: body.trim(),
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} CPUs (${cpus[0]?.model.trim() ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, kernel ${os.release()}, node ${process.version}`;
}

function commitLabel(): string {
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd: REPO,
    encoding: 'utf8',
  }).trim();
  return dirty === '' ? commit : `${commit}+dirty (uncommitted edits in the shared tree)`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  if (!existsSync(DEBIAN_TAR))
    execFileSync('bash', [path.join(REPO, 'scripts', 'base-images.sh')], { stdio: 'inherit' });
  const loadBefore = loadavg();
  const dir = await mkdtemp('/tmp/tsfig-bench-redis-');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TSFIG_ROOT: path.join(dir, 'root'),
    TSFIG_RUN_ROOT: path.join(dir, 'run'),
    TSFIG_DNS_FORWARD: '0',
    TSFIG_REGISTRY_LOOPBACK_ONLY: '1',
    WEB_PORT: String(port),
  };
  const engine = createEngine({ env });
  const url = `http://127.0.0.1:${port}/`;
  const samples: Sample[] = [];
  const downs: number[] = [];
  const stops: number[] = [];
  let importMs = 0;
  try {
    const importStart = performance.now();
    await engine.images.importRootfs({ kind: 'file', path: DEBIAN_TAR }, { reference: 'tsfig/debian:bookworm' });
    importMs = performance.now() - importStart;
    for (let run = 0; run < runs; run++) {
      samples.push(await upSample('cold', engine, env, url));
      stops.push(cli(['--progress', 'quiet', 'stop'], env));
      samples.push(await upSample('warm', engine, env, url));
      downs.push(cli(['--progress', 'quiet', 'down'], env));
    }
  } finally {
    try {
      cli(['--progress', 'quiet', 'down', '-t', '1'], env);
    } catch (error) {
      process.stderr.write(`down failed: ${String(error)}\n`);
    }
    for (const summary of await engine.containers.list({ all: true }))
      await engine.containers.remove(summary.id, { force: true }).catch(() => undefined);
    for (const network of await engine.networks.list())
      await engine.networks.remove(network.name).catch(() => undefined);
    await engine.networks.reconcile().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  const loadAfter = loadavg();

  const fmt = (value: number) => (Number.isNaN(value) ? '-' : value.toFixed(0));
  const rows = (['cold', 'warm'] as const).flatMap((kind) => {
    const of = samples.filter((sample) => sample.kind === kind);
    const line = (label: string, values: readonly number[]) =>
      `| ${kind} | ${label} | ${fmt(median(values))} | ${fmt(Math.min(...values))} | ${fmt(Math.max(...values))} | ${values.map(fmt).join(', ')} |`;
    return [
      line(
        '**first 200 answer on 127.0.0.1**',
        of.map((sample) => sample.answer),
      ),
      line(
        '`up -d` CLI exit',
        of.map((sample) => sample.cli),
      ),
      line(
        'redis started',
        of.map((sample) => sample.redisStarted),
      ),
      line(
        'redis first passing health check',
        of.map((sample) => sample.redisHealthy),
      ),
      line(
        'web started',
        of.map((sample) => sample.webStarted),
      ),
    ];
  });
  const line = (label: string, values: readonly number[]) =>
    `| | ${label} | ${fmt(median(values))} | ${fmt(Math.min(...values))} | ${fmt(Math.max(...values))} | ${values.map(fmt).join(', ')} |`;
  const markdown = [
    `Command (as root, from the repo root): \`sudo node --import tsx bench/redis-app.ts --runs ${runs}\``,
    '',
    `Commit ${commitLabel()} (the CLI run is \`bin/tsfig.js\`, i.e. dist/ as built in the tree), ${new Date().toISOString()}. Machine: ${machine()}. Load average ${loadBefore} before, ${loadAfter} after (a shared machine: other engineers' work may have run meanwhile).`,
    '',
    `Set-up: a temporary engine root with ${DEBIAN_TAR} imported as tsfig/debian:bookworm (${(importMs / 1000).toFixed(1)} s); \`tsfig -p ${PROJECT} --progress quiet up -d\` in examples/redis-app with WEB_PORT=${port} (free on 127.0.0.1). Each sample is timed from the CLI's spawn (Node's start-up included) until GET http://127.0.0.1:${port}/ (polled every 20 ms) returns 200. **cold**: after \`down\` (network, both containers and the web's published port are created); **warm**: after \`stop\` (containers kept, only started). Runs alternate cold, stop, warm, down. The other rows are offsets from the CLI's spawn read from the engine afterwards (status.json start times, redis's health log; 1 ms resolution). web \`depends_on\` redis \`service_healthy\` (health check interval 1 s), so \`up -d\` waits for redis's first passing check before it starts web.`,
    '',
    '| state | from the CLI spawn to (ms) | median | min | max | samples |',
    '| --- | --- | ---: | ---: | ---: | --- |',
    ...rows,
    line('`stop` (both services)', stops),
    line('`down` (both services + network)', downs),
    '',
    `The last answer of the run: "${samples[samples.length - 1]?.body ?? ''}".`,
  ].join('\n');
  if (write) updateSection(SECTION, markdown);
  process.stdout.write(`${markdown}\n`);
}

await main();
