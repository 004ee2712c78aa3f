/**
 * CLI start-up (issue 18): what a short command costs beside Node's own start-up, all rows interleaved in one run
 * (order rotated each round). Rows: `node -e 0` (the floor), `tsfig --version`, `tsfig ps` of a running 50-service
 * project, `tsfig container run --rm tsfig/busybox true`, where the time of `ps` goes (Node loading the CLI with
 * ps's code cache and running nothing: bin/tsfig.js's loadCli), and the same `container run` as an ordinary user
 * (rootless: the command starts, joins the user's session and starts again in it; scripts/rootless-user.sh's
 * tsfig-rl, its own HOME, session and state, the tests' helper test/helpers/rootless-cli.ts).
 *
 *   sudo node --import tsx bench/cli-startup.ts [--runs 15] [--warmup 2] [--services 50] [--bin LABEL=bin/tsfig.js]...
 *        [--write]
 *
 * --bin LABEL=PATH  a CLI entry point to time (repeatable; default: this tree's bin/tsfig.js): e.g. another worktree's
 *                   bin/tsfig.js as "before". Every CLI runs against the same engine root.
 * --write           replace the section "CLI start-up" of BENCHMARKS.md
 *
 * Each sample runs under `bash -c` so that both the wall time (EPOCHREALTIME around the command, bash's own start
 * outside it) and the CPU time of the command (user + system of bash's children, `times`) are known: on a shared
 * 2-core machine the CPU time is often the steadier figure, and the ratios are given for both. (On a virtual machine
 * whose host is overcommitted, the guest counts the time its vCPU was descheduled as the task's: then CPU times grow
 * with the load too.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  benchEngine,
  BUSYBOX_TAR,
  CLI,
  commitLabel,
  downQuietly,
  ensureBaseImage,
  f0,
  f1,
  loadavg,
  machine,
  median,
  option,
  ratio,
  rawSamplesBlock,
  requireRoot,
  runCli,
  stats,
} from './harness.js';
import { updateSection } from './report.js';
import { ensureRootlessUser, rootlessTree, rootlessUser } from '../test/helpers/rootless-cli.js';

const SECTION = 'CLI start-up';
const runs = Number(option('--runs', '15'));
const warmup = Number(option('--warmup', '2'));
const services = Number(option('--services', '50'));

/** The CLIs to time: --bin LABEL=PATH (repeatable), or this tree's bin/tsfig.js. */
function bins(): { label: string; path: string }[] {
  const found: { label: string; path: string }[] = [];
  process.argv.forEach((arg, index) => {
    if (arg !== '--bin') return;
    const match = /^([\w.+-]+)=(.+)$/.exec(process.argv[index + 1] ?? '');
    if (match?.[1] === undefined || match[2] === undefined) throw new Error('--bin needs LABEL=PATH');
    found.push({ label: match[1], path: path.resolve(match[2]) });
  });
  return found.length > 0 ? found : [{ label: '', path: CLI }];
}

let scratchDir: string | undefined;

/** This run's temp dir for the timing script's files; removed when the process exits. */
function scratch(): string {
  if (scratchDir === undefined) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsfig-bench-startup-'));
    scratchDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return scratchDir;
}

interface Sample {
  wallMs: number;
  cpuMs: number;
}

/** The children's user + system ms of one `times` output (bash prints its own line, then its children's). */
function childCpuMs(times: string): number {
  const lines = times.trim().split('\n');
  const children = lines[lines.length - 1] ?? '';
  const parts = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60_000 + Number(m[2]) * 1000);
  if (parts.length !== 2) throw new Error(`cannot read bash's times: ${times}`);
  return (parts[0] ?? 0) + (parts[1] ?? 0);
}

/**
 * Runs argv under bash (stdout and stderr to /dev/null); its wall time from EPOCHREALTIME just before and after it
 * and its CPU time from bash's `times`. Throws unless it exits 0.
 */
