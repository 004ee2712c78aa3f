/**
 * Soak and chaos (issue #20): up/down cycles of a small stack, and `kill -9` of the CLI's whole process group at a
 * random moment of up, down, run --rm, build, pull (from Debian's docker-registry on 127.0.0.1), volume rm and
 * network rm, and of container monitors. After each fault the next plain command must converge; at the end `down -v`
 * and `system check` must find nothing, and a token written to a named volume before the faults must be intact.
 * Real engine, own temp state root, nothing but loopback contacted.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createEngine } from '../../engine/index.js';
import { lockDirectory } from '../../engine/state/lock.js';
import { engineEnv, removeEngineObjects, REPO, runCli, BUSYBOX_TAR, type CliResult } from '../helpers/engine.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/registry.js';

export const OPERATIONS = ['up', 'down', 'run', 'build', 'pull', 'volume-rm', 'network-rm', 'monitor'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** A kill lands at a uniform random moment in [0, this) of the command (each about its usual run time here). */
const MAX_DELAY_MS: Readonly<Record<Operation, number>> = {
  up: 1500,
  down: 1200,
  run: 1200,
  build: 2500,
  pull: 1500,
  'volume-rm': 700,
  'network-rm': 700,
  monitor: 0,
};

export interface ChaosOptions {
  /** up/down cycles. */
  readonly cycles: number;
  /** kill -9 faults per operation. */
  readonly kills: number;
  /** Services of the stack. @default 4 */
  readonly services?: number;
  /** Seed of the random choices (printed, so a run can be replayed). */
  readonly seed?: number;
  readonly log?: (line: string) => void;
}

export interface ChaosResult {
  readonly seed: number;
  readonly cycles: number;
  readonly kills: Readonly<Record<Operation, number>>;
  /** A plain command after a fault (or a cycle) that failed or did not reach the wanted state. */
  readonly convergenceFailures: string[];
  /** What `down -v`, `system check` and the host still showed at the end. */
  readonly leftovers: string[];
  /** Named-volume data written before the faults that was changed or gone. */
  readonly dataLost: string[];
  readonly seconds: number;
}

/** A small deterministic generator (mulberry32), so a failing run can be replayed with its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** True when pid has exited (gone, or a zombie not reaped yet). */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * Runs the CLI as the leader of its own process group and sends SIGKILL to the whole group after delayMs (unless it
 * ended before). Returns whether the kill happened while it ran.
 */
async function killAfter(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  delayMs: number,
): Promise<boolean> {
  const child = spawn(process.execPath, [path.join(REPO, 'bin', 'tsfig.js'), ...args], {
    env,
    cwd,
    stdio: 'ignore',
    detached: true,
  });
  const done = new Promise((resolve) => child.once('exit', resolve));
  const pid = child.pid ?? 0;
  const timer = new Promise((resolve) => setTimeout(resolve, delayMs));
  await Promise.race([timer, done]);
  const killed = !exited(pid);
  if (killed) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  await done;
  return killed;
}

/**
 * The processes whose command line or environment names the dir (the soak's root), for a hang: `pid state wchan
 * args`, and how many lock entries (engine/state/lock.ts: `<hash>.<pid base 36>-<random>.<n>`) each holds.
 */
function processesOf(dir: string): string {
  const entries = (() => {
    try {
      return readdirSync(lockDirectory());
    } catch {
      return [];
    }
  })();
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (!args.includes(dir) && !readFileSync(`/proc/${entry}/environ`, 'utf8').includes(dir)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      const wchan = readFileSync(`/proc/${entry}/wchan`, 'utf8').trim() || '-';
      const token = `.${Number(entry).toString(36)}-`;
      const locks = entries.filter((name) => !name.startsWith('.') && name.includes(token)).length;
      found.push(
        `${entry} ${state} ${wchan} ${args.slice(0, 160)}${locks > 0 ? ` [holds ${locks} lock entries]` : ''}`,
      );
    } catch {
      // gone meanwhile
    }
  }
  return found.join('; ') || 'none';
}

