/**
 * Compose conformance (issue 13): runs every scenario of test/conformance/scenarios against tsfig and compares its
 * observations with the ones docker-compose recorded (expected/), or with `--oracle` runs them against docker-compose
 * 1.29 on a dockerd this script starts and stops itself, and records them. Writes docs/conformance.md unless
 * --no-report. Needs root.
 *
 *   npm run conformance [-- --only a,b [--update-report]] [-- --no-report]
 *   npm run conformance -- --oracle [--only a,b]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  compare,
  expected,
  loadScenario,
  normalise,
  shape,
  type Expectation,
  type Observation,
  type Scenario,
  type Step,
} from './scenario.js';
import { updateReport, writeReport, type ScenarioResult } from './report.js';
import { createEngine } from '../../engine/index.js';
import { dockerBaseEnv, mustRun, startPrivateDockerd } from '../helpers/dockerd.js';
import { removeEngineObjects } from '../helpers/engine.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
const SCENARIOS = path.join(HERE, 'scenarios');
const EXPECTED = path.join(HERE, 'expected');

/** The base root filesystems, imported into both engines under these names (scripts/base-images.sh builds them). */
const IMAGES: Readonly<Record<string, string>> = {
  'conformance/busybox:latest': '/var/cache/tsfig/busybox.tar',
  'conformance/debian:bookworm': '/var/cache/tsfig/debian-bookworm.tar',
};

/** The oracle dockerd's default bridge, made and removed by the harness. */
const ORACLE_BRIDGE = 'tcfbr0';

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function exec(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number },
): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[conformance: timed out after ${options.timeoutMs} ms]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: stderr + String(error) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

function httpGet(port: number, urlPath: string): Promise<Observation> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: 5000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ code: response.statusCode ?? 0, stdout: body }));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error) => resolve({ code: 0, stdout: `error: ${(error as NodeJS.ErrnoException).code}` }));
  });
}

