/**
 * Rootless beside root (issue #16): `up -d` and `down` of 10 busybox services (`sleep 3600`, `init: true`), as root
 * in a scratch engine root and as an ordinary user (scripts/rootless-user.sh's tsfig-rl, its own session and state),
 * alternating in the same run. Each command is timed from spawn to exit (Node's start-up, and rootless the launcher's
 * nsenter, included); that every container runs is checked after `up -d`, untimed. The user's session is started
 * before the first timed run (the first command of a session also makes the namespaces: reported on its own).
 *
 *   node --import tsx bench/rootless.ts [--services 10] [--runs 5] [--write]   (as root)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BUSYBOX_TAR,
  benchEngine,
  commitLabel,
  ensureBaseImage,
  loadavg,
  machine,
  median,
  option,
  requireRoot,
  runCli,
} from './harness.js';
import { REPO, updateSection } from './report.js';

const SECTION = 'Rootless: up -d and down of 10 services, root and rootless';
const USER = 'tsfig-rl';
const services = Number(option('--services', '10'));
const runs = Number(option('--runs', '5'));

function projectYaml(count: number): string {
  const lines = Array.from(
    { length: count },
    (_, index) => `  s${index + 1}:\n    image: tsfig/busybox:latest\n    command: sleep 3600\n    init: true\n`,
  );
  return `services:\n${lines.join('')}`;
}

requireRoot('run as root: it creates the rootless user and compares with root mode');
ensureBaseImage(BUSYBOX_TAR);
execFileSync('bash', [path.join(REPO, 'scripts', 'rootless-user.sh'), USER]);
const home = execFileSync('sh', ['-c', `eval echo ~${USER}`], { encoding: 'utf8' }).trim();

// The user runs a copy of the built CLI it can read (the tree may be under a root-only dir).
const tree = mkdtempSync('/tmp/tsfig-bench-rl-');
chmodSync(tree, 0o755);
for (const part of ['package.json', 'bin', 'dist/bundle', 'native/build/tsfig-runtime']) {
  cpSync(path.join(REPO, part), path.join(tree, part), { recursive: true });
}
const project = path.join(tree, 'project');
execFileSync('mkdir', ['-p', project]);
writeFileSync(path.join(project, 'compose.yaml'), projectYaml(services));
execFileSync('chmod', ['-R', 'a+rX', tree]);
execFileSync('chown', ['-R', `${USER}:`, project]);

function asUser(args: readonly string[]): number {
  const started = performance.now();
  const result = spawnSync(
    'setpriv',
    [
      `--reuid=${USER}`,
      `--regid=${USER}`,
      '--init-groups',
      'env',
      '-i',
      `HOME=${home}`,
      `USER=${USER}`,
      `PATH=${process.env.PATH ?? ''}`,
      'TSFIG_DNS_FORWARD=0',
      process.execPath,
      path.join(tree, 'bin', 'tsfig.js'),
      ...args,
    ],
    { cwd: project, encoding: 'utf8', timeout: 120_000 },
  );
  const ms = performance.now() - started;
  if (result.status !== 0)
    throw new Error(`rootless tsfig ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return ms;
}

const root = await benchEngine('rootless-cmp');
const samples: Record<string, number[]> = {
  'root up -d': [],
  'rootless up -d': [],
  'root down': [],
  'rootless down': [],
};
let sessionStartMs = NaN;
try {
  await root.importImage(BUSYBOX_TAR, 'tsfig/busybox:latest');
  const rootProject = path.join(root.dir, 'project');
  execFileSync('mkdir', ['-p', rootProject]);
  writeFileSync(path.join(rootProject, 'compose.yaml'), projectYaml(services));
  asUser(['system', 'shutdown', '--force']);
  sessionStartMs = asUser(['info']);
  asUser(['image', 'import', BUSYBOX_TAR, 'tsfig/busybox:latest']);
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? ['root', 'rootless'] : ['rootless', 'root'];
    for (const mode of order) {
      if (mode === 'root') {
        const opts = { env: root.env, cwd: rootProject };
        samples['root up -d']?.push(runCli(['--progress', 'quiet', 'up', '-d'], opts).ms);
        const ps = runCli(['ps', '-q', '--status', 'running'], opts).stdout.trim().split('\n').filter(Boolean);
        if (ps.length !== services) throw new Error(`root: ${ps.length} of ${services} running`);
        samples['root down']?.push(runCli(['--progress', 'quiet', 'down', '-t', '1'], opts).ms);
      } else {
        samples['rootless up -d']?.push(asUser(['--progress', 'quiet', 'up', '-d']));
        samples['rootless down']?.push(asUser(['--progress', 'quiet', 'down', '-t', '1']));
      }
    }
  }
} finally {
  try {
    asUser(['--progress', 'quiet', 'down', '-t', '1']);
    asUser(['image', 'rm', 'tsfig/busybox:latest']);
    asUser(['system', 'shutdown', '--force']);
  } catch (error) {
    process.stderr.write(`rootless clean-up: ${String(error)}\n`);
  }
  await root.cleanup();
  rmSync(tree, { recursive: true, force: true });
}

const fmt = (ms: number) => `${Math.round(ms)} ms`;
const row = (step: string) => {
  const r = median(samples[`root ${step}`] ?? []);
  const l = median(samples[`rootless ${step}`] ?? []);
  return `| ${step} | ${fmt(r)} | ${fmt(l)} | ${(l / r).toFixed(2)}x | ${(samples[`rootless ${step}`] ?? []).map((v) => Math.round(v)).join(', ')} |`;
};
const markdown = [
  `${services} busybox services, ${runs} runs each, alternating; medians from spawn to exit. Commit ${commitLabel()}, ${machine()}, load ${loadavg()}. Script: \`node --import tsx bench/rootless.ts\` (as root; the rootless side runs as ${USER}).`,
  '',
  '| step | root | rootless | rootless/root | rootless samples (ms) |',
  '| --- | --- | --- | --- | --- |',
  row('up -d'),
  row('down'),
  '',
  `Root samples: up -d ${(samples['root up -d'] ?? []).map(Math.round).join(', ')}; down ${(samples['root down'] ?? []).map(Math.round).join(', ')}. The first command of a rootless session (making the namespaces and attaching slirp4netns, then \`info\`): ${fmt(sessionStartMs)}.`,
].join('\n');
process.stdout.write(`${markdown}\n`);
if (process.argv.includes('--write')) updateSection(SECTION, markdown);
