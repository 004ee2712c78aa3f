/**
 * Engine networking figures (root only): create a network, attach N = 1, 10, 50 sandboxes, and re-apply the nft
 * ruleset of 50 containers with 100 published ports (bound to 127.0.0.1, so nothing is exposed).
 *
 *   node --import tsx bench/network.ts            # print
 *   node --import tsx bench/network.ts --write    # also replace the "engine networking" section of BENCHMARKS.md
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NetworkManager } from '../engine/network/index.js';
import { enginePaths } from '../engine/state/paths.js';
import { headCommit, nearestRank, stats as allStats } from './harness.js';
import { updateSection } from './report.js';

/** Nearest-rank median and p90 (no interpolation, as in earlier sections), mean and max. */
function stats(samples: readonly number[]): { median: number; mean: number; p90: number; max: number } {
  const { mean, max } = allStats(samples);
  return { median: nearestRank(samples, 0.5), mean, p90: nearestRank(samples, 0.9), max };
}

const ms = (x: number): string => `${x.toFixed(1)} ms`;

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/network.ts needs root');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsfig-bench-net-'));
  const paths = enginePaths(path.join(dir, 'root'), { TSFIG_RUN_ROOT: path.join(dir, 'run') });
  const manager = new NetworkManager(paths);
  const rows: string[] = [];
  let counter = 0;
  const load = os.loadavg()[0];
  try {
    for (const n of [1, 10, 50]) {
      const name = `bench${n}`;
      const [, createMs] = await timed(() => manager.create(name));
      const sandboxTimes: number[] = [];
      const attachTimes: number[] = [];
      const ids: string[] = [];
      const [, totalMs] = await timed(async () => {
        for (let i = 0; i < n; i++) {
          const id = `bench${counter++}`;
          ids.push(id);
          sandboxTimes.push((await timed(() => manager.createSandbox(id)))[1]);
          attachTimes.push((await timed(() => manager.attach(id, name)))[1]);
        }
      });
      const a = stats(attachTimes);
      const s = stats(sandboxTimes);
      rows.push(
        `| ${n} | ${ms(createMs)} | ${ms(s.median)} | ${ms(a.median)} | ${ms(a.mean)} | ${ms(a.p90)} | ${ms(totalMs)} |`,
      );
      for (const id of ids) await manager.removeSandbox(id);
      await manager.remove(name);
    }

    await manager.create('ports');
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const id = `benchp${i}`;
      ids.push(id);
      await manager.createSandbox(id);
      await manager.attach(id, 'ports', { ports: ['127.0.0.1::80', '127.0.0.1::81/udp'] });
    }
    const networks = await manager.list();
    const renderTimes: number[] = [];
    const applyTimes: number[] = [];
    let text = '';
    for (let i = 0; i < 20; i++) {
      const start = performance.now();
      text = manager.renderFirewall(networks);
      renderTimes.push(performance.now() - start);
      applyTimes.push((await timed(() => manager.applyFirewall(networks)))[1]);
    }
    const published = (await manager.publishedPorts()).length;
    for (const id of ids) await manager.removeSandbox(id);
    await manager.remove('ports');

    const commit = headCommit();
    const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
    const r = stats(renderTimes);
    const ap = stats(applyTimes);
    const markdown = [
      `Command: \`node --import tsx bench/network.ts\` — commit ${commit}, ${os.cpus().length} × ${cpu}, kernel ${os.release()}, ${new Date().toISOString().slice(0, 10)}, load average ${load?.toFixed(1) ?? '?'} at start.`,
      '',
      'Attach = allocate an address under the lock, persist it, create the veth pair into the sandbox, configure it',
      '(two `ip -batch` processes). Sandbox = `unshare --net=<file> ip link set lo up`.',
      '',
      '| N sandboxes | network create | sandbox (median) | attach (median) | attach (mean) | attach (p90) | N × (sandbox + attach) |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `Ruleset of 50 containers and ${published} published ports (${text.split('\n').length} lines), 20 runs: render`,
      `${ms(r.median)} median; re-apply in one \`nft -f\` transaction ${ms(ap.median)} median, ${ms(ap.p90)} p90, ${ms(ap.max)} max.`,
      '',
      'Targets (issue 3): attaching a container adds under 10 ms; the re-apply under 50 ms.',
    ].join('\n');
    process.stdout.write(`${markdown}\n`);
    if (process.argv.includes('--write')) updateSection('Engine networking', markdown);
  } finally {
    for (const n of await manager.list()) {
      for (const id of Object.keys(n.endpoints)) await manager.removeSandbox(id).catch(() => undefined);
      await manager.remove(n.id).catch(() => undefined);
    }
    await manager.reconcile({ liveContainers: new Set() }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