interface Stack {
  readonly dir: string;
  readonly project: string;
  readonly services: readonly string[];
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const started = Date.now();
  const seed = options.seed ?? randomBytes(4).readUInt32LE(0);
  const rand = random(seed);
  const log = options.log ?? (() => undefined);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const work = await mkdtemp('/tmp/tsfig-chaos-');
  const env = engineEnv(work);
  const engine = createEngine({ env });
  const kills = Object.fromEntries(OPERATIONS.map((op) => [op, 0])) as Record<Operation, number>;
  const convergenceFailures: string[] = [];
  const leftovers: string[] = [];
  const dataLost: string[] = [];
  const cli = (args: readonly string[], cwd = work): Promise<CliResult> =>
    runCli(args, env, { cwd, timeoutMs: 180_000 });
  /** A plain command that must succeed; a failure is counted, not thrown. */
  const must = async (what: string, args: readonly string[], cwd?: string): Promise<CliResult> => {
    const began = Date.now();
    const result = await cli(args, cwd);
    if (result.code !== 0) {
      // A command that hung was killed by runCli's timeout: say so, with what ran of this root then (a lock holder).
      const hung =
        Date.now() - began >= 179_000
          ? ` (timed out after ${Math.round((Date.now() - began) / 1000)} s; processes of this root: ${processesOf(work)})`
          : '';
      const line = `${what}: tsfig ${args.join(' ')} exited ${result.code}${hung}: ${result.stderr.trim().slice(-400)}`;
      convergenceFailures.push(line);
      log(`FAIL ${line}`);
    }
    return result;
  };
  let registry: LocalRegistry | undefined;
  try {
    await engine.images.importRootfs({ kind: 'file', path: BUSYBOX_TAR }, { reference: 'tsfig/busybox:latest' });
    registry = await startLocalRegistry(path.join(work, 'registry'));
    const count = options.services ?? 4;
    const project = 'chaos';
    const dir = path.join(work, project);
    await mkdir(path.join(dir, 'app'), { recursive: true });
    const names = Array.from({ length: count }, (_, index) => `s${index}`);
    const yaml = [
      'services:',
      ...names.flatMap((name) => [
        `  ${name}:`,
        '    image: tsfig/busybox:latest',
        '    init: true',
        '    command: ["sh", "-c", "echo up; exec sleep 100000"]',
        '    volumes: ["keep:/keep"]',
      ]),
      '  app:',
      '    build: ./app',
      '    image: chaos-app:latest',
      '    profiles: ["build"]',
      'volumes:',
      '  keep: {}',
      '',
    ].join('\n');
    await writeFile(path.join(dir, 'tsfig.yml'), yaml);
    const stack: Stack = { dir, project, services: names };
    const volumeData = path.join(env.TSFIG_ROOT ?? '', 'volumes', `${project}_keep`, '_data');
    const token = randomBytes(16).toString('hex');

    // The data written before any fault.
    await must('first up', ['up', '-d'], dir);
    await must('write token', ['exec', '-T', 's0', 'sh', '-c', `echo ${token} > /keep/token && sync`], dir);
    const checkData = async (when: string): Promise<void> => {
      const text = await readFile(path.join(volumeData, 'token'), 'utf8').catch(() => '');
      if (text.trim() !== token) {
        const line = `${when}: the token in volume ${project}_keep is ${JSON.stringify(text.trim())}`;
        dataLost.push(line);
        log(`LOST ${line}`);
      }
    };
    // An image in the local registry for the pull faults, with a layer of its own (so pulls download something).
    await writeFile(
      path.join(dir, 'app', 'Dockerfile'),
      'FROM tsfig/busybox:latest\nRUN head -c 3000000 /dev/urandom > /blob && echo built > /built\n',
    );
    const remote = `${registry.domain}/chaos/app:1`;
    await must('build for the registry', ['image', 'build', '-t', remote, path.join(dir, 'app')]);
    await must('push', ['image', 'push', remote]);
    await must('rm pushed', ['image', 'rm', remote]);

    /** Brings the stack up and checks every service runs one container. */
    const converged = async (what: string): Promise<void> => {
      await must(`${what}: up`, ['up', '-d'], dir);
      const ps = await cli(['ps', '-a', '--format', 'json'], dir);
      const rows = ps.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { Service: string; State: string });
      for (const name of names) {
        const mine = rows.filter((row) => row.Service === name);
        if (mine.length !== 1 || mine[0]?.State !== 'running') {
          const line = `${what}: service ${name} has ${JSON.stringify(mine.map((row) => row.State))} after up`;
          convergenceFailures.push(line);
          log(`FAIL ${line}`);
        }
      }
    };

