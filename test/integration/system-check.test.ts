/**
 * `tsfig system check [--repair]` (issue #20): each inconsistency a crash can leave is planted for real (dead
 * monitors, orphan monitors, cgroups, mounts, interfaces, nft table, netns files, staged and half-removed dirs,
 * volumes, layers, blobs), found by check (exit 1, nothing changed), fixed by --repair, and a check after finds nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { cgroupDirs } from '../../engine/containers/liveness.js';
import { shortId } from '../../engine/state/ids.js';
import { NEEDS_ROOT, eventually, suiteEngine } from '../helpers/engine.js';

const IMAGE = 'tsfig/busybox:latest';

function hex(): string {
  return Array.from({ length: 64 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

interface Finding {
  kind: string;
  object: string;
  problem: string;
  repaired?: string;
  failed?: string;
}

describe('tsfig system check (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('interfaces');

  const check = async (...args: string[]): Promise<{ code: number; findings: Finding[] }> => {
    const result = await t.cli(['system', 'check', '--format', 'json', ...args]);
    return {
      code: result.code,
      findings: result.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Finding),
    };
  };

  test('finds what a crash leaves, changes nothing, and --repair fixes all of it', async (ctx) => {
    const { paths } = t.engine;
    const undo: (() => void)[] = [];
    // Whatever the outcome, nothing planted stays on the host.
    ctx.after(async () => {
      for (const fn of undo.reverse()) {
        try {
          fn();
        } catch {
          // repaired already
        }
      }
      // When the test failed before its own --repair: what it planted (cgroups, monitors, links) goes all the same.
      await t.cli(['system', 'check', '--repair']).catch(() => undefined);
    });
    const clean = await check();
    assert.deepEqual(clean.findings, []);
    assert.equal(clean.code, 0);

    // A container whose monitor was killed: its record says running.
    const deadMonitor = await t.engine.containers.create({ image: IMAGE, cmd: ['sleep', '600'], init: true });
    await t.engine.containers.start(deadMonitor.id);
    const status = JSON.parse(await readFile(path.join(paths.containers, deadMonitor.id, 'status.json'), 'utf8')) as {
      monitor: number;
      pid: number;
    };
    process.kill(status.monitor, 'SIGKILL');
    await eventually(() => (alive(status.monitor) ? undefined : true));
    // A container whose record was deleted by hand: its monitor and cgroup have no record.
    const orphan = await t.engine.containers.create({ image: IMAGE, cmd: ['sleep', '600'], init: true });
    await t.engine.containers.start(orphan.id);
    const orphanStatus = JSON.parse(await readFile(path.join(paths.containers, orphan.id, 'status.json'), 'utf8')) as {
      monitor: number;
    };
    undo.push(() => process.kill(orphanStatus.monitor, 'SIGKILL'));
    undo.push(() =>
      execFileSync('sh', [
        '-c',
        `kill -9 $(cat /sys/fs/cgroup/pids/${paths.cgroupParent}/${shortId(orphan.id)}/cgroup.procs 2>/dev/null) 2>/dev/null; true`,
      ]),
    );
    await rm(path.join(paths.containers, orphan.id), { recursive: true, force: true });
    // A stage of a dead creator and a half-removed container.
    const staged = hex();
    await mkdir(path.join(paths.containers, `${staged}.creating`, 'upper'), { recursive: true });
    const removing = hex();
    await mkdir(path.join(paths.containers, `${removing}.removing`, 'upper', 'etc'), { recursive: true });
    // A cgroup of no container.
    const strayCgroup = hex();
    for (const dir of await cgroupDirs(`${paths.cgroupParent}/${shortId(strayCgroup)}`)) {
      await mkdir(dir, { recursive: true }).catch(() => undefined);
    }
    // A mount under the root.
    const mountPoint = path.join(paths.root, 'stray-mount');
    await mkdir(mountPoint, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'tsfig-test', mountPoint]);
    undo.push(() => execFileSync('umount', ['--lazy', mountPoint]));
    // A host interface with this root's prefix and alias, the root's nft table without networks, a netns file.
    const link = `${paths.hostPrefix}zz${hex().slice(0, 4)}`.slice(0, 15);
    execFileSync('ip', ['link', 'add', link, 'type', 'bridge']);
    undo.push(() => execFileSync('ip', ['link', 'del', link], { stdio: 'ignore' }));
    execFileSync('ip', ['link', 'set', link, 'alias', `tsfig:${paths.rootId}`]);
    const table = t.engine.networks.tableName;
    execFileSync('nft', ['add', 'table', 'ip', table]);
    undo.push(() => execFileSync('nft', ['delete', 'table', 'ip', table], { stdio: 'ignore' }));
    await mkdir(paths.netns, { recursive: true });
    const netnsFile = path.join(paths.netns, hex());
    await writeFile(netnsFile, '');
    // Volumes: an interrupted removal, an interrupted create, an anonymous volume of no container.
    await mkdir(path.join(paths.volumes, '.removing-gone-0001', '_data'), { recursive: true });
    await mkdir(path.join(paths.volumes, 'halfmade', '_data'), { recursive: true });
    const anonymous = await t.engine.volumes.create(undefined);
    // Images: a blob and a layer no image refers to, a half-made layer, a temp dir of a dead pull.
    const blob = path.join(paths.blobs, hex());
    await writeFile(blob, '{}');
    const halfLayer = path.join(paths.layers, hex());
    await mkdir(path.join(halfLayer, 'diff'), { recursive: true });
    const oldLayer = path.join(paths.layers, hex());
    await mkdir(path.join(oldLayer, 'diff'), { recursive: true });
    await writeFile(path.join(oldLayer, 'layer.json'), '{}');
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    await utimes(path.join(oldLayer, 'layer.json'), twoHoursAgo, twoHoursAgo);
    const deadTmp = path.join(paths.root, 'tmp', 'pull-4194305.1-abcdef');
    await mkdir(deadTmp, { recursive: true });

    const found = await check();
    assert.equal(found.code, 1);
    const has = (kind: string, object: RegExp | string, problem?: RegExp): void => {
      const match = found.findings.find(
        (finding) =>
          finding.kind === kind &&
          (typeof object === 'string' ? finding.object.includes(object) : object.test(finding.object)) &&
          (problem === undefined || problem.test(finding.problem)),
      );
      assert.ok(match !== undefined, `no ${kind} finding for ${String(object)}: ${JSON.stringify(found.findings)}`);
    };
    has('container', shortId(deadMonitor.id), /monitor .* is gone/);
    has('process', `pid ${orphanStatus.monitor}`);
    has('cgroup', shortId(orphan.id));
    has('cgroup', shortId(strayCgroup));
    has('container', shortId(staged), /creator that is gone/);
    has('container', shortId(removing), /half removed/);
    has('mount', mountPoint);
    has('link', link);
    has('firewall', table);
    has('netns', netnsFile);
    has('volume', '.removing-gone-0001');
    has('volume', 'halfmade');
    has('volume', anonymous.Name);
    has('image', path.basename(blob));
    has('image', path.basename(halfLayer), /half-made/);
    has('image', path.basename(oldLayer), /no image uses/);
    has('image', path.basename(deadTmp));
    // A check only looks.
    assert.ok(alive(orphanStatus.monitor));
    assert.ok(existsSync(path.join(paths.containers, `${removing}.removing`)));
    assert.ok(existsSync(path.join(paths.containers, `${staged}.creating`)));
    assert.ok(existsSync(blob) && existsSync(netnsFile));

    const repaired = await check('--repair');
    assert.equal(repaired.code, 1);
    assert.deepEqual(
      repaired.findings.filter((finding) => finding.repaired === undefined || finding.failed !== undefined),
      [],
    );
    const after = await check();
    assert.deepEqual(after.findings, []);
    assert.equal(after.code, 0);
    // The host agrees.
    assert.equal(alive(orphanStatus.monitor), false, 'the orphan monitor still runs');
    assert.equal(alive(status.pid), false, "the dead monitor's container process still runs");
    for (const dir of await cgroupDirs(paths.cgroupParent)) {
      const left = existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()) : [];
      assert.deepEqual(
        left.map((e) => e.name),
        [],
        `cgroups left in ${dir}`,
      );
    }
    assert.doesNotMatch(readFileSync('/proc/mounts', 'utf8'), new RegExp(mountPoint));
    assert.doesNotMatch(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }), new RegExp(link));
    assert.doesNotMatch(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }), new RegExp(`${table}\\b`));
    for (const gone of [blob, halfLayer, oldLayer, deadTmp, netnsFile]) assert.equal(existsSync(gone), false, gone);
    assert.deepEqual(
      readdirSync(paths.containers).filter((entry) => entry.includes('.')),
      [],
    );
    const volumes = (await t.engine.volumes.list()).volumes.map((volume) => volume.Name);
    assert.deepEqual(volumes, ['halfmade']);
    await t.engine.volumes.remove('halfmade', { usersOf: () => Promise.resolve([]) });
    await t.engine.containers.remove(deadMonitor.id, { force: true });
    assert.equal((await check()).code, 0);
  });
});
