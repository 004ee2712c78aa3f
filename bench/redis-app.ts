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
import { spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Engine } from '../engine/index.js';
import {
  CLI,
  DEBIAN_TAR,
  benchEngine,
  commitLabel,
  downQuietly,
  ensureBaseImage,
  freePort,
  loadavg,
  machine,
  median,
  option,
  requireRoot,
  runCli,
  sleep,
} from './harness.js';
import { REPO, updateSection } from './report.js';

const SECTION = 'Example: redis-app up until the web port answers';
const EXAMPLE = path.join(REPO, 'examples', 'redis-app');
const PROJECT = 'benchredis';

const runs = Number(option('--runs', '5'));
const write = !process.argv.includes('--no-write');

/** Runs `tsfig -p PROJECT ...args` in the example; returns how long it took (ms). */
const cli = (args: readonly string[], env: NodeJS.ProcessEnv): number =>
  runCli(['-p', PROJECT, ...args], { cwd: EXAMPLE, env }).ms;

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
  const child = spawn(process.execPath, [CLI, '-p', PROJECT, '--progress', 'quiet', 'up', '-d'], {
    cwd: EXAMPLE,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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

async function main(): Promise<void> {
  requireRoot();
  ensureBaseImage(DEBIAN_TAR);
  const loadBefore = loadavg();
  const port = await freePort();
  const bench = await benchEngine('redis', { WEB_PORT: String(port) });
  const { engine, env } = bench;
  const url = `http://127.0.0.1:${port}/`;
  const samples: Sample[] = [];
  const downs: number[] = [];
  const stops: number[] = [];
  let importMs = 0;
  try {
    importMs = await bench.importImage(DEBIAN_TAR, 'tsfig/debian:bookworm');
    for (let run = 0; run < runs; run++) {
      samples.push(await upSample('cold', engine, env, url));
      stops.push(cli(['--progress', 'quiet', 'stop'], env));
      samples.push(await upSample('warm', engine, env, url));
      downs.push(cli(['--progress', 'quiet', 'down'], env));
    }
  } finally {
    downQuietly({ cwd: EXAMPLE, env }, ['-p', PROJECT]);
    await bench.cleanup();
  }
  const loadAfter = loadavg();

  const fmt = (value: number) => (Number.isNaN(value) ? '-' : value.toFixed(0));
  /** A table row: the state (cold, warm or none), what was timed, then median, min, max and every sample. */
  const line = (kind: string, label: string, values: readonly number[]) =>
    `${kind === '' ? '| |' : `| ${kind} |`} ${label} | ${fmt(median(values))} | ${fmt(Math.min(...values))} | ${fmt(Math.max(...values))} | ${values.map(fmt).join(', ')} |`;
  const timed: readonly [label: string, key: keyof Omit<Sample, 'kind' | 'body'>][] = [
    ['**first 200 answer on 127.0.0.1**', 'answer'],
    ['`up -d` CLI exit', 'cli'],
    ['redis started', 'redisStarted'],
    ['redis first passing health check', 'redisHealthy'],
    ['web started', 'webStarted'],
  ];
  const rows = (['cold', 'warm'] as const).flatMap((kind) => {
    const of = samples.filter((sample) => sample.kind === kind);
    return timed.map(([label, key]) =>
      line(
        kind,
        label,
        of.map((sample) => sample[key]),
      ),
    );
  });
  const markdown = [
    `Command (as root, from the repo root): \`sudo node --import tsx bench/redis-app.ts --runs ${runs}\``,
    '',
    `Commit ${commitLabel()} (the CLI run is \`bin/tsfig.js\`, i.e. dist/ as built in the tree), ${new Date().toISOString()}. Machine: ${machine()}. Load average ${loadBefore} before, ${loadAfter} after (a shared machine: other engineers' work may have run meanwhile).`,
    '',
    `Set-up: a temporary engine root with ${DEBIAN_TAR} imported as tsfig/debian:bookworm (${(importMs / 1000).toFixed(1)} s); \`tsfig -p ${PROJECT} --progress quiet up -d\` in examples/redis-app with WEB_PORT=${port} (free on 127.0.0.1). Each sample is timed from the CLI's spawn (Node's start-up included) until GET http://127.0.0.1:${port}/ (polled every 20 ms) returns 200. **cold**: after \`down\` (network, both containers and the web's published port are created); **warm**: after \`stop\` (containers kept, only started). Runs alternate cold, stop, warm, down. The other rows are offsets from the CLI's spawn read from the engine afterwards (status.json start times, redis's health log; 1 ms resolution). web \`depends_on\` redis \`service_healthy\` (health checks every 100 ms during the 10 s start period, \`start_interval\`, then every 1 s), so \`up -d\` waits for redis's first passing check before it starts web.`,
    '',
    '| state | from the CLI spawn to (ms) | median | min | max | samples |',
    '| --- | --- | ---: | ---: | ---: | --- |',
    ...rows,
    line('', '`stop` (both services)', stops),
    line('', '`down` (both services + network)', downs),
    '',
    `The last answer of the run: "${samples[samples.length - 1]?.body ?? ''}".`,
  ].join('\n');
  if (write) updateSection(SECTION, markdown);
  process.stdout.write(`${markdown}\n`);
}

await main();