/** What the scenarios run against: docker-compose on its dockerd, or tsfig on a private state root. */
interface Target {
  readonly label: string;
  /**
   * The environment of `sh:` steps: the target's, with $COMPOSE the command line that runs its compose and $ENGINE
   * its engine's (docker or tsfig, for `$ENGINE image ls`).
   */
  readonly shellEnv: Record<string, string>;
  compose(
    args: readonly string[],
    cwd: string,
    env: Record<string, string>,
    input?: string,
    timeoutMs?: number,
  ): Promise<Result>;
  /** Removes every container, network and volume a scenario's project may have left. */
  reset(project: string): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Force-removes the containers, networks and volumes labelled with a compose project, through docker's verbs. */
async function resetProject(project: string, run: (args: string[]) => Promise<string>): Promise<void> {
  const label = `label=com.docker.compose.project=${project}`;
  const words = (text: string) => text.split(/\s+/).filter(Boolean);
  const containers = words(await run(['container', 'ls', '-aq', '--filter', label]));
  if (containers.length > 0) await run(['container', 'rm', '-f', '-v', ...containers]);
  const networks = words(await run(['network', 'ls', '-q', '--filter', label]));
  if (networks.length > 0) await run(['network', 'rm', ...networks]);
  const volumes = words(await run(['volume', 'ls', '-q', '--filter', label]));
  if (volumes.length > 0) await run(['volume', 'rm', '-f', ...volumes]);
}

/** Base environment of every command: no proxies, no user config, nothing from the caller's compose variables. */
async function tsfigTarget(): Promise<Target> {
  const dir = await mkdtemp('/tmp/tsfig-conformance-');
  const env = {
    ...dockerBaseEnv(),
    TSFIG_ROOT: path.join(dir, 'root'),
    TSFIG_RUN_ROOT: path.join(dir, 'run'),
    TSFIG_DNS_FORWARD: '0',
    TSFIG_REGISTRY_LOOPBACK_ONLY: '1',
  };
  const bin = path.join(REPO, 'bin', 'tsfig.js');
  const cli = (
    args: readonly string[],
    cwd = dir,
    extra: Record<string, string> = {},
    input?: string,
    timeoutMs?: number,
  ) =>
    exec(process.execPath, [bin, ...args], {
      cwd,
      env: { ...env, ...extra },
      ...(input !== undefined ? { input } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
  const engine = createEngine({ env });
  // A scenario's `down -v --remove-orphans` almost always leaves nothing: look in-process first (three CLI runs per
  // scenario were a fifth of the phase's CPU) and go through tsfig's verbs only for what is left.
  const reset = async (project: string) => {
    const key = 'com.docker.compose.project';
    const left =
      (await engine.containers.list({ all: true, labels: { [key]: project } })).length > 0 ||
      (await engine.networks.list()).some((network) => network.labels[key] === project) ||
      (await engine.volumes.list({ filters: { label: [`${key}=${project}`] } })).volumes.length > 0;
    if (left) await resetProject(project, async (args) => (await cli(args)).stdout);
  };
  try {
    for (const [reference, tar] of Object.entries(IMAGES)) {
      const imported = await cli(['image', 'import', tar, reference]);
      if (imported.code !== 0) throw new Error(`tsfig image import ${tar}: ${imported.stderr}`);
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const version = (await cli(['version', '--short'])).stdout.trim();
  return {
    label: `tsfig ${version}`,
    shellEnv: { ...env, COMPOSE: `${process.execPath} ${bin}`, ENGINE: `${process.execPath} ${bin}` },
    compose: (args, cwd, extra, input, timeoutMs) => cli(args, cwd, extra, input, timeoutMs),
    reset,
    async close() {
      await removeEngineObjects(engine, { ignoreNetworkErrors: true }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * dockerd 20.10 started for the oracle (test/helpers/dockerd.ts): its own roots and socket, no firewall changes, its
 * own default bridge (Fig v1 files use it), addresses away from tsfig's pool, no pull can leave the host; the base
 * images imported once it answers.
 */
async function oracleTarget(): Promise<Target> {
  const dockerd = await startPrivateDockerd(
    {
      dataPrefix: '/var/tmp/tsfig-conformance-dockerd-',
      execPrefix: '/tmp/tcd-',
      bridge: ORACLE_BRIDGE,
      bridgeAddress: '10.232.0.1/24',
      addressPool: '10.231.0.0/16',
    },
    (env) => {
      for (const [reference, tar] of Object.entries(IMAGES)) mustRun('docker', ['import', tar, reference], env);
    },
  );
  const env = dockerd.env;
  const reset = (project: string) =>
    resetProject(project, (args) => Promise.resolve(spawnSync('docker', args, { env, encoding: 'utf8' }).stdout ?? ''));
  return {
    label: dockerd.label,
    shellEnv: { ...env, COMPOSE: 'docker-compose --ansi never', ENGINE: 'docker' },
    compose: (args, cwd, extra, input, timeoutMs) =>
      exec('docker-compose', ['--ansi', 'never', ...args], {
        cwd,
        env: { ...env, ...extra },
        ...(input !== undefined ? { input } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      }),
    reset,
    async close() {
      await dockerd.stop();
    },
  };
}

interface StepRun {
  readonly observation: Observation;
  readonly stderr: string;
}

async function runStep(target: Target, scenario: Scenario, step: Step, cwd: string): Promise<StepRun> {
  const project = scenario.name;
  const once = async (): Promise<StepRun> => {
    if (step.sleep !== undefined) {
      await sleep(step.sleep * 1000);
      return { observation: { code: 0, stdout: '' }, stderr: '' };
    }
    if (step.http !== undefined) {
      const [port, ...rest] = step.http.split('/');
      const observation = await httpGet(Number(port), `/${rest.join('/')}`);
      return {
        observation: { code: observation.code, stdout: shape(step, normalise(observation.stdout, project)) },
        stderr: '',
      };
    }
    const result =
      step.sh !== undefined
        ? await exec('sh', ['-c', step.sh], {
            cwd,
            env: { ...target.shellEnv, ...step.env },
            timeoutMs: step.timeout * 1000,
          })
        : await target.compose(step.compose!, cwd, { ...step.env }, step.stdin, step.timeout * 1000);
    return {
      observation: { code: result.code, stdout: shape(step, normalise(result.stdout, project)) },
      stderr: result.stderr,
    };
  };
  if (step.until === undefined) return once();
  const deadline = performance.now() + step.timeout * 1000;
  for (;;) {
    const run = await once();
    if (run.observation.stdout.includes(step.until) || performance.now() > deadline) return run;
    await sleep(300);
  }
}

function describeStep(step: Step): string {
  if (step.compose !== undefined) return `compose ${step.compose.join(' ')}`;
  if (step.sh !== undefined) return `sh: ${step.sh}`;
  if (step.http !== undefined) return `http ${step.http}`;
  return `sleep ${step.sleep}`;
}

async function runScenario(
  target: Target,
  scenario: Scenario,
  work: string,
  expectation: Expectation | undefined,
  verbose: boolean,
): Promise<{ observations: Observation[]; failure?: string; ms: number }> {
  const cwd = path.join(work, scenario.name);
  await cp(scenario.dir, cwd, { recursive: true, filter: (source) => path.basename(source) !== 'scenario.yaml' });
  const started = performance.now();
  const observations: Observation[] = [];
  let failure: string | undefined;
  try {
    for (const [index, step] of scenario.steps.entries()) {
      const { observation, stderr } = await runStep(target, scenario, step, cwd);
      observations.push(observation);
      if (verbose) {
        process.stderr.write(`  [${index + 1}] ${describeStep(step)} -> ${observation.code}\n${observation.stdout}\n`);
        if (stderr.trim() !== '') process.stderr.write(`  stderr: ${stderr.trim().slice(0, 2000)}\n`);
      }
      if (expectation !== undefined) {
        const recorded = expectation.steps[index];
        const why =
          recorded === undefined
            ? 'no recorded observation for this step (re-record with --oracle)'
            : compare(step, expected(step, recorded), observation);
        if (why !== undefined) {
          failure = `step ${index + 1} (${describeStep(step)}): ${why}${stderr.trim() !== '' ? `\n--- stderr\n${stderr.trim().slice(0, 1500)}` : ''}`;
          break;
        }
      } else if (step.code !== undefined) {
        const codeOk = step.code === 'error' ? observation.code !== 0 : observation.code === step.code;
        if (!codeOk) {
          failure = `step ${index + 1} (${describeStep(step)}): the oracle exited ${observation.code}, the scenario says ${step.code}\n${stderr.trim().slice(0, 1500)}`;
          break;
        }
      }
    }
  } finally {
    await target
      .compose(['down', '-v', '--remove-orphans', '-t', '0'], cwd, {}, undefined, 60_000)
      .catch(() => undefined);
    await target.reset(scenario.name);
    await rm(cwd, { recursive: true, force: true }).catch(() => undefined);
  }
  return { observations, ...(failure !== undefined ? { failure } : {}), ms: performance.now() - started };
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

export function allScenarios(): Scenario[] {
  return readdirSync(SCENARIOS, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => loadScenario(path.join(SCENARIOS, entry.name)))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function readExpectation(name: string): Expectation | undefined {
  const file = path.join(EXPECTED, `${name}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Expectation) : undefined;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('error: conformance scenarios run real containers: run as root\n');
    process.exit(77);
  }
  const oracle = process.argv.includes('--oracle');
  const verbose = process.argv.includes('--verbose');
  const only = option('--only')?.split(',');
  const scenarios = allScenarios().filter((scenario) => only === undefined || only.includes(scenario.name));
  if (only !== undefined && scenarios.length !== only.length)
    throw new Error(`unknown scenario in --only ${only.join(',')}`);
  const target = oracle ? await oracleTarget() : await tsfigTarget();
  const work = await mkdtemp('/tmp/tsfig-conformance-work-');
  const results: ScenarioResult[] = [];
  const started = performance.now();
  const onSignal = () => {
    void target.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.stderr.write(`conformance: ${scenarios.length} scenario(s) on ${target.label}\n`);
    const runOne = async (scenario: Scenario): Promise<void> => {
      const expectation = oracle ? undefined : readExpectation(scenario.name);
      if (!oracle && expectation === undefined) {
        results.push({ scenario, status: 'fail', ms: 0, detail: 'no recorded expectation (run with --oracle)' });
        process.stderr.write(`FAIL ${scenario.name}: no recorded expectation\n`);
        return;
      }
      if (!oracle && scenario.known !== undefined && process.argv.includes('--skip-known')) {
        results.push({ scenario, status: 'known', ms: 0, detail: 'not run (--skip-known)' });
        return;
      }
      if (verbose) process.stderr.write(`${scenario.name}\n`);
      const run = await runScenario(target, scenario, work, expectation, verbose);
      const ms = Math.round(run.ms);
      if (oracle) {
        if (run.failure !== undefined) {
          process.stderr.write(`ORACLE DISAGREES ${scenario.name}: ${run.failure}\n`);
          results.push({ scenario, status: 'fail', ms, detail: run.failure });
          return;
        }
        mkdirSync(EXPECTED, { recursive: true });
        const record: Expectation = {
          oracle: target.label,
          recorded: new Date().toISOString().slice(0, 10),
          steps: run.observations,
        };
        writeFileSync(path.join(EXPECTED, `${scenario.name}.json`), `${JSON.stringify(record, null, 2)}\n`);
        results.push({ scenario, status: 'pass', ms });
        process.stderr.write(`recorded ${scenario.name} (${ms} ms)\n`);
        return;
      }
      const status = run.failure === undefined ? 'pass' : scenario.known !== undefined ? 'known' : 'fail';
      results.push({ scenario, status, ms, ...(run.failure !== undefined ? { detail: run.failure } : {}) });
      const tag = status === 'pass' ? 'ok  ' : status === 'known' ? 'KNOWN' : 'FAIL';
      process.stderr.write(
        `${tag} ${scenario.name} (${ms} ms)${run.failure !== undefined ? `\n${run.failure}\n` : '\n'}`,
      );
    };
    const queue = [...scenarios];
    const jobs = Number(option('--jobs') ?? (oracle ? '2' : '3'));
    await Promise.all(
      Array.from({ length: jobs }, async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) await runOne(next);
      }),
    );
    results.sort((x, y) => x.scenario.name.localeCompare(y.scenario.name));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await target.close();
    await rm(work, { recursive: true, force: true });
  }
  const totalMs = Math.round(performance.now() - started);
  const failed = results.filter((result) => result.status === 'fail');
  const known = results.filter((result) => result.status === 'known');
  const fixedKnown = results.filter((result) => result.status === 'pass' && result.scenario.known !== undefined);
  process.stderr.write(
    `conformance: ${results.length - failed.length - known.length} passed, ${failed.length} failed, ${known.length} known divergence(s), ${(totalMs / 1000).toFixed(1)} s on ${target.label}\n`,
  );
  for (const result of oracle ? [] : fixedKnown) {
    process.stderr.write(`note: ${result.scenario.name} is marked known but passes: drop its "known:"\n`);
  }
  if (!oracle && !process.argv.includes('--no-report')) {
    if (only === undefined) writeReport(results, target.label, totalMs);
    else if (process.argv.includes('--update-report')) updateReport(results, allScenarios(), target.label);
  }
  process.exitCode = failed.length > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