    /** One fault of op at a random moment, then the plain command that must converge. */
    const fault = async (op: Operation, index: number): Promise<void> => {
      const delay = Math.floor(rand() * MAX_DELAY_MS[op]);
      const label = `${op}#${index} (${delay} ms)`;
      switch (op) {
        case 'up':
          await cli(['down', '-t', '0'], dir);
          if (await killAfter(['up', '-d'], env, dir, delay)) kills.up++;
          await converged(label);
          break;
        case 'down':
          if (await killAfter(['down', '-t', '0'], env, dir, delay)) kills.down++;
          await must(`${label}: down`, ['down', '-t', '0'], dir);
          await converged(label);
          break;
        case 'run':
          if (await killAfter(['run', '--rm', 's1', 'sh', '-c', 'echo one-off; sleep 0.3'], env, dir, delay))
            kills.run++;
          await must(`${label}: run --rm`, ['run', '--rm', 's1', 'true'], dir);
          break;
        case 'build':
          await writeFile(path.join(dir, 'app', 'stamp'), `${index}\n`);
          await writeFile(
            path.join(dir, 'app', 'Dockerfile'),
            `FROM tsfig/busybox:latest\nCOPY stamp /stamp\nRUN echo building ${index} && sleep 0.5 && echo done > /done\n`,
          );
          if (await killAfter(['--profile', 'build', 'build', 'app'], env, dir, delay)) kills.build++;
          await must(`${label}: build`, ['--profile', 'build', 'build', 'app'], dir);
          break;
        case 'pull':
          if (await killAfter(['image', 'pull', remote], env, work, delay)) kills.pull++;
          await must(`${label}: pull`, ['image', 'pull', remote]);
          await must(`${label}: image rm`, ['image', 'rm', remote]);
          break;
        case 'volume-rm': {
          const name = `scratch${index}`;
          await must(`${label}: volume create`, ['volume', 'create', name]);
          await must(
            `${label}: run`,
            [
              'run',
              '--rm',
              '-v',
              `${name}:/data`,
              's1',
              'sh',
              '-c',
              'seq 1 3000 | while read i; do : > /data/f$i; done',
            ],
            dir,
          );
          if (await killAfter(['volume', 'rm', name], env, work, delay)) kills['volume-rm']++;
          await must(`${label}: volume rm -f`, ['volume', 'rm', '-f', name]);
          const ls = await must(`${label}: volume ls`, ['volume', 'ls', '-q']);
          if (ls.stdout.split('\n').includes(name)) {
            convergenceFailures.push(`${label}: volume ${name} still listed after rm -f`);
          }
          break;
        }
        case 'network-rm': {
          const name = `chaosnet${index}`;
          await must(`${label}: network create`, ['network', 'create', name]);
          if (await killAfter(['network', 'rm', name], env, work, delay)) kills['network-rm']++;
          await must(`${label}: network rm -f`, ['network', 'rm', '-f', name]);
          break;
        }
        case 'monitor': {
          const ps = await cli(['ps', '-q'], dir);
          const ids = ps.stdout.split('\n').filter(Boolean);
          if (ids.length === 0) {
            await converged(label);
            break;
          }
          const victim = pick(ids);
          const full = readdirSync(path.join(env.TSFIG_ROOT ?? '', 'containers')).find((entry) =>
            entry.startsWith(victim),
          );
          const status = JSON.parse(
            await readFile(path.join(env.TSFIG_ROOT ?? '', 'containers', full ?? victim, 'status.json'), 'utf8').catch(
              () => '{}',
            ),
          ) as { monitor?: number };
          if (status.monitor !== undefined && status.monitor > 0) {
            try {
              process.kill(status.monitor, 'SIGKILL');
              kills.monitor++;
            } catch {
              // exited meanwhile
            }
            // The fault is a dead monitor: the plain command comes after its death. kill() only queues the signal; on
            // a loaded machine the monitor can still run when `up` reads it (then alive, rightly left alone), and the
            // `ps` after would find it dead: a failure of the harness, not of the command.
            for (let waited = 0; !exited(status.monitor) && waited < 10_000; waited += 10) {
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
          }
          await converged(label);
          break;
        }
      }
    };

    // Faults spread over the cycles: each cycle is an up/down round, with the faults due by then in between.
    const faults: Operation[] = OPERATIONS.flatMap((op) => Array.from({ length: options.kills }, () => op));
    for (let i = faults.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [faults[i], faults[j]] = [faults[j] as Operation, faults[i] as Operation];
    }
    let next = 0;
    const attempts = Object.fromEntries(OPERATIONS.map((op) => [op, 0])) as Record<Operation, number>;
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      await converged(`cycle ${cycle}`);
      const due = Math.round((faults.length * cycle) / options.cycles);
      for (; next < due; next++) {
        const op = faults[next] as Operation;
        await fault(op, ++attempts[op]);
      }
      await must(`cycle ${cycle}: down`, ['down', '-t', '0'], stack.dir);
      await checkData(`cycle ${cycle}`);
      if (cycle % 10 === 0 || cycle === options.cycles) {
        log(
          `cycle ${cycle}/${options.cycles}: kills ${JSON.stringify(kills)}, failures ${convergenceFailures.length}, ` +
            `lost ${dataLost.length}, ${Math.round((Date.now() - started) / 1000)} s`,
        );
      }
    }
    // A fault whose kill landed after the command had ended is not a kill: top those up so each op gets its count.
    for (const op of OPERATIONS) {
      for (let extra = 0; kills[op] < options.kills && extra < options.kills * 3; extra++) {
        await fault(op, ++attempts[op]);
      }
    }
    await converged('final');
    await checkData('final');

