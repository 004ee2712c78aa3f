/**
 * Rootless beside root (issue #16): `up -d` and `down` of 10 busybox services (`sleep 3600`, `init: true`), as root
 * in a scratch engine root and as an ordinary user (scripts/rootless-user.sh's tsfig-rl, its own session and state),
 * alternating in the same run. Each command is timed from spawn to exit (Node's start-up, and rootless the launcher's
 * nsenter, included); that every container runs is checked after `up -d`, untimed. The user's session is started
 * before the first timed run (the first command of a session also makes the namespaces: reported on its own).
 *
 *   node --import tsx bench/rootless.ts [--services 10] [--runs 5] [--write]   (as root)
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
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
import { updateSection } from './report.js';
import { ROOTLESS_USER, rootlessUser } from '../test/helpers/rootless-cli.js';

const SECTION = 'Rootless: up -d and down of 10 services, root and rootless';
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
// the ordinary user, a readable copy of the CLI, a HOME and session of this run's own (the tests' helper)
const user = rootlessUser();
writeFileSync(path.join(user.project, 'compose.yaml'), projectYaml(services));
execFileSync('chown', [String(user.uid), path.join(user.project, 'compose.yaml')]);

async function asUser(args: readonly string[]): Promise<number> {
  const started = performance.now();
  const result = await user.tsfig(args);
  const ms = performance.now() - started;
  if (result.code !== 0) throw new Error(`rootless tsfig ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
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
  sessionStartMs = await asUser(['info']);
  await asUser(['image', 'import', BUSYBOX_TAR, 'tsfig/busybox:latest']);
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
        samples['rootless up -d']?.push(await asUser(['--progress', 'quiet', 'up', '-d']));
        samples['rootless down']?.push(await asUser(['--progress', 'quiet', 'down', '-t', '1']));
      }
    }
  }
} finally {
  await asUser(['--progress', 'quiet', 'down', '-t', '1']).catch((error: unknown) => {
    process.stderr.write(`rootless clean-up: ${String(error)}\n`);
  });
  await user.cleanup();
  await root.cleanup();
}

const fmt = (ms: number) => `${Math.round(ms)} ms`;
const row = (step: string) => {
  const r = median(samples[`root ${step}`] ?? []);
  const l = median(samples[`rootless ${step}`] ?? []);
  return `| ${step} | ${fmt(r)} | ${fmt(l)} | ${(l / r).toFixed(2)}x | ${(samples[`rootless ${step}`] ?? []).map((v) => Math.round(v)).join(', ')} |`;
};
const markdown = [
  `${services} busybox services, ${runs} runs each, alternating; medians from spawn to exit. Commit ${commitLabel()}, ${machine()}, load ${loadavg()}. Script: \`node --import tsx bench/rootless.ts\` (as root; the rootless side runs as ${ROOTLESS_USER}).`,
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