function timed(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Sample {
  // `times` before and after: the difference is the command's alone, whatever bash ran before it. Its files are in
  // a temp dir of this run, removed at exit.
  const t0 = path.join(scratch(), 't0');
  const errFile = path.join(scratch(), 'err');
  const script =
    'times >"$T0"; s=$EPOCHREALTIME; "$@" >/dev/null 2>"$ERR"; r=$?; ' +
    'e=$EPOCHREALTIME; echo "wall $s $e"; cat "$T0"; echo --; times; exit $r';
  const result = spawnSync('bash', ['--norc', '--noprofile', '-c', script, 'bash', ...argv], {
    env: { ...env, BASH_ENV: '', ENV: '', T0: t0, ERR: errFile },
    cwd,
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    const err = existsSync(errFile) ? readFileSync(errFile, 'utf8') : '';
    throw new Error(`${argv.join(' ')} failed (${result.status}): ${err}${result.stderr}`);
  }
  const [wallLine = '', ...rest] = result.stdout.trim().split('\n');
  const [, start = 'NaN', end = 'NaN'] = wallLine.split(' ');
  const [before = '', after = ''] = rest.join('\n').split('\n--\n');
  return { wallMs: (Number(end) - Number(start)) * 1000, cpuMs: childCpuMs(after) - childCpuMs(before) };
}

/**
 * The command that loads the CLI the way `bin` runs `ps` and runs nothing (bin/tsfig.js's loadCli: read, compile with
 * ps's code cache, the bundle's top level); for a tree built before dist/bundle/cli.cjs, importing the chunk of
 * dist/bundle/ that registers `ps`.
 */
function psModules(bin: string): string[] | undefined {
  const cli = path.join(path.dirname(bin), '..', 'dist', 'bundle', 'cli.cjs');
  if (existsSync(cli)) {
    const script = `const b = require(${JSON.stringify(bin)}); b.loadCli(b.cliFile, 'ps');`;
    return [process.execPath, '-e', script];
  }
  const bundle = path.join(path.dirname(bin), '..', 'dist', 'bundle');
  if (!existsSync(bundle)) return undefined;
  // the chunk that imports it: bin.js, or the main chunk bin.js imports
  const name = readdirSync(bundle)
    .filter((file) => file === 'bin.js' || file.startsWith('main-'))
    .map((file) => /"\.\/(inspect-commands-[\w]+\.js)"/.exec(readFileSync(path.join(bundle, file), 'utf8'))?.[1])
    .find((found) => found !== undefined);
  if (name === undefined) return undefined;
  const chunk = path.join(bundle, name);
  return [process.execPath, '--input-type=module', '-e', `await import(${JSON.stringify(chunk)})`];
}

async function main(): Promise<void> {
  requireRoot();
  ensureBaseImage(BUSYBOX_TAR);
  const clis = bins();
  const bench = await benchEngine('startup');
  const { dir, env } = bench;
  const project = path.join(dir, 'p');
  const rows: { key: string; label: string; argv: string[]; cwd: string }[] = [
    { key: 'node', label: '`node -e 0` (floor)', argv: [process.execPath, '-e', '0'], cwd: dir },
  ];
  for (const cli of clis) {
    const tag = cli.label === '' ? '' : ` (${cli.label})`;
    const prefix = cli.label === '' ? '' : `${cli.label}:`;
    const node = [process.execPath, cli.path];
    rows.push(
      { key: `${prefix}version`, label: `\`tsfig --version\`${tag}`, argv: [...node, '--version'], cwd: dir },
      {
        key: `${prefix}ps`,
        label: `\`tsfig ps\`, ${services} services running${tag}`,
        argv: [...node, 'ps'],
        cwd: project,
      },
      {
        key: `${prefix}run`,
        label: `\`tsfig container run --rm tsfig/busybox true\`${tag}`,
        argv: [...node, 'container', 'run', '--rm', 'tsfig/busybox', 'true'],
        cwd: dir,
      },
    );
    const modules = psModules(cli.path);
    if (modules !== undefined) {
      rows.push({
        key: `${prefix}ps-modules`,
        label: `load the CLI as for \`ps\`, run nothing (\`node -e "…loadCli(…)"\`)${tag}`,
        argv: modules,
        cwd: dir,
      });
    }
  }
  // An ordinary user's `container run`: its argv runs under setpriv with the user's whole environment (env -i).
  const user = rootlessUser();
  const userCli = path.join(rootlessTree(), 'bin', 'tsfig.js');
  const userEnv = [
    `HOME=${user.home}`,
    `USER=${user.name}`,
    `XDG_RUNTIME_DIR=${user.runtimeDir}`,
    `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
    'TSFIG_DNS_FORWARD=0',
  ];
  rows.push({
    key: 'rootless-run',
    label: '`tsfig container run --rm tsfig/busybox true` as an ordinary user (rootless)',
    argv: [
      'setpriv',
      `--reuid=${user.uid}`,
      `--regid=${ensureRootlessUser(user.name).gid}`,
      '--init-groups',
      'env',
      '-i',
      ...userEnv,
      process.execPath,
      userCli,
      'container',
      'run',
      '--rm',
      'tsfig/busybox',
      'true',
    ],
    cwd: user.project,
  });
  const samples = new Map<string, Sample[]>(rows.map((row) => [row.key, []]));
  const loadBefore = loadavg();
  try {
    await bench.importImage(BUSYBOX_TAR, 'tsfig/busybox:latest');
    await mkdir(project);
    const yaml = Array.from(
      { length: services },
      (_, index) => `  s${index + 1}:\n    image: tsfig/busybox:latest\n    command: sleep 3600\n    init: true\n`,
    );
    await writeFile(path.join(project, 'tsfig.yml'), `services:\n${yaml.join('')}`);
    runCli(['--progress', 'quiet', 'up', '-d'], { cwd: project, env, bin: clis[0]?.path ?? CLI });
    // the user's session and image (the session's first start is not timed)
    for (const args of [['info'], ['image', 'import', BUSYBOX_TAR, 'tsfig/busybox:latest']]) {
      const result = await user.tsfig(args);
      if (result.code !== 0)
        throw new Error(`rootless tsfig ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    }
    for (let round = 0; round < warmup + runs; round++) {
      const shift = round % rows.length;
      for (const row of [...rows.slice(shift), ...rows.slice(0, shift)]) {
        const sample = timed(row.argv, env, row.cwd);
        if (round >= warmup) samples.get(row.key)?.push(sample);
      }
    }
  } finally {
    downQuietly({ cwd: project, env, bin: clis[0]?.path ?? CLI });
    await bench.cleanup();
    await user.cleanup();
  }
  const loadAfter = loadavg();
  const floor = samples.get('node') ?? [];
  const floorWall = median(floor.map((s) => s.wallMs));
  const floorCpu = median(floor.map((s) => s.cpuMs));
  const table = rows.map((row) => {
    const list = samples.get(row.key) ?? [];
    const wall = stats(list.map((s) => s.wallMs));
    const cpu = median(list.map((s) => s.cpuMs));
    return `| ${row.label} | ${f0(wall.median)} | ${f0(wall.p10)} | ${f0(wall.p90)} | ${ratio(wall.median, floorWall)} | ${f0(cpu)} | ${ratio(cpu, floorCpu)} |`;
  });
  const medianOf = (key: string, what: keyof Sample): number => median((samples.get(key) ?? []).map((s) => s[what]));
  const targets = clis.flatMap((cli) => {
    const prefix = cli.label === '' ? '' : `${cli.label}:`;
    const tag = cli.label === '' ? '' : ` (${cli.label})`;
    const lines = (
      [
        ['version', '`tsfig --version`', 1.1],
        ['ps', `\`ps\` of ${services} services`, 1.5],
        ['run', '`container run --rm true`', 1.5],
      ] as const
    ).map(([key, what, target]) => {
      const wall = medianOf(`${prefix}${key}`, 'wallMs') / floorWall;
      const cpu = medianOf(`${prefix}${key}`, 'cpuMs') / floorCpu;
      const verdict = (x: number): string => (x <= target ? '**met**' : '**not met**');
      return `- ${what}${tag}: target <= ${target}x \`node -e 0\`: wall ${wall.toFixed(2)}x ${verdict(wall)}, CPU ${cpu.toFixed(2)}x ${verdict(cpu)}.`;
    });
    const modules = medianOf(`${prefix}ps-modules`, 'cpuMs');
    const ps = medianOf(`${prefix}ps`, 'cpuMs');
    if (Number.isFinite(modules)) {
      lines.push(
        `- where \`ps\`'s CPU time goes${tag}: Node's start-up ${f0(floorCpu)} ms, loading the CLI (read, compile with the code cache, the bundle's top level) ${f0(modules - floorCpu)} ms more, the command itself (its modules' set-up, project load, engine reads, output) ${f0(ps - modules)} ms.`,
      );
    }
    return lines;
  });
  const rootless = medianOf('rootless-run', 'cpuMs');
  // the user runs a copy of this tree's CLI (rootlessTree): compared with this tree's root row
  const own = clis.find((cli) => cli.path === CLI) ?? clis[0];
  const rootKey = own === undefined || own.label === '' ? 'run' : `${own.label}:run`;
  targets.push(
    `- \`container run --rm true\` as an ordinary user (rootless, no target of its own): wall ${(medianOf('rootless-run', 'wallMs') / floorWall).toFixed(2)}x, CPU ${(rootless / floorCpu).toFixed(2)}x \`node -e 0\`, ${(rootless / medianOf(rootKey, 'cpuMs')).toFixed(2)}x root's: the command starts twice (the launcher, then again in the user's session, src/cli/rootless-launch.ts).`,
  );
  const raw = rows.flatMap((row) => {
    const list = samples.get(row.key) ?? [];
    return [
      `${row.key} wall: ${list.map((s) => f1(s.wallMs)).join(' ')}`,
      `${row.key} cpu: ${list.map((s) => f1(s.cpuMs)).join(' ')}`,
    ];
  });
  const markdown = [
    `Command (as root, repo root): \`node --import tsx bench/cli-startup.ts --runs ${runs} --warmup ${warmup} --services ${services}${clis
      .filter((cli) => cli.label !== '')
      .map((cli) => ` --bin ${cli.label}=${path.relative(process.cwd(), cli.path)}`)
      .join('')} --write\``,
    '',
    `Commit \`${commitLabel()}\`, ${new Date().toISOString().slice(0, 19)}Z. Machine: ${machine()}; load average ${loadBefore} before, ${loadAfter} after (a shared machine: other work ran meanwhile; the rows were interleaved round-robin, order rotated each round, so the noise hits them alike).`,
    '',
    `${runs} runs per row after ${warmup} warm-up rounds. Wall: ms from just before to just after the command (bash's EPOCHREALTIME); CPU: user + system ms of the command (bash's \`times\`). \`ps\` lists a running ${services}-service project (busybox, \`sleep 3600\`, \`init: true\`) from its directory; every CLI uses the same temporary engine root.`,
    '',
    '| what | wall median | p10 | p90 | / node | CPU median | / node |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...table,
    '',
    ...targets,
    '',
    ...rawSamplesBlock(raw),
  ].join('\n');
  if (process.argv.includes('--write')) updateSection(SECTION, markdown);
  process.stdout.write(`${markdown}\n`);
}

await main();
