/**
 * Compose at scale (issue 18): `up -d`, a no-change `up -d`, `ps` and `down` of 10, 50 and 200 busybox services
 * (`sleep 3600`, `init: true`) on tsfig and on docker-compose 1.29 with a private dockerd this script starts and stops
 * itself (bench/dockerd.ts), in the same run: for each size and run, tsfig's steps and docker-compose's alternate
 * (which goes first swaps every run). Reports medians, the ratios, the cost per service between sizes (the slope:
 * flat when nothing grows faster than the project) and the CLI's peak RSS during `up -d`.
 *
 *   sudo node --import tsx bench/compose-scale.ts [--sizes 10,50,200] [--runs 3] [--no-docker] [--write]
 *
 * Each command is timed alone, from spawn to exit (Node's start-up included); that every container runs is checked
 * after `up -d`, untimed (`tsfig ps --format json`, `docker ps`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startPrivateDockerd, dockerdMissing, type PrivateDockerd } from './dockerd.js';
import {
  benchEngine,
  BUSYBOX_TAR,
  CLI,
  commitLabel,
  ensureBaseImage,
  f0,
  f1,
  loadavg,
  machine,
  median,
  option,
  rawSamplesBlock,
  requireRoot,
} from './harness.js';
import { updateSection } from './report.js';

const sizes = option('--sizes', '10,50,200').split(',').map(Number);
/** Containers per service (`scale:`): 10 services x 50 replicas is the 500-container project of issue 18. */
const replicas = Number(option('--replicas', '1'));
const SECTION =
  replicas === 1
    ? 'Compose at scale: up, ps, down of 10 to 200 services'
    : 'Compose at scale: many containers per service (500 containers)';
const runs = Number(option('--runs', '3'));
const STEPS = ['up -d', 'no-change up -d', 'ps', 'down'] as const;
type Step = (typeof STEPS)[number];
const TIME = '/usr/bin/time';

function projectYaml(count: number, image: string): string {
  const services = Array.from(
    { length: count },
    (_, index) =>
      `  s${index + 1}:\n    image: ${image}\n    command: sleep 3600\n    init: true\n${replicas === 1 ? '' : `    scale: ${replicas}\n`}`,
  );
  return `services:\n${services.join('')}`;
}

interface Timed {
  ms: number;
  stdout: string;
  /** Peak RSS in KiB (GNU time's %M), when /usr/bin/time ran it. */
  maxRssKiB?: number;
}

/** Runs a command to its exit (10 min at most), timed; throws unless it exits 0. */
function run(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env: NodeJS.ProcessEnv; rss?: boolean },
): Timed {
  const rss = options.rss === true && existsSync(TIME);
  const argv = rss ? [TIME, '-f', '%M', file, ...args] : [file, ...args];
  const started = performance.now();
  const result = spawnSync(argv[0] ?? file, argv.slice(1), {
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    env: options.env,
    encoding: 'utf8',
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  const maxRss = rss ? Number(result.stderr.trim().split('\n').pop()) : NaN;
  return { ms, stdout: result.stdout, ...(Number.isFinite(maxRss) ? { maxRssKiB: maxRss } : {}) };
}

/**
 * `docker-compose down`, timed from its first attempt. dockerd 20.10 sometimes refuses to remove the network right
 * after its containers ("has active endpoints"); like a user, the bench runs `down` again (twice at most) and every
 * attempt counts.
 */
function dockerDown(compose: readonly string[], cwd: string, env: NodeJS.ProcessEnv, stale: { count: number }) {
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      run('docker-compose', [...compose, 'down'], { cwd, env });
      return performance.now() - started;
    } catch (error) {
      if (!String(error).includes('active endpoints')) throw error;
      if (attempt === 3) {
        stale.count++;
        return performance.now() - started;
      }
    }
  }
}

