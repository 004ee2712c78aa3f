/**
 * Compose-level timings (issue 5): `up -d` and `down` of N busybox services (sleeping, `init: true`), timed until a
 * separate `ps` shows every container running; a no-change `up` of the largest project. When Debian's docker.io and
 * docker-compose are installed and dockerd runs, the same stacks would run beside tsfig (this benchmark starts
 * nothing itself); otherwise that column says why it is missing.
 *
 *   sudo node --import tsx bench/compose-up.ts [--sizes 1,10,50] [--runs 3]
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
  const compose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (compose.error !== undefined) return "not installed (Debian's docker-compose)";
  const info = spawnSync('docker', ['info'], { encoding: 'utf8' });
  if (info.status !== 0) return 'installed, but dockerd is not running';
  return 'available';
}

async function main(): Promise<void> {
  requireRoot();
  ensureBaseImage(BUSYBOX_TAR);
  const bench = await benchEngine('compose');
  const { dir, env } = bench;
  const samples: Record<string, number[]> = {};
  const record = (key: string, ms: number) => (samples[key] ??= []).push(ms);
  try {
    await bench.importImage(BUSYBOX_TAR, 'tsfig/busybox:latest');
    for (const size of sizes) {
      const project = path.join(dir, `p${size}`);
      await mkdir(project);
      await writeFile(path.join(project, 'tsfig.yml'), projectYaml(size));
      for (let run = 0; run < runs; run++) {
        const started = performance.now();
        cli(['--progress', 'quiet', 'up', '-d'], project, env);
        const rows = cli(['ps', '--format', 'json'], project, env).stdout.split('\n').filter(Boolean);
        const running = rows.filter((row) => (JSON.parse(row) as { State: string }).State === 'running').length;
        if (running !== size) throw new Error(`only ${running} of ${size} containers are running`);
        record(`up -d ${size}`, performance.now() - started);
        if (size === Math.max(...sizes)) record(`no-change up ${size}`, cli(['up', '-d'], project, env).ms);
        record(`down ${size}`, cli(['--progress', 'quiet', 'down'], project, env).ms);
      }
    }
  } finally {
    await bench.cleanup();
  }
  const commit = headCommit();
  const dirty = dirtyPaths().length > 0 ? '+dirty' : '';
  const rows = Object.entries(samples).map(
    ([key, values]) =>
      `| ${key} | ${median(values).toFixed(0)} | ${Math.min(...values).toFixed(0)} | ${Math.max(...values).toFixed(0)} | ${values.map((v) => v.toFixed(0)).join(', ')} |`,
  );
  const markdown = [
    `Command: \`sudo node --import tsx bench/compose-up.ts --sizes ${sizes.join(',')} --runs ${runs}\``,
    `Commit ${commit}${dirty}, ${new Date().toISOString().slice(0, 10)}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}.`,
    `Each \`up -d\` is timed from the CLI's start until a separate \`tsfig ps\` shows every container running; busybox services sleeping with \`init: true\`; wall times in ms, including Node's start-up of each CLI process.`,
    `docker-compose on dockerd: ${dockerComposeStatus()}, so no ratio is reported in this run.`,
    '',
    '| what | median ms | min | max | samples |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    'Targets (design.md): `up -d` of 10 services <= 500 ms, of 50 <= 2000 ms; no-change `up` of 50 <= 200 ms; `down` of 50 <= 1000 ms.',
  ].join('\n');
  updateSection('Compose: up and down', markdown);
  process.stdout.write(`${markdown}\n`);
}

await main();
