/**
 * `tsfig container restart|pause|unpause|top|prune|stats|cp` through the CLI against a test root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, REPO, eventually, suiteEngine } from '../helpers/engine.js';

const BUSYBOX = 'tsfig/busybox:latest';
const SLOW_MS = 60_000;

describe('container verbs (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('root');

  async function cli(...args: string[]): Promise<string> {
    const result = await t.cli(args);
    assert.equal(result.code, 0, `tsfig ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  }

  async function running(ref: string): Promise<boolean> {
    const record = await t.engine.containers.get(ref);
    return (await t.engine.containers.state(record)).status === 'running';
  }

  /** A running container whose root has symlinks to the container's / and /etc, and a marker file. */
  async function plantedContainer(name: string): Promise<void> {
    await cli(
      'container',
      'run',
      '-d',
      '--name',
      name,
      BUSYBOX,
      'sh',
      '-c',
      'ln -s / /hostroot; ln -s /etc /etclink; echo container-own > /etc/marker; touch /ready; sleep 600',
    );
    await eventually(
      async () => ((await t.cli(['container', 'exec', name, 'test', '-e', '/ready'])).code === 0 ? true : undefined),
      SLOW_MS,
    );
  }

  test('unknown containers: exit 1 with a clear message, no stack', async () => {
    for (const args of [
      ['restart', 'nope'],
      ['pause', 'nope'],
      ['unpause', 'nope'],
      ['top', 'nope'],
      ['stats', '--no-stream', 'nope'],
      ['cp', 'nope:/etc/hostname', path.join(t.dir, 'x')],
    ]) {
      const result = await t.cli(['container', ...args]);
      assert.equal(result.code, 1, args.join(' '));
      assert.match(result.stderr, /error: no such container: nope/);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    }
    assert.ok(!existsSync(path.join(t.dir, 'x')));
  });

  test('bad usage: exit 64', async () => {
    for (const args of [
      ['cp', '/a', '/b'],
      ['cp', 'a:/x', 'b:/y'],
      ['prune', '-f', '--filter', 'bogus=1'],
      ['restart', '-t', 'soon', 'x'],
    ]) {
      assert.equal((await t.cli(['container', ...args])).code, 64, args.join(' '));
    }
  });

  test('pause, unpause, top, stats', async () => {
    await cli('container', 'run', '-d', '--name', 'pz', '-m', '64m', BUSYBOX, 'sleep', '600');
    assert.equal(await cli('container', 'pause', 'pz'), 'pz');
    assert.match(await cli('container', 'ls'), /\(Paused\)/);
    const again = await t.cli(['container', 'pause', 'pz']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already paused/);
    assert.equal(await cli('container', 'unpause', 'pz'), 'pz');
    assert.equal((await t.cli(['container', 'unpause', 'pz'])).code, 1);

    const top = await cli('container', 'top', 'pz');
    assert.match(top.split('\n')[0] ?? '', /UID\s+PID\s+PPID/);
    assert.match(top, /sleep 600/);
    assert.equal(top.split('\n').length, 2, top);
    const custom = await cli('container', 'top', 'pz', '-o', 'pid,comm');
    assert.match(custom, /PID\s+COMMAND\n\s*\d+\s+sleep/);

    const json = (await cli('container', 'stats', '--no-stream', '--format', 'json', 'pz'))
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>);
    assert.equal(json.length, 1);
    assert.equal(json[0]?.Name, 'pz');
    assert.match(json[0]?.CPUPerc ?? '', /^\d+\.\d\d%$/);
    assert.match(json[0]?.MemUsage ?? '', / \/ 64MiB$/);
    assert.equal(json[0]?.PIDs, '1');
    const table = await cli('container', 'stats', '--no-stream');
    assert.match(table, /CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT/);
    assert.match(table, /\bpz\b/);

    await cli('container', 'stop', '-t', '1', 'pz');
    assert.equal((await t.cli(['container', 'top', 'pz'])).code, 1);
    assert.equal((await t.cli(['container', 'pause', 'pz'])).code, 1);
    await cli('container', 'rm', 'pz');
  });

  test('restart: a stopped container runs again; a run -d --rm container is kept and runs again', async () => {
    const id = await cli('container', 'create', '--name', 'rs', BUSYBOX, 'sleep', '600');
    assert.equal(await cli('container', 'restart', 'rs'), 'rs');
    assert.ok(await running(id));
    const before = (await t.engine.containers.inspect(id)) as { State: { StartedAt: string } };
    await cli('container', 'restart', '-t', '1', 'rs');
    const after = (await t.engine.containers.inspect(id)) as { State: { StartedAt: string } };
    assert.ok(await running(id));
    assert.notEqual(after.State.StartedAt, before.State.StartedAt);
    await cli('container', 'rm', '-f', 'rs');

    const rm = await cli('container', 'run', '-d', '--rm', '--name', 'rmr', BUSYBOX, 'sleep', '600');
    assert.equal(await cli('container', 'restart', '-t', '1', 'rmr'), 'rmr');
    assert.ok(await running(rm));
    // the old run's cleanup (the monitor's exit command) has come and gone: the container is still there, running
    await eventually(() => {
      const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
      return ps.split('\n').some((line) => line.includes('cleanup') && line.includes(rm)) ? undefined : true;
    }, SLOW_MS);
    assert.ok(await running(rm));
    // and it is still removed when it stops for good
    await cli('container', 'stop', '-t', '1', 'rmr');
    await eventually(
      async () => ((await t.engine.containers.list({ all: true })).some((c) => c.id === rm) ? undefined : true),
      SLOW_MS,
    );
  });

  test('prune: removes exactly the stopped containers (and honours label filters); refuses without -f off a TTY', async () => {
    const keep = await cli('container', 'run', '-d', '--name', 'keep', BUSYBOX, 'sleep', '600');
    const created = await cli('container', 'create', '--name', 'made', BUSYBOX, 'true');
    await cli('container', 'run', '--name', 'done', '-l', 'tier=x', BUSYBOX, 'sh', '-c', 'echo hi > /f');
    const done = (await t.engine.containers.get('done')).id;
    const refused = await t.cli(['container', 'prune']);
    assert.equal(refused.code, 64);
    assert.match(refused.stderr, /-f/);
    assert.equal((await t.engine.containers.list({ all: true })).length, 3);

    const filtered = await cli('container', 'prune', '-f', '--filter', 'label=tier=x');
    assert.equal(filtered, `Deleted Containers:\n${done}\n\nTotal reclaimed space: ${filtered.split(': ').at(-1)}`);
    assert.match(filtered, /Total reclaimed space: \d+(\.\d+)?k?B$/);

    const all = await cli('container', 'prune', '-f');
    assert.equal(all.split('\n')[0], 'Deleted Containers:');
    assert.deepEqual(all.split('\n').slice(1, -2), [created]);
    assert.deepEqual(
      (await t.engine.containers.list({ all: true })).map((summary) => summary.id),
      [keep],
    );
    assert.equal(await cli('container', 'prune', '-f'), 'Total reclaimed space: 0B');
    await cli('container', 'rm', '-f', 'keep');
  });

  test('cp with a stopped container reaches its volumes and bind mounts, as docker mounts them for the copy', async () => {
    const bind = path.join(t.dir, 'cp-bind');
    await mkdir(bind);
    await cli('volume', 'create', 'cpvol');
    const id = await cli(
      'container',
      'create',
      '--name',
      'cpv',
      '-v',
      'cpvol:/data',
      '-v',
      `${bind}:/bound`,
      '-v',
      `${bind}:/robound:ro`,
      BUSYBOX,
      'sh',
      '-c',
      'cat /data/in.txt /data/sub/deep.txt /bound/b.txt; ls /data /bound',
    );
    const src = path.join(t.dir, 'cp-src');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await writeFile(path.join(src, 'in.txt'), 'into-volume\n');
    await writeFile(path.join(src, 'sub', 'deep.txt'), 'deep\n');
    await writeFile(path.join(src, 'b.txt'), 'into-bind\n');
    // never started: into the volume and the bind mount, a file and a directory
    await cli('container', 'cp', path.join(src, 'in.txt'), 'cpv:/data/in.txt');
    await cli('container', 'cp', path.join(src, 'sub'), 'cpv:/data/');
    await cli('container', 'cp', path.join(src, 'b.txt'), 'cpv:/bound/');
    assert.equal(readFileSync(path.join(bind, 'b.txt'), 'utf8'), 'into-bind\n');
    // a read-only mount refuses, naming it, and nothing is written
    const ro = await t.cli(['container', 'cp', path.join(src, 'in.txt'), 'cpv:/robound/x.txt']);
    assert.equal(ro.code, 1, ro.stderr);
    assert.match(ro.stderr, /read-only mount/);
    assert.ok(!existsSync(path.join(bind, 'x.txt')));
    // what the container sees once started is what was copied
    await cli('container', 'start', 'cpv');
    assert.equal(await cli('container', 'wait', 'cpv'), '0');
    const logs = await cli('container', 'logs', 'cpv');
    assert.match(logs, /into-volume\ndeep\ninto-bind/);
    // and back out of the stopped container: from the volume, not from the image's mount point
    const out = path.join(t.dir, 'cp-out');
    await mkdir(out);
    await cli('container', 'cp', 'cpv:/data/in.txt', path.join(out, 'in.txt'));
    assert.equal(await readFile(path.join(out, 'in.txt'), 'utf8'), 'into-volume\n');
    await cli('container', 'rm', id);
    await cli('volume', 'rm', 'cpvol');
  });

  for (const stopped of [false, true]) {
    test(`cp ${stopped ? 'with a stopped' : 'with a running'} container: both directions, docker's rules, confined`, async () => {
      const name = stopped ? 'cps' : 'cpr';
      await plantedContainer(name);
      if (stopped) await cli('container', 'stop', '-t', '1', name);
      const host = path.join(t.dir, `host-${name}`);
      await mkdir(host);
      const hostnameBefore = readFileSync('/etc/hostname', 'utf8');

      // container → host: a file through the container's /etc symlink is the container's own
      await cli('container', 'cp', `${name}:/etclink/marker`, path.join(host, 'm1'));
      assert.equal(await readFile(path.join(host, 'm1'), 'utf8'), 'container-own\n');
      // an absolute symlink to / resolves to the container's root, never the host's
      await cli('container', 'cp', `${name}:/hostroot/etc/marker`, path.join(host, 'm2'));
      assert.equal(await readFile(path.join(host, 'm2'), 'utf8'), 'container-own\n');
      await t.cli(['container', 'cp', `${name}:/hostroot/etc/passwd`, path.join(host, 'pw')]);
      if (existsSync(path.join(host, 'pw'))) {
        assert.notEqual(readFileSync(path.join(host, 'pw'), 'utf8'), readFileSync('/etc/passwd', 'utf8'));
      }
      // the symlink itself is copied as a symlink (no -L), into an existing directory under its name
      await cli('container', 'cp', `${name}:/etclink`, host);
      assert.equal(execFileSync('readlink', [path.join(host, 'etclink')], { encoding: 'utf8' }).trim(), '/etc');
      // a missing source
      const missing = await t.cli(['container', 'cp', `${name}:/nope`, path.join(host, 'n')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /could not find the file \/nope/);

      // host → container: through symlinks in the container, written in the container's own /etc
      const file = path.join(host, 'planted');
      await writeFile(file, 'from-host\n');
      await cli('container', 'cp', file, `${name}:/etclink/`);
      await cli('container', 'cp', file, `${name}:/hostroot/etc/planted2`);
      assert.ok(!existsSync('/etc/planted') && !existsSync('/etc/planted2'), 'a host file was written');
      assert.equal(readFileSync('/etc/hostname', 'utf8'), hostnameBefore);
      // a tree into a new directory (created), its contents with dir/.
      const tree = path.join(host, 'tree');
      await mkdir(path.join(tree, 'sub'), { recursive: true });
      await writeFile(path.join(tree, 'sub', 'leaf'), 'leaf\n');
      await cli('container', 'cp', tree, `${name}:/newdir`);
      await cli('container', 'cp', `${tree}/.`, `${name}:/etc`);
      // a file to a missing directory (trailing slash) and a directory over a file fail, nothing written
      assert.equal((await t.cli(['container', 'cp', file, `${name}:/missing/`])).code, 1);
      assert.equal((await t.cli(['container', 'cp', tree, `${name}:/etc/marker`])).code, 1);
      // a tar stream on stdin whose entries try to leave the destination is refused
      const evil = execFileSync('tar', ['c', '-P', '--transform', 's,^,../../,', '-C', host, 'planted']);
      const refused = await t.cli(['container', 'cp', '-', `${name}:/tmp`], { input: evil.toString('latin1') });
      assert.notEqual(refused.code, 0);
      // a tar stream out: the tree under its base name
      const out = execFileSync(
        'sh',
        ['-c', `node ${path.join(REPO, 'bin', 'tsfig.js')} container cp ${name}:/newdir - | tar t`],
        { env: t.env, encoding: 'utf8' },
      );
      assert.deepEqual(out.trim().split('\n').sort(), ['newdir/', 'newdir/sub/', 'newdir/sub/leaf']);

      if (stopped) await cli('container', 'start', name);
      await eventually(async () => ((await running(name)) ? true : undefined), SLOW_MS);
      const cat = async (file: string) => (await t.cli(['container', 'exec', name, 'cat', file])).stdout;
      assert.equal(await cat('/etc/planted'), 'from-host\n');
      assert.equal(await cat('/etc/planted2'), 'from-host\n');
      assert.equal(await cat('/newdir/sub/leaf'), 'leaf\n');
      assert.equal(await cat('/etc/sub/leaf'), 'leaf\n');
      assert.equal(await cat('/etc/marker'), 'container-own\n');
      assert.equal((await t.cli(['container', 'exec', name, 'test', '-e', '/missing'])).code, 1);
      if (!stopped) {
        // the copy left the container running (thawed)
        assert.match(await cli('container', 'ls'), new RegExp(`Up .*${name}`));
        assert.doesNotMatch(await cli('container', 'ls'), /Paused/);
      }
      await cli('container', 'rm', '-f', name);
    });
  }
});
