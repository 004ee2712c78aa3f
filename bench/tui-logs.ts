/**
 * TUI under a log flood (issue 9): an attached `tsfig --progress tty up` in a real pseudo-terminal (a private tmux
 * server) on three busybox services that print numbered lines at ~333 lines/s each (~1000 lines/s in all) for 10 s.
 * Measures the CPU time (user+sys, /proc/<pid>/stat) of the tsfig Node process and of the three container monitors
 * over the flood, and checks afterwards that plain `tsfig logs --no-color` has every line of every service, in order.
 *
 *   sudo node --import tsx bench/tui-logs.ts [--seconds 10] [--rate 333] [--head] [--no-write]
 *
 * The services wait for a file in a bind-mounted dir before printing, so the measured window is the flood and nothing
 * else; each prints in batches every 100 ms, paced on /proc/uptime (absolute deadlines, so the rate does not drift).
 * Everything lives in a temp dir (engine root, run root, project); the tmux server, the CLI, the containers and the
 * network are removed at the end, also on failure.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Engine } from '../engine/index.js';
import {
  BUSYBOX_TAR,
  CLI,
  benchEngine,
  commitLabel,
  downQuietly,
  ensureBaseImage,
  headCommit,
  loadavg,
  machine,
  option,
  requireRoot,
  runCli,
  sleep,
  until,
} from './harness.js';
import { REPO, updateSection } from './report.js';

const SECTION = 'TUI: attached up under a log flood';
const SERVICES = ['svc1', 'svc2', 'svc3'] as const;
const TARGET_PERCENT = 30;

const seconds = Number(option('--seconds', '10'));
const ratePerService = Number(option('--rate', '333'));
const write = !process.argv.includes('--no-write');
/** Build the committed HEAD (git archive + tsc) in the temp dir and run that CLI, not the shared tree's dist/. */
const head = process.argv.includes('--head');
let cliPath = CLI;
const linesPerService = Math.round(seconds * ratePerService);
const batches = seconds * 10;

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** user+sys CPU seconds of one process (all its threads), and of its reaped children. */
function cpuOf(pid: number): { self: number; children: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17
    const tick = (field: number) => Number(fields[field - 3]) / CLK_TCK;
    return { self: tick(14) + tick(15), children: tick(16) + tick(17) };
  } catch {
    return undefined;
  }
}

/** The process is gone or a zombie (exited, not yet reaped by the tmux server). */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * The emitter each service runs: waits for /sig/go, then prints batch k (lines up to (k+1)*N/batches) at
 * t0 + k * 100 ms, and records t0 and the time of its last line (centiseconds of /proc/uptime).
 */
const EMIT_SH = `# $1: service name, $2: lines, $3: batches of 100 ms
name=$1; lines=$2; batches=$3
while [ ! -e /sig/go ]; do usleep 5000; done
now_cs() { read up _ < /proc/uptime; now=\${up%.*}\${up#*.}; }
now_cs; t0=$now
i=0; k=0
while [ $k -lt $batches ]; do
  target=$((t0 + k * 10))
  while :; do now_cs; [ $now -ge $target ] && break; usleep $(( (target - now) * 10000 )); done
  end=$(( (k + 1) * lines / batches ))
  while [ $i -lt $end ]; do printf '%s %06d\\n' "$name" $i; i=$((i + 1)); done
  k=$((k + 1))
done
now_cs
echo "$t0 $now $i" > /sig/done-$name
exec sleep 3600
`;

function projectYaml(): string {
  const services = SERVICES.map(
    (name) =>
      `  ${name}:\n    image: tsfig/busybox:latest\n    command: ["sh", "/sig/emit.sh", "${name}", "${linesPerService}", "${batches}"]\n    init: true\n    volumes:\n      - ./sig:/sig\n`,
  );
  return `name: tuibench\nservices:\n${services.join('')}`;
}

const cli = (args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): string =>
  runCli(args, { cwd, env, bin: cliPath, maxBuffer: 256 * 1024 * 1024 }).stdout;

