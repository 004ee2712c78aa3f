/**
 * Registry pull timings (issue 8): the Debian base image (/var/cache/tsfig/debian-bookworm.tar, ~190 MB unpacked)
 * plus three layers of 8 MiB of random data, pushed to a `docker-registry` (distribution 2.8) run on a free
 * 127.0.0.1 port, then pulled: cold (a fresh engine root each run; download, verify and unpack run concurrently) and
 * with every layer present; compared in the same run, interleaved, with `skopeo copy docker://… dir:…` (download and
 * verify only) when skopeo is installed. Targets (issue 18): cold within 2x of skopeo; under 100 ms when everything
 * is present. Wall and CPU times (this process and its children: the unpackers, skopeo) are written. Needs root;
 * everything is removed at the end.
 *
 * Fairness: both write into the same file system (os.tmpdir()); the pairs alternate who goes first; and what a run
 * wrote is removed only after the last run (on a file system mounted with `discard`, creating files right after a
 * large removal costs several times the system time, and that cost would land on whichever run came next).
 * `--remove-between` removes each run's output right after it, as this bench did before.
 *
 *   sudo node --import tsx bench/registry.ts [--runs 3] [--remove-between] [--write]
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import http from 'node:http';
import os, { loadavg } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { chainIds } from '../engine/images/layer.js';
import { packDirectory } from '../engine/layers/pack.js';
import { createEngine } from '../engine/index.js';
import { CredentialStore, RegistryClient, pullImage, pushImage } from '../engine/registry/index.js';
import { DEBIAN_TAR, freePort, headCommit, machine, nearestRank, option, requireRoot } from './harness.js';
import { unpackFeatures } from '../engine/images/layer.js';
import { updateSection } from './report.js';

/** The upper median for an even count, as in earlier sections. */
const median = (values: number[]): number => nearestRank(values, 0.5);

function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

const loadAtStart = loadavg()[0]?.toFixed(1) ?? '?';