    await must('final down -v', ['down', '-v', '-t', '0'], dir);
    await cli(['image', 'rm', 'chaos-app:latest']);
    const check = await cli(['system', 'check']);
    if (check.code !== 0)
      leftovers.push(`system check exited ${check.code}: ${check.stdout.trim()} ${check.stderr.trim()}`);
    const containers = readdirSync(path.join(env.TSFIG_ROOT ?? '', 'containers'));
    if (containers.length > 0) leftovers.push(`containers/: ${containers.join(' ')}`);
    const volumes = await cli(['volume', 'ls', '-q']);
    if (volumes.stdout.trim() !== '') leftovers.push(`volumes: ${volumes.stdout.trim().split('\n').join(' ')}`);
    const networks = (await engine.networks.list()).map((n) => n.name);
    if (networks.length > 0) leftovers.push(`networks: ${networks.join(' ')}`);
    const host = hostLeftovers(engine.paths.rootId, engine.paths.hostPrefix, work);
    leftovers.push(...host);
  } finally {
    await registry?.stop();
    await removeEngineObjects(engine, { ignoreNetworkErrors: true }).catch(() => undefined);
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
  return {
    seed,
    cycles: options.cycles,
    kills,
    convergenceFailures,
    leftovers,
    dataLost,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}

/** Cgroups, mounts, processes and interfaces of this root still on the host. */
function hostLeftovers(rootId: string, hostPrefix: string, work: string): string[] {
  const found: string[] = [];
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    try {
      for (const entry of readdirSync(path.join('/sys/fs/cgroup', controller))) {
        if (entry.includes(rootId)) found.push(`cgroup ${controller}/${entry}`);
      }
    } catch {
      // not a directory
    }
  }
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    if (line.includes(work) || line.includes(rootId)) found.push(`mount ${line}`);
  }
  const ps = spawnSync('ps', ['-eo', 'pid,stat,args'], { encoding: 'utf8' }).stdout;
  for (const line of ps.split('\n')) {
    if (line.includes('ps -eo') || line.includes('docker-registry')) continue;
    if (line.includes(work) || line.includes(rootId)) found.push(`process ${line.trim()}`);
  }
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  for (const line of links.split('\n')) if (line.includes(hostPrefix)) found.push(`link ${line.slice(0, 80)}`);
  return found;
}