interface Sample {
  wall: number;
  node: number;
  nodeChildren: number;
  monitors: number;
}

/** Result of checking one service's lines in `tsfig logs`. */
interface Continuity {
  service: string;
  seen: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
}

function checkLogs(text: string): Continuity[] {
  return SERVICES.map((service) => {
    const numbers: number[] = [];
    for (const line of text.split('\n')) {
      const match = new RegExp(`^${service}-1\\s+\\| ${service} (\\d{6})$`).exec(line);
      if (match?.[1] !== undefined) numbers.push(Number(match[1]));
    }
    const unique = new Set(numbers);
    let outOfOrder = 0;
    for (let index = 1; index < numbers.length; index++)
      if ((numbers[index] ?? 0) <= (numbers[index - 1] ?? 0)) outOfOrder++;
    let lost = 0;
    for (let n = 0; n < linesPerService; n++) if (!unique.has(n)) lost++;
    return { service, seen: numbers.length, lost, duplicates: numbers.length - unique.size, outOfOrder };
  });
}

/** Rate each container actually printed at, from its json-file log's timestamps (first to last line). */
async function achievedRates(engine: Engine, ids: Record<string, string>): Promise<Record<string, number>> {
  const rates: Record<string, number> = {};
  for (const service of SERVICES) {
    const id = ids[service];
    if (id === undefined) continue;
    const file = path.join(engine.paths.containers, id, 'container-json.log');
    const times: number[] = [];
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      if (line === '') continue;
      const entry = JSON.parse(line) as { log: string; time: string };
      if (!entry.log.startsWith(`${service} `)) continue;
      // RFC 3339 with nanoseconds: keep the microseconds Date cannot hold
      const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(entry.time);
      const fraction = Number(`0.${(match?.[2] ?? '0').padEnd(9, '0')}`);
      times.push(Date.parse(`${match?.[1] ?? entry.time}Z`) / 1000 + fraction);
    }
    const first = times[0];
    const last = times[times.length - 1];
    if (first !== undefined && last !== undefined && last > first) rates[service] = (times.length - 1) / (last - first);
  }
  return rates;
}