async function main(): Promise<void> {
  requireRoot('run as root: sudo node --import tsx bench/registry.ts');
  if (!existsSync(DEBIAN_TAR)) throw new Error(`${DEBIAN_TAR} is missing (scripts/setup.sh fetches it)`);
  const runs = Number(option('--runs', '3'));
  const removeBetween = process.argv.includes('--remove-between');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsfig-bench-registry-'));
  const port = await freePort();
  const domain = `127.0.0.1:${port}`;
  await fs.writeFile(
    path.join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/registry\nhttp:\n  addr: ${domain}\n`,
  );
  const registry = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' });
  const exited = new Promise((resolve) => registry.once('exit', resolve));
  const clients: RegistryClient[] = [];
  const newClient = (): RegistryClient => {
    const client = new RegistryClient({ credentials: new CredentialStore({ file: path.join(dir, 'none.json') }) });
    clients.push(client);
    return client;
  };
  try {
    for (let i = 0; ; i++) {
      const up = await new Promise<boolean>((resolve) =>
        http
          .get(`http://${domain}/v2/`, (res) => {
            res.resume();
            resolve(true);
          })
          .on('error', () => resolve(false)),
      );
      if (up) break;
      if (i > 300) throw new Error('docker-registry did not start');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    // the image: Debian + 3 layers of random data
    const source = createEngine({ env: { ...process.env, TSFIG_ROOT: path.join(dir, 'source') } });
    const base = await source.images.importRootfs({ kind: 'file', path: DEBIAN_TAR });
    const diffIds = [...base.diffIds];
    for (let i = 0; i < 3; i++) {
      const content = path.join(dir, `layer-${i}`);
      await fs.mkdir(path.join(content, 'data'), { recursive: true });
      for (let f = 0; f < 8; f++)
        await fs.writeFile(path.join(content, 'data', `blob-${i}-${f}`), randomBytes(1 << 20));
      const parent = chainIds(diffIds).at(-1) ?? null;
      const layer = await source.images.addLayer(packDirectory(content), parent);
      diffIds.push(layer.diffId);
    }
    const config = { ...base.config, rootfs: { type: 'layers' as const, diff_ids: diffIds }, history: [] };
    const ref = `${domain}/bench/debian:big`;
    const image = await source.images.addImage(Buffer.from(JSON.stringify(config)), { reference: ref });
    let t = performance.now();
    const pushed = await pushImage(newClient(), source.images, ref);
    const pushMs = performance.now() - t;
    const unpacked = image.size;
    let compressed = 0;
    for (const file of await fs.readdir(path.join(dir, 'source', 'registry', 'blobs'))) {
      compressed += (await fs.stat(path.join(dir, 'source', 'registry', 'blobs', file))).size;
    }
    log(
      `image ${ref}: ${diffIds.length} layers, ${(unpacked / 1e6).toFixed(0)} MB unpacked, ${(compressed / 1e6).toFixed(0)} MB compressed; push (with gzip) ${fmt(pushMs)}`,
    );

    const hasSkopeo = (() => {
      try {
        execFileSync('sh', ['-c', 'command -v skopeo'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    })();
    // interleaved: tsfig cold, skopeo, tsfig cold, skopeo... (the machine is shared: the pairs see the same load)
    const cold: number[] = [];
    const coldCpu: number[] = [];
    /** Of coldCpu: this process (Node), the unpackers' user and system time (system: mostly creating the files). */
    const coldSplit: string[] = [];
    const warm: number[] = [];
    const verifiedAt: number[] = [];
    const skopeo: number[] = [];
    const skopeoCpu: number[] = [];
    const features = await unpackFeatures();
    log(
      `unpacker: gunzip ${features.gzip ?? 'in Node (zlib)'}, DiffID and tar-split ${features.sha256 ? 'in the unpacker' : 'in Node'}; ` +
        `order: pairs alternate (tsfig first in odd pairs, skopeo first in even ones); outputs removed ${removeBetween ? 'after each run' : 'after the last run'}`,
    );
    const outputs: string[] = [];
    const removeLater = async (dir: string): Promise<void> => {
      if (removeBetween) await fs.rm(dir, { recursive: true, force: true });
      else outputs.push(dir);
    };
    const pullCold = async (run: number): Promise<void> => {
      const root = path.join(dir, `pull-${run}`);
      const engine = createEngine({ env: { ...process.env, TSFIG_ROOT: root } });
      const cpu0 = cpuNow();
      const parts0 = cpuParts();
      t = performance.now();
      let verified = 0;
      const result = await pullImage(newClient(), engine.images, ref, {
        onEvent: (event) => {
          if (event.type === 'layer' && event.status === 'verified') verified = performance.now() - t;
        },
      });
      cold.push(performance.now() - t);
      coldCpu.push(cpuNow() - cpu0);
      const parts = cpuParts().map((v, i) => v - (parts0[i] ?? 0));
      coldSplit.push(`${fmt((parts[0] ?? 0) + (parts[1] ?? 0))} / ${fmt(parts[2] ?? 0)} / ${fmt(parts[3] ?? 0)}`);
      verifiedAt.push(verified);
      if (result.digest !== pushed.digest) throw new Error('pulled another digest');
      for (let i = 0; i < 5; i++) {
        t = performance.now();
        const again = await pullImage(newClient(), engine.images, ref);
        warm.push(performance.now() - t);
        if (again.downloaded) throw new Error('a warm pull downloaded');
      }
      await removeLater(root);
    };
    const skopeoCopy = async (run: number): Promise<void> => {
      const out = path.join(dir, `skopeo-${run}`);
      const skopeoCpu0 = cpuNow();
      t = performance.now();
      execFileSync('skopeo', [
        '--insecure-policy',
        'copy',
        '-q',
        '--src-tls-verify=false',
        `docker://${ref}`,
        `dir:${out}`,
      ]);
      skopeo.push(performance.now() - t);
      skopeoCpu.push(cpuNow() - skopeoCpu0);
      await removeLater(out);
    };
    for (let run = 0; run < runs; run++) {
      if (run % 2 === 1 && hasSkopeo) await skopeoCopy(run);
      await pullCold(run);
      if (run % 2 === 0 && hasSkopeo) await skopeoCopy(run);
    }
    for (const output of outputs) await fs.rm(output, { recursive: true, force: true });
    const list = (values: number[]): string => values.map(fmt).join(', ');
    log(
      `pull, cold (download + verify + unpack, concurrently), median of ${runs}: ${fmt(median(cold))}  [${list(cold)}]`,
    );
    log(`  last layer verified at: [${list(verifiedAt)}]; CPU (tsfig + its children): [${list(coldCpu)}]`);
    log(`  of which Node / unpackers' user / unpackers' system: [${coldSplit.join('; ')}]`);
    log(`pull, every layer present, median of ${warm.length}: ${fmt(median(warm))} (target < 100 ms)`);
    if (hasSkopeo) {
      log(`skopeo copy to dir (download + verify), median of ${runs}: ${fmt(median(skopeo))}  [${list(skopeo)}]`);
      log(`  CPU (skopeo): [${list(skopeoCpu)}]`);
      const ratios = cold.map((ms, i) => ms / (skopeo[i] ?? NaN));
      log(
        `whole cold pull / skopeo: ${(median(cold) / median(skopeo)).toFixed(2)}x (per pair: ${ratios.map((r) => `${r.toFixed(2)}x`).join(', ')}; target <= 2x); CPU: ${(median(coldCpu) / median(skopeoCpu)).toFixed(2)}x`,
      );
    } else {
      log('skopeo: not installed (apt-get install skopeo) - no comparison');
    }
  } finally {
    for (const client of clients) client.close();
    registry.kill('SIGTERM');
    await exited;
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** This process's user and system time, its waited-for children's user and system time, in ms. */
function cpuParts(): number[] {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return [11, 12, 13, 14].map((i) => Number(fields[i] ?? 0) * 10); // USER_HZ = 100
}

/** CPU time of this process and its waited-for children (skopeo, the native unpackers), in ms. */
function cpuNow(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  return ticks * 10; // USER_HZ = 100
}

/** Everything printed, for the BENCHMARKS.md section (`--write`). */
const printed: string[] = [];
function log(text: string): void {
  printed.push(text);
  console.log(text);
}

await main();
if (process.argv.includes('--write')) {
  const commit = headCommit();
  updateSection(
    'Registry: pull from a loopback registry',
    [
      `Command: \`sudo node --import tsx bench/registry.ts ${process.argv.slice(2).join(' ')}\` — commit ${commit}, ${new Date().toISOString().slice(0, 10)}; ${machine()}; load average ${loadAtStart} at the start, ${loadavg()[0]?.toFixed(1) ?? '?'} at the end (the machine's 2 cores are shared with other sessions).`,
      '',
      '```text',
      ...printed,
      '```',
    ].join('\n'),
  );
}
