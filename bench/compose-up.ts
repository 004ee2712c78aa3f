/**
 * Compose-level timings (issue 5): `up -d` and `down` of N busybox services (sleeping, `init: true`), timed until a
 * separate `ps` shows every container running; a no-change `up` of the largest project. When Debian's docker.io and
 * docker-compose are installed and dockerd runs, the same stacks run on docker-compose in the same run, interleaved
 * with tsfig's (same busybox root filesystem, `docker import`ed; this benchmark starts no daemon itself), and the
 * ratios are reported; otherwise the section says why they are missing. BENCHMARKS.md says how dockerd was run.
 *
 *   sudo node --import tsx bench/compose-up.ts [--sizes 1,10,50] [--runs 3] [--no-docker]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BUSYBOX_TAR,
  benchEngine,
  dirtyPaths,
  ensureBaseImage,
  headCommit,
  median,
  option,
  requireRoot,
  runCli,
} from './harness.js';
import { updateSection } from './report.js';

const sizes = option('--sizes', '1,10,50').split(',').map(Number);
const runs = Number(option('--runs', '3'));

function projectYaml(count: number): string {
  const services = Array.from(
    { length: count },
    (_, index) => `  s${index + 1}:\n    image: tsfig/busybox:latest\n    command: sleep 3600\n    init: true\n`,
  );
  return `services:\n${services.join('')}`;
}

const cli = (args: readonly string[], cwd: string, env: NodeJS.ProcessEnv) => runCli(args, { cwd, env });

function dockerComposeStatus(): string {
  if (process.argv.includes('--no-docker')) return 'not run (--no-docker)';
  const compose = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' });
  if (compose.error !== undefined) return "not installed (Debian's docker-compose)";
  const info = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8' });
  if (info.status !== 0) return 'installed, but dockerd is not running';
  return `available: docker-compose ${compose.stdout.trim()} on dockerd ${info.stdout.trim()}`;
}

/** Runs a docker or docker-compose command to its exit (5 min at most) and times it; throws unless it exits 0. */
function docker(file: string, args: readonly string[], cwd?: string): { ms: number; stdout: string } {
  const started = performance.now();
  const result = spawnSync(file, [...args], {
    ...(cwd !== undefined ? { cwd } : {}),
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return { ms, stdout: result.stdout };
}

/**
 * `docker-compose down`, timed from its first attempt. dockerd 20.10 sometimes refuses to remove the network right
 * after its containers ("has active endpoints", a stale endpoint in its store); like a user, the bench runs `down`
 * again (twice at most) and every attempt counts. A network still left is counted and reported, not fatal.
 */
function dockerDown(compose: readonly string[], cwd: string, stale: { count: number }): number {
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      docker('docker-compose', [...compose, 'down'], cwd);
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

/** Containers of a compose project that dockerd reports running (the `ps` check of the docker side). */
function dockerRunning(project: string): number {
  const out = docker('docker', [
    'ps',
    '-q',
    '--filter',
    `label=com.docker.compose.project=${project}`,
    '--filter',
    'status=running',
  ]).stdout;
  return out.split('\n').filter(Boolean).length;
}

async function main(): Promise<void> {
  requireRoot();
  ensureBaseImage(BUSYBOX_TAR);
  const bench = await benchEngine('compose');
  const { dir, env } = bench;
  const samples: Record<string, number[]> = {};
  const dockerSamples: Record<string, number[]> = {};
  const record = (key: string, ms: number) => (samples[key] ??= []).push(ms);
  const recordDocker = (key: string, ms: number) => (dockerSamples[key] ??= []).push(ms);
  const status = dockerComposeStatus();
  const withDocker = status.startsWith('available');
  // The same root filesystem as tsfig's busybox image, imported into dockerd (and removed after) unless it has it.
  const dockerImage = 'tsfig-bench/busybox:latest';
  const dockerRunProjects: { dir: string; project: string }[] = [];
  const stale = { count: 0 };
  let importedDockerImage = false;
  try {
    await bench.importImage(BUSYBOX_TAR, 'tsfig/busybox:latest');
    if (withDocker && spawnSync('docker', ['image', 'inspect', dockerImage]).status !== 0) {
      docker('docker', ['import', BUSYBOX_TAR, dockerImage]);
      importedDockerImage = true;
    }
    for (const size of sizes) {
      const project = path.join(dir, `p${size}`);
      await mkdir(project);
      await writeFile(path.join(project, 'tsfig.yml'), projectYaml(size));
      const dockerDir = path.join(dir, `d${size}`);
      const dockerProject = `tsfigbench${size}`;
      if (withDocker) {
        await mkdir(dockerDir);
        await writeFile(
          path.join(dockerDir, 'docker-compose.yml'),
          projectYaml(size).replaceAll('tsfig/busybox:latest', dockerImage),
        );
      }
      for (let run = 0; run < runs; run++) {
        const started = performance.now();
        cli(['--progress', 'quiet', 'up', '-d'], project, env);
        const rows = cli(['ps', '--format', 'json'], project, env).stdout.split('\n').filter(Boolean);
        const running = rows.filter((row) => (JSON.parse(row) as { State: string }).State === 'running').length;
        if (running !== size) throw new Error(`only ${running} of ${size} containers are running`);
        record(`up -d ${size}`, performance.now() - started);
        if (size === Math.max(...sizes)) record(`no-change up ${size}`, cli(['up', '-d'], project, env).ms);
        record(`down ${size}`, cli(['--progress', 'quiet', 'down'], project, env).ms);
        if (!withDocker) continue;
        // The same steps on docker-compose, right after, so both meet the same machine state. A project per run: a
        // network dockerd failed to remove (see dockerDown) never meets the next run.
        const runProject = `${dockerProject}r${run}`;
        dockerRunProjects.push({ dir: dockerDir, project: runProject });
        const compose = ['-p', runProject, '--no-ansi'];
        const dockerStarted = performance.now();
        docker('docker-compose', [...compose, 'up', '-d'], dockerDir);
        const dockerUp = dockerRunning(runProject);
        if (dockerUp !== size) throw new Error(`docker-compose: only ${dockerUp} of ${size} containers are running`);
        recordDocker(`up -d ${size}`, performance.now() - dockerStarted);
        if (size === Math.max(...sizes)) {
          recordDocker(`no-change up ${size}`, docker('docker-compose', [...compose, 'up', '-d'], dockerDir).ms);
        }
        recordDocker(`down ${size}`, dockerDown(compose, dockerDir, stale));
      }
    }
  } finally {
    await bench.cleanup();
    for (const { dir: cwd, project } of dockerRunProjects) {
      spawnSync('docker-compose', ['-p', project, 'down', '-t', '1'], { cwd });
    }
    if (importedDockerImage) spawnSync('docker', ['image', 'rm', dockerImage]);
  }
  const commit = headCommit();
  const dirty = dirtyPaths().length > 0 ? '+dirty' : '';
  const rows = Object.entries(samples).map(
    ([key, values]) =>
      `| ${key} | ${median(values).toFixed(0)} | ${Math.min(...values).toFixed(0)} | ${Math.max(...values).toFixed(0)} | ${values.map((v) => v.toFixed(0)).join(', ')} |`,
  );
  const dockerRows = Object.entries(samples).flatMap(([key, values]) => {
    const theirs = dockerSamples[key];
    if (theirs === undefined) return [];
    const ratio = median(theirs) / median(values);
    return [
      `| ${key} | ${median(values).toFixed(0)} | ${median(theirs).toFixed(0)} | ${ratio.toFixed(1)}x | ${theirs.map((v) => v.toFixed(0)).join(', ')} |`,
    ];
  });
  const markdown = [
    `Command: \`sudo node --import tsx bench/compose-up.ts --sizes ${sizes.join(',')} --runs ${runs}\``,
    `Commit ${commit}${dirty}, ${new Date().toISOString().slice(0, 10)}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}.`,
    `Each \`up -d\` is timed from the CLI's start until a separate \`tsfig ps\` shows every container running; busybox services sleeping with \`init: true\`; wall times in ms, including Node's start-up of each CLI process.`,
    withDocker
      ? `docker-compose on dockerd: ${status}; the same stacks ran on it in the same run, each step right after tsfig's (\`docker-compose -p P up -d\` until \`docker ps\` shows every container running, \`up -d\` again, \`down\`), from the same busybox root filesystem (\`docker import\`).${stale.count > 0 ? ` ${stale.count} of its \`down\`s left their network behind after three attempts (dockerd: "has active endpoints"); their time is counted.` : ''}`
      : `docker-compose on dockerd: ${status}, so no ratio is reported in this run.`,
    '',
    '| what | median ms | min | max | samples |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    ...(dockerRows.length > 0
      ? [
          '| what | tsfig median ms | docker-compose median ms | docker-compose / tsfig | docker-compose samples |',
          '| --- | --- | --- | --- | --- |',
          ...dockerRows,
          '',
        ]
      : []),
    'Targets (design.md): `up -d` of 10 services <= 500 ms, of 50 <= 2000 ms; no-change `up` of 50 <= 200 ms; `down` of 50 <= 1000 ms.',
  ].join('\n');
  updateSection('Compose: up and down', markdown);
  process.stdout.write(`${markdown}\n`);
}

await main();