async function main(): Promise<void> {
  requireRoot();
  ensureBaseImage(BUSYBOX_TAR);
  const loadBefore = loadavg();
  const { CI: _ci, ...inherited } = process.env;
  void _ci;
  const bench = await benchEngine('tui', { TERM: 'xterm-256color' }, inherited);
  const { dir, engine, env } = bench;
  const project = path.join(dir, 'project');
  const sig = path.join(project, 'sig');
  let built = 'the CLI run is `bin/tsfig.js`, i.e. dist/ as built in the shared tree at the time';
  // a private tmux server whose socket lives in the temp dir (removed with it)
  const socket = path.join(dir, 'tmux.sock');
  const tmux = (...args: string[]) =>
    execFileSync('tmux', ['-S', socket, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  let tmuxStarted = false;
  let nodePid = 0;
  const samples: Record<string, Sample> = {};
  let continuity: Continuity[] = [];
  let rates: Record<string, number> = {};
  let paneTail = '';
  let detachMs = 0;
  const runs: { t0: number; last: number; lines: number }[] = [];
  try {
    if (head) {
      const snapshot = path.join(dir, 'head');
      await mkdir(snapshot);
      const commit = headCommit();
      execFileSync('bash', ['-c', `git archive HEAD | tar -x -C '${snapshot}'`], { cwd: REPO });
      await symlink(path.join(REPO, 'node_modules'), path.join(snapshot, 'node_modules'));
      execFileSync(
        process.execPath,
        [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: snapshot,
          stdio: 'inherit',
        },
      );
      cliPath = path.join(snapshot, 'bin', 'tsfig.js');
      env.TSFIG_RUNTIME = path.join(REPO, 'native', 'build', 'tsfig-runtime');
      built = `the CLI run is commit ${commit} built by \`--head\` (git archive + tsc in the temp dir; the native helper of the tree)`;
    }
    await mkdir(sig, { recursive: true });
    await writeFile(path.join(sig, 'emit.sh'), EMIT_SH);
    await writeFile(path.join(project, 'tsfig.yml'), projectYaml());
    await bench.importImage(BUSYBOX_TAR, 'tsfig/busybox:latest');

    tmux(
      'new-session',
      '-d',
      '-s',
      'bench',
      '-x',
      '160',
      '-y',
      '48',
      '-c',
      project,
      `exec ${process.execPath} ${cliPath} --progress tty up`,
    );
    tmuxStarted = true;
    nodePid = Number(tmux('display-message', '-p', '-t', 'bench', '#{pane_pid}').trim());
    const ids = await until('three running containers', 120_000, async () => {
      const list = await engine.containers.list({ all: true });
      const running = list.filter((container) => container.state.running && container.state.pid > 0);
      if (running.length < SERVICES.length) return undefined;
      const byService: Record<string, string> = {};
      for (const container of running) {
        const service = container.labels['io.tsfig.service'] ?? '';
        byService[service] = container.id;
      }
      return byService;
    });
    const monitorPids = await Promise.all(
      Object.values(ids).map(async (id) => {
        const status = JSON.parse(await readFile(path.join(engine.paths.containers, id, 'status.json'), 'utf8')) as {
          monitor: number;
        };
        const comm = readFileSync(`/proc/${status.monitor}/comm`, 'utf8').trim();
        if (!comm.startsWith('tsfig-runtime')) throw new Error(`monitor pid ${status.monitor} is ${comm}`);
        return status.monitor;
      }),
    );
    const sample = (): Sample => {
      const node = cpuOf(nodePid);
      if (node === undefined) throw new Error(`the tsfig process ${nodePid} is gone`);
      return {
        wall: performance.now() / 1000,
        node: node.self,
        nodeChildren: node.children,
        monitors: monitorPids.reduce((sum, pid) => sum + (cpuOf(pid)?.self ?? 0), 0),
      };
    };
    await sleep(2000); // the TUI settles (first renders, first cgroup reads)
    samples.idleStart = sample();
    await sleep(3000);
    samples.go = sample();
    await writeFile(path.join(sig, 'go'), '');
    await until('every service to print its lines', (seconds + 30) * 1000, () =>
      SERVICES.every((service) => existsSync(path.join(sig, `done-${service}`))) ? true : undefined,
    );
    samples.done = sample();
    await sleep(2000);
    samples.drained = sample();
    for (const service of SERVICES) {
      const [t0, last, lines] = (await readFile(path.join(sig, `done-${service}`), 'utf8')).trim().split(' ');
      runs.push({ t0: Number(t0) / 100, last: Number(last) / 100, lines: Number(lines) });
    }
    const pane = tmux('capture-pane', '-p', '-t', 'bench');
    paneTail = pane.trimEnd().split('\n').slice(-6).join('\n');
    // `d` detaches: the TUI leaves, the stack keeps running
    const detachStart = performance.now();
    tmux('send-keys', '-t', 'bench', 'd');
    await until('the TUI to exit after d', 20_000, () => (exited(nodePid) ? true : undefined));
    detachMs = performance.now() - detachStart;
    rates = await achievedRates(engine, ids);
    continuity = checkLogs(cli(['logs', '--no-color'], project, env));
  } finally {
    if (tmuxStarted) {
      try {
        tmux('kill-server');
      } catch {
        // already gone with its last session
      }
    }
    if (nodePid > 0 && cpuOf(nodePid) !== undefined) process.kill(nodePid, 'SIGKILL');
    downQuietly({ cwd: project, env, bin: cliPath });
    await bench.cleanup();
  }
  const loadAfter = loadavg();

  const { idleStart, go, done, drained } = samples;
  if (idleStart === undefined || go === undefined || done === undefined || drained === undefined)
    throw new Error('missing samples');
  const percent = (from: Sample, to: Sample, key: 'node' | 'monitors' | 'nodeChildren') =>
    (100 * (to[key] - from[key])) / (to.wall - from.wall);
  const flood = percent(go, done, 'node');
  const totalLost = continuity.reduce((sum, row) => sum + row.lost, 0);
  const row = (label: string, from: Sample, to: Sample) =>
    `| ${label} | ${(to.wall - from.wall).toFixed(2)} | ${(to.node - from.node).toFixed(2)} | ${percent(from, to, 'node').toFixed(1)} | ${(to.nodeChildren - from.nodeChildren).toFixed(2)} | ${(to.monitors - from.monitors).toFixed(2)} | ${percent(from, to, 'monitors').toFixed(1)} |`;
  const command = `sudo node --import tsx bench/tui-logs.ts --seconds ${seconds} --rate ${ratePerService}${head ? ' --head' : ''}`;
  const markdown = [
    `Command (as root, from the repo root): \`${command}\``,
    '',
    `Commit ${commitLabel()} (${built}), ${new Date().toISOString()}. Machine: ${machine()}. Load average ${loadBefore} before, ${loadAfter} after (a shared machine: other engineers' work may have run meanwhile).`,
    '',
    `Set-up: \`tsfig --progress tty up\` (attached, Ink TUI) in a private tmux server (160x48 pane, TERM=xterm-256color, CI unset) on three busybox services (\`init: true\`); each waits for a file in a bind-mounted dir, then prints \`svcN 000000\`... in batches every 100 ms paced on /proc/uptime, ${linesPerService} lines per service (${ratePerService}/s each, ${SERVICES.length * ratePerService}/s in all) for ${seconds} s. CPU is user+sys from /proc/<pid>/stat (clock ticks of ${1000 / CLK_TCK} ms): the tsfig Node process (all its threads), its reaped children, and the three container monitors (\`tsfig-runtime\`, pids from status.json).`,
    '',
    '| window | wall s | tsfig CPU s | tsfig % of one core | tsfig children CPU s | monitors CPU s | monitors % of one core |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    row('idle TUI, before the flood (3 s)', idleStart, go),
    row('flood: go to the last line of every service', go, done),
    row('after the flood (2 s, backlog)', done, drained),
    '',
    `Achieved rate (json-file log timestamps, first to last line): ${SERVICES.map((service) => `${service} ${(rates[service] ?? 0).toFixed(1)}/s`).join(', ')}; total ${Object.values(
      rates,
    )
      .reduce((sum, value) => sum + value, 0)
      .toFixed(1)}/s. Per the containers' own clocks (t0 to last line, /proc/uptime, 10 ms resolution): ${runs
      .map((run, index) => `${SERVICES[index] ?? '?'} ${run.lines} lines in ${(run.last - run.t0).toFixed(2)} s`)
      .join(', ')}.`,
    '',
    `Plain \`tsfig logs --no-color\` afterwards (after \`d\` detached the TUI, ${detachMs.toFixed(0)} ms to exit):`,
    '',
    '| service | lines expected | lines seen | lost | duplicates | out of order |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...continuity.map(
      (item) =>
        `| ${item.service} | ${linesPerService} | ${item.seen} | ${item.lost} | ${item.duplicates} | ${item.outOfOrder} |`,
    ),
    '',
    `- tsfig Node process during the flood: ${flood.toFixed(1)}% of one core. Target under ${TARGET_PERCENT}%: **${flood < TARGET_PERCENT ? 'met' : 'not met'}**.`,
    `- lost lines: ${totalLost} (target 0: **${totalLost === 0 ? 'met' : 'not met'}**).`,
    `- the last rows of the TUI's pane 2 s after the flood (the log view follows the tail; the three services' last batches are printed at the same moment, so one of them ends the view):`,
    '',
    '```text',
    paneTail,
    '```',
  ].join('\n');
  if (write) updateSection(SECTION, markdown);
  process.stdout.write(`${markdown}\n`);
}

await main();