async function main(): Promise<void> {
  requireRoot();
  ensureBaseImage(BUSYBOX_TAR);
  const missing = process.argv.includes('--no-docker') ? 'not run (--no-docker)' : dockerdMissing();
  const loadBefore = loadavg();
  const bench = await benchEngine('scale');
  const { dir, env } = bench;
  const tsfig: Record<string, number[]> = {};
  const docker: Record<string, number[]> = {};
  const rss: Record<number, number[]> = {};
  const nodeFloor: number[] = [];
  const record = (into: Record<string, number[]>, step: Step, size: number, ms: number): void => {
    (into[`${step} ${size}`] ??= []).push(ms);
  };
  const stale = { count: 0 };
  let dockerd: PrivateDockerd | undefined;
  const cleanups: (() => Promise<void> | void)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const step of cleanups.reverse()) {
        try {
          await step();
        } catch (error) {
          process.stderr.write(`clean-up failed: ${String(error)}\n`);
        }
      }
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`${signal}: cleaning up\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  cleanups.push(() => bench.cleanup());
  const tsfigProjects: string[] = [];
  cleanups.push(() => {
    for (const project of tsfigProjects) {
      spawnSync(process.execPath, [CLI, '--progress', 'quiet', 'down', '-t', '0'], {
        cwd: project,
        env,
        timeout: 300_000,
      });
    }
  });
  try {
    await bench.importImage(BUSYBOX_TAR, 'tsfig/busybox:latest');
    if (missing === undefined) {
      dockerd = await startPrivateDockerd();
      const started = dockerd;
      cleanups.push(() => started.stop());
      run('docker', ['import', BUSYBOX_TAR, 'tsfig-bench/busybox:latest'], { env: dockerd.env });
    }
    const dockerProjects: { dir: string; project: string }[] = [];
    cleanups.push(() => {
      for (const { dir: cwd, project } of dockerProjects) {
        if (dockerd !== undefined)
          spawnSync('docker-compose', ['-p', project, 'down', '-t', '0'], { cwd, env: dockerd.env, timeout: 300_000 });
      }
    });
    for (const size of sizes) {
      const project = path.join(dir, `p${size}`);
      await mkdir(project);
      await writeFile(path.join(project, 'tsfig.yml'), projectYaml(size, 'tsfig/busybox:latest'));
      const dockerDir = path.join(dir, `d${size}`);
      await mkdir(dockerDir);
      await writeFile(path.join(dockerDir, 'docker-compose.yml'), projectYaml(size, 'tsfig-bench/busybox:latest'));
      for (let round = 0; round < runs; round++) {
        const tsfigSteps = (): void => {
          const cli = (args: readonly string[], rssToo = false): Timed =>
            run(process.execPath, [CLI, ...args], { cwd: project, env, rss: rssToo });
          tsfigProjects.push(project);
          const up = cli(['--progress', 'quiet', 'up', '-d'], true);
          record(tsfig, 'up -d', size, up.ms);
          if (up.maxRssKiB !== undefined) (rss[size] ??= []).push(up.maxRssKiB);
          const rows = cli(['ps', '--format', 'json']).stdout.split('\n').filter(Boolean);
          const running = rows.filter((row) => (JSON.parse(row) as { State: string }).State === 'running').length;
          if (running !== size * replicas)
            throw new Error(`tsfig: only ${running} of ${size * replicas} containers are running`);
          // Node's own start-up, the floor of the two targets below (issue 18), timed in the same run
          nodeFloor.push(run(process.execPath, ['-e', '0'], { cwd: project, env }).ms);
          record(tsfig, 'no-change up -d', size, cli(['--progress', 'quiet', 'up', '-d']).ms);
          record(tsfig, 'ps', size, cli(['ps']).ms);
          record(tsfig, 'down', size, cli(['--progress', 'quiet', 'down']).ms);
        };
        const dockerSteps = (daemon: PrivateDockerd): void => {
          // A project per run: a network dockerd failed to remove (see dockerDown) never meets the next run.
          const name = `tsfigscale${size}r${round}`;
          dockerProjects.push({ dir: dockerDir, project: name });
          const compose = ['-p', name, '--ansi', 'never'];
          const dc = (args: readonly string[]): Timed =>
            run('docker-compose', [...compose, ...args], { cwd: dockerDir, env: daemon.env });
          record(docker, 'up -d', size, dc(['up', '-d']).ms);
          const ids = run(
            'docker',
            ['ps', '-q', '--filter', `label=com.docker.compose.project=${name}`, '--filter', 'status=running'],
            { env: daemon.env },
          ).stdout;
          const running = ids.split('\n').filter(Boolean).length;
          if (running !== size * replicas)
            throw new Error(`docker-compose: only ${running} of ${size * replicas} containers are running`);
          record(docker, 'no-change up -d', size, dc(['up', '-d']).ms);
          record(docker, 'ps', size, dc(['ps']).ms);
          record(docker, 'down', size, dockerDown(compose, dockerDir, daemon.env, stale));
        };
        const daemon = dockerd;
        if (daemon === undefined || round % 2 === 0) {
          tsfigSteps();
          if (daemon !== undefined) dockerSteps(daemon);
        } else {
          dockerSteps(daemon);
          tsfigSteps();
        }
        process.stderr.write(`size ${size} run ${round + 1}/${runs} done (load ${loadavg()})\n`);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
  const loadAfter = loadavg();
  const cell = (into: Record<string, number[]>, step: Step, size: number): number =>
    median(into[`${step} ${size}`] ?? []);
  const withDocker = dockerd !== undefined;
  const floor = median(nodeFloor);
  const floorLines = sizes.map(
    (size) =>
      `- ${size} services: no-change \`up -d\` ${f0(cell(tsfig, 'no-change up -d', size))} ms = ${f1(cell(tsfig, 'no-change up -d', size) / floor)}x, \`ps\` ${f0(cell(tsfig, 'ps', size))} ms = ${f1(cell(tsfig, 'ps', size) / floor)}x`,
  );
  const table = STEPS.flatMap((step) =>
    sizes.map((size) => {
      const ours = cell(tsfig, step, size);
      const theirs = cell(docker, step, size);
      return withDocker
        ? `| ${step} | ${size} | ${f0(ours)} | ${f0(theirs)} | ${f1(theirs / ours)}x |`
        : `| ${step} | ${size} | ${f0(ours)} | – | – |`;
    }),
  );
  const sorted = [...sizes].sort((a, b) => a - b);
  const slopeHeader = sorted.slice(1).map((size, index) => `${sorted[index]}→${size}`);
  const slopes = STEPS.flatMap((step) =>
    ([['tsfig', tsfig], ...(withDocker ? ([['docker-compose', docker]] as const) : [])] as const).map(([who, into]) => {
      const perService = sorted
        .slice(1)
        .map((size, index) => {
          const from = sorted[index] ?? 0;
          return (cell(into, step, size) - cell(into, step, from)) / (size - from);
        })
        .map(f1);
      return `| ${step} | ${who} | ${perService.join(' | ')} |`;
    }),
  );
  const raw = [
    ...Object.entries(tsfig).map(([key, values]) => `tsfig ${key}: ${values.map(f0).join(' ')}`),
    ...Object.entries(docker).map(([key, values]) => `docker-compose ${key}: ${values.map(f0).join(' ')}`),
    ...Object.entries(rss).map(([size, values]) => `tsfig up -d ${size} peak RSS KiB: ${values.join(' ')}`),
    `node -e 0: ${nodeFloor.map(f0).join(' ')}`,
  ];
  const markdown = [
    `Command (as root, repo root): \`node --import tsx bench/compose-scale.ts --sizes ${sizes.join(',')}${replicas === 1 ? '' : ` --replicas ${replicas}`} --runs ${runs}${withDocker ? '' : ' --no-docker'} --write\``,
    ...(replicas === 1
      ? []
      : [
          '',
          `Each service has \`scale: ${replicas}\`: ${sizes.map((size) => `${size} services = ${size * replicas} containers`).join(', ')}. The slope below is per service, so per container it is that divided by ${replicas}.`,
        ]),
    '',
    `Commit \`${commitLabel()}\`, ${new Date().toISOString().slice(0, 19)}Z. Machine: ${machine()}; load average ${loadBefore} before, ${loadAfter} after (a shared machine: other work ran meanwhile).`,
    '',
    withDocker
      ? `${dockerd?.label ?? ''}, a private dockerd started by the bench (bench/dockerd.ts: own roots and socket, \`--iptables=false --ip-masq=false\`, its own bridge), the same busybox root filesystem (\`docker import\`). For each size and run, tsfig's four steps and docker-compose's ran one after the other (which went first swapped every run).${stale.count > 0 ? ` ${stale.count} of docker-compose's \`down\`s left their network behind after three attempts (dockerd: "has active endpoints"); their time is counted.` : ''}`
      : `docker-compose: ${missing ?? 'not run'}, so no ratio is reported in this run.`,
    '',
    `Medians of ${runs} runs, ms from spawn to exit (Node's or Python's start-up included); \`up -d\` with \`--progress quiet\` on tsfig, \`--ansi never\` on docker-compose (with COMPOSE_HTTP_TIMEOUT=600: on a loaded machine dockerd took longer than the default 60 s to answer a \`down\` of 50). That every container runs is checked after \`up -d\`, untimed.`,
    '',
    '| step | services | tsfig ms | docker-compose ms | docker-compose / tsfig |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...table,
    '',
    'Cost per added service (ms per service: the difference of the medians over the difference of the sizes); a flat slope means nothing grows faster than the project:',
    '',
    `| step | who | ${slopeHeader.join(' | ')} |`,
    `| --- | --- | ${slopeHeader.map(() => '---:').join(' | ')} |`,
    ...slopes,
    '',
    `Against Node's own start-up (\`node -e 0\`, spawned the same way in each tsfig round: median ${f0(floor)} ms; targets: no-change \`up\` of 50 <= 2x, \`ps\` of 50 <= 1.5x):`,
    '',
    ...floorLines,
    '',
    `Peak RSS of the tsfig CLI during \`up -d\` (GNU time's maximum resident set size, median): ${sizes.map((size) => `${size} services ${f1(median(rss[size] ?? []) / 1024)} MiB`).join(', ')}.`,
    '',
    ...rawSamplesBlock(raw),
  ].join('\n');
  if (process.argv.includes('--write')) updateSection(SECTION, markdown);
  process.stdout.write(`${markdown}\n`);
}

await main();
