import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import type { ContainerMount } from '../../engine/containers/types.js';
import { isEngineError } from '../../engine/errors.js';
import { enginePaths, type EnginePaths } from '../../engine/state/paths.js';
import {
  parseTmpfsFlag,
  parseVolumeFlag,
  resolveMounts,
  type MountSpec,
  type ResolvedMount,
  type VolumesFromSource,
} from '../../engine/volumes/mounts.js';
import { mountsUnder, VolumeStore } from '../../engine/volumes/store.js';
import { containerRecordUsers } from '../../engine/volumes/users.js';
import { registerVolumeCommands } from '../../src/cli/commands/volume.js';
import { exitCodeOf } from '../../src/cli/exit-codes.js';
import { leftovers, makeTestEngine, type TestEngine } from '../helpers/engine.js';

const isRoot = process.getuid?.() === 0;

/** Runs `tsfig volume ...` in-process against the temp root; returns stdout, stderr and the exit code. */
async function cli(
  paths: EnginePaths,
  args: string[],
  confirm = false,
): Promise<{ out: string; err: string; code: number; error?: unknown }> {
  let out = '';
  let err = '';
  const program = new Command('tsfig').exitOverride();
  program.configureOutput({ writeOut: (text) => (out += text), writeErr: (text) => (err += text) });
  registerVolumeCommands(program, {
    paths: () => paths,
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (err += text) },
    confirm: () => Promise.resolve(confirm),
  });
  try {
    await program.parseAsync(args, { from: 'user' });
    return { out, err, code: exitCodeOf(program) };
  } catch (error) {
    return { out, err, code: 1, error };
  }
}

/** A container record as the container module writes it: `mounts[].volumeName` is what volume users are read from. */
async function writeContainerRecord(paths: EnginePaths, id: string, name: string, volumes: string[]): Promise<void> {
  const dir = path.join(paths.containers, id);
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'container.json'),
    JSON.stringify({
      v: 1,
      id,
      name,
      mounts: volumes.map((volumeName) => ({
        destination: `/${volumeName}`,
        type: 'bind',
        source: path.join(paths.volumes, volumeName, '_data'),
        options: ['rbind', 'rprivate'],
        copy: true,
        volumeName,
      })),
    }),
  );
}

describe('volumes (engine store and tsfig volume commands)', { skip: isRoot ? false : 'needs root' }, () => {
  let dir: string;
  let n = 0;
  const mounted: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tsfig-volumes-it-'));
  });
  after(async () => {
    for (const point of mounted.reverse()) {
      try {
        execFileSync('umount', ['-l', point], { stdio: 'ignore' });
      } catch {
        // already unmounted
      }
    }
    if (dir !== undefined) {
      const left = await mountsUnder(dir);
      for (const point of left.reverse()) execFileSync('umount', ['-l', point], { stdio: 'ignore' });
      await rm(dir, { recursive: true, force: true });
    }
  });

  async function freshRoot(): Promise<{ paths: EnginePaths; store: VolumeStore }> {
    const root = path.join(dir, `root-${n++}`);
    await mkdir(root);
    const paths = enginePaths(root, {});
    return { paths, store: new VolumeStore(paths) };
  }

  test('create, inspect, ls, rm through the CLI', async () => {
    const { paths } = await freshRoot();
    const created = await cli(paths, ['volume', 'create', '--label', 'team=db', '--label', 'empty', 'pgdata']);
    assert.equal(created.code, 0, created.err);
    assert.equal(created.out, 'pgdata\n');
    assert.ok((await stat(path.join(paths.volumes, 'pgdata', '_data'))).isDirectory());

    const inspected = await cli(paths, ['volume', 'inspect', 'pgdata']);
    const [info] = JSON.parse(inspected.out) as Array<Record<string, unknown>>;
    assert.deepEqual(
      { ...info, CreatedAt: undefined },
      {
        Name: 'pgdata',
        Driver: 'local',
        Mountpoint: path.join(paths.volumes, 'pgdata', '_data'),
        Labels: { team: 'db', empty: '' },
        Options: {},
        Scope: 'local',
        CreatedAt: undefined,
      },
    );
    assert.match(String(info?.CreatedAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const anon = await cli(paths, ['volume', 'create']);
    const anonName = anon.out.trim();
    assert.match(anonName, /^[0-9a-f]{64}$/);

    const table = await cli(paths, ['volume', 'ls']);
    assert.equal(table.out, `DRIVER   VOLUME NAME\nlocal    ${anonName}\nlocal    pgdata\n`);
    assert.equal((await cli(paths, ['volume', 'ls', '-q', '--filter', 'label=team=db'])).out, 'pgdata\n');
    assert.equal(
      (await cli(paths, ['volume', 'ls', '-q', '--filter', 'label=io.tsfig.anonymous'])).out,
      `${anonName}\n`,
    );
    assert.equal((await cli(paths, ['volume', 'ls', '-q', '--filter', 'name=pg'])).out, 'pgdata\n');
    const json = (await cli(paths, ['volume', 'ls', '--format', 'json'])).out.trim().split('\n');
    assert.equal(json.length, 2);
    assert.equal((JSON.parse(json[1] ?? '{}') as { Labels: string }).Labels, 'team=db,empty=');
    const badFilter = await cli(paths, ['volume', 'ls', '--filter', 'colour=red']);
    assert.ok(isEngineError(badFilter.error, 'invalid'));

    // Creating an existing name returns it (docker): the data stays.
    await writeFile(path.join(paths.volumes, 'pgdata', '_data', 'PG_VERSION'), '16\n');
    assert.equal((await cli(paths, ['volume', 'create', 'pgdata'])).out, 'pgdata\n');
    assert.equal(await readFile(path.join(paths.volumes, 'pgdata', '_data', 'PG_VERSION'), 'utf8'), '16\n');

    const removed = await cli(paths, ['volume', 'rm', 'pgdata', anonName]);
    assert.equal(removed.code, 0, removed.err);
    assert.equal(removed.out, `pgdata\n${anonName}\n`);
    assert.deepEqual(await readdir(paths.volumes), []);
    const missing = await cli(paths, ['volume', 'rm', 'pgdata']);
    assert.ok(isEngineError(missing.error, 'not-found'));
    assert.equal((await cli(paths, ['volume', 'rm', '-f', 'pgdata'])).code, 0);
    const inspectMissing = await cli(paths, ['volume', 'inspect', 'nothere']);
    assert.ok(isEngineError(inspectMissing.error, 'not-found'));
  });

  test('a volume in use is not removed, and the error names the container', async () => {
    const { paths, store } = await freshRoot();
    await store.create('shared');
    await store.create('idle');
    await writeContainerRecord(paths, 'a'.repeat(64), 'demo-db-1', ['shared']);
    await writeContainerRecord(paths, 'b'.repeat(64), 'demo-backup-1', ['shared', 'other']);
    await mkdir(path.join(paths.containers, 'c'.repeat(64))); // a container dir without a record yet

    const result = await cli(paths, ['volume', 'rm', 'shared']);
    assert.ok(isEngineError(result.error, 'conflict'));
    assert.equal((result.error as Error).message, 'volume shared is in use by container demo-db-1, demo-backup-1');
    assert.ok((await stat(store.dataDir('shared'))).isDirectory());
    const forced = await cli(paths, ['volume', 'rm', '-f', 'shared']);
    assert.ok(isEngineError(forced.error, 'conflict'), '-f never removes a volume in use');

    // Several names: the others are still removed, the exit code says one failed.
    const many = await cli(paths, ['volume', 'rm', 'shared', 'idle']);
    assert.equal(many.code, 1);
    assert.equal(many.out, 'idle\n');
    assert.match(many.err, /volume shared is in use by container demo-db-1/);

    assert.equal((await cli(paths, ['volume', 'ls', '-q', '--filter', 'dangling=false'])).out, 'shared\n');
    assert.equal((await cli(paths, ['volume', 'ls', '-q', '--filter', 'dangling=true'])).out, '');

    // A record that cannot be parsed but names the volume counts as a user.
    await rm(path.join(paths.containers, 'a'.repeat(64)), { recursive: true });
    await rm(path.join(paths.containers, 'b'.repeat(64)), { recursive: true });
    await writeFile(path.join(paths.containers, 'c'.repeat(64), 'container.json'), '{"mounts":[{"volumeName":"shared"');
    assert.deepEqual(await containerRecordUsers(paths)('shared'), ['c'.repeat(64)]);
    await rm(path.join(paths.containers, 'c'.repeat(64)), { recursive: true });
    assert.equal((await cli(paths, ['volume', 'rm', 'shared'])).code, 0);
  });

  test('usersOf tolerates a root without containers', async () => {
    const { paths } = await freshRoot();
    assert.deepEqual(await containerRecordUsers(paths)('x1'), []);
  });

  test('prune removes unused anonymous volumes, or all unused ones with --all', async () => {
    const { paths, store } = await freshRoot();
    const anonUsed = await store.create(undefined);
    const anonFree = await store.create(undefined, { labels: { keep: 'no' } });
    await store.create('named-free');
    await store.create('named-used');
    await writeContainerRecord(paths, 'd'.repeat(64), 'app', [anonUsed.Name, 'named-used']);
    await writeFile(path.join(anonFree.Mountpoint, 'blob'), Buffer.alloc(5000));

    const declined = await cli(paths, ['volume', 'prune'], false);
    assert.equal(declined.out, '');
    assert.equal((await store.list()).volumes.length, 4);

    const pruned = await cli(paths, ['volume', 'prune', '-f']);
    assert.equal(pruned.out, `Deleted Volumes:\n${anonFree.Name}\n\nTotal reclaimed space: 5kB\n`);
    const all = await cli(paths, ['volume', 'prune', '--all'], true);
    assert.equal(all.out, 'Deleted Volumes:\nnamed-free\n\nTotal reclaimed space: 0B\n');
    assert.deepEqual(
      (await store.list()).volumes.map((v) => v.Name),
      [anonUsed.Name, 'named-used'].sort(),
    );
  });

  test('driver options: tmpfs- and bind-backed volumes validated, nothing created on bad input', async () => {
    const { paths, store } = await freshRoot();
    const ok = await cli(paths, [
      'volume',
      'create',
      '-o',
      'type=tmpfs',
      '-o',
      'device=tmpfs',
      '-o',
      'o=size=100m,uid=1000',
      'ram',
    ]);
    assert.equal(ok.code, 0, String(ok.error));
    assert.deepEqual((await store.inspect('ram')).Options, { type: 'tmpfs', device: 'tmpfs', o: 'size=100m,uid=1000' });

    const device = path.join(dir, `device-${n}`);
    await mkdir(device);
    await store.create('hostdir', { driverOpts: { type: 'none', o: 'bind', device } });
    assert.equal((await store.inspect('hostdir')).Options.device, device);

    const bad: Array<[string[], RegExp]> = [
      [['-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=lots'], /invalid tmpfs size "lots"/],
      [['-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=noatime'], /unknown tmpfs option "noatime"/],
      [['-o', 'type=tmpfs'], /requires option "device"/],
      [['-o', 'colour=blue'], /invalid volume option "colour"/],
      [['-o', 'type=nfs', '-o', 'device=:/x', '-o', 'o=addr=10.0.0.1'], /volume type "nfs" is not supported/],
      [['-o', 'type=none', '-o', 'o=bind', '-o', `device=${device}-missing`], /does not exist/],
      [['--driver', 'rexray'], /volume driver "rexray" is not supported/],
    ];
    for (const [flags, message] of bad) {
      const result = await cli(paths, ['volume', 'create', ...flags, 'broken']);
      assert.ok(isEngineError(result.error), `${flags.join(' ')}: ${String(result.error)}`);
      assert.match((result.error as Error).message, message);
    }
    assert.deepEqual((await readdir(paths.volumes)).sort(), ['hostdir', 'ram']);
  });

  test('names: docker rule, path separators refused, nothing created', async () => {
    const { paths } = await freshRoot();
    for (const name of ['a/b', '../escape', '..', 'x', '-dash', 'sp ace', '/abs']) {
      const result = await cli(paths, ['volume', 'create', '--', name]);
      assert.ok(isEngineError(result.error, 'invalid'), `${name}: ${String(result.error)}`);
    }
    const sep = await cli(paths, ['volume', 'create', 'proj/data']);
    assert.match((sep.error as Error).message, /contains a path separator/);
    const rmSep = await cli(paths, ['volume', 'rm', '../containers']);
    assert.ok(isEngineError(rmSep.error, 'invalid'));
    await assert.rejects(stat(paths.volumes), /ENOENT/);
    await assert.rejects(stat(path.join(dir, 'escape')), /ENOENT/);
  });

  test('crash leftovers are adopted or reported, never deleted', async () => {
    const { paths, store } = await freshRoot();
    await store.create('intact');
    // Interrupted create: _data made, volume.json not yet written.
    await mkdir(path.join(paths.volumes, 'halfmade', '_data'), { recursive: true });
    await writeFile(path.join(paths.volumes, 'halfmade', '_data', 'keep.txt'), 'precious');
    // Interrupted before _data: an empty dir, and one with something else in it.
    await mkdir(path.join(paths.volumes, 'bare'));
    await mkdir(path.join(paths.volumes, 'odd'));
    await writeFile(path.join(paths.volumes, 'odd', '_data'), 'a file, not a dir');
    // A damaged record.
    await mkdir(path.join(paths.volumes, 'garbled', '_data'), { recursive: true });
    await writeFile(path.join(paths.volumes, 'garbled', 'volume.json'), '{"v":1,');
    // Junk that is not a volume at all.
    await writeFile(path.join(paths.volumes, 'stray.txt'), 'x');
    // A removal the user asked for, interrupted after the rename.
    await mkdir(path.join(paths.volumes, '.removing-gone-0000', '_data'), { recursive: true });

    const listed = await cli(paths, ['volume', 'ls', '-q']);
    assert.equal(listed.out, 'halfmade\nintact\n');
    assert.match(listed.err, /volume "halfmade" had no volume.json \(an interrupted create\?\); adopted/);
    assert.match(listed.err, /bare is not a volume \(no volume.json, no _data directory\); left in place/);
    assert.match(listed.err, /odd is not a volume/);
    assert.match(listed.err, /garbled\/volume.json is unreadable/);
    assert.match(listed.err, /stray.txt is not a volume directory; left in place/);
    assert.equal(await readFile(path.join(paths.volumes, 'halfmade', '_data', 'keep.txt'), 'utf8'), 'precious');
    assert.equal((await store.inspect('halfmade')).Driver, 'local');
    assert.deepEqual(
      (await readdir(paths.volumes)).sort(),
      ['bare', 'garbled', 'halfmade', 'intact', 'odd', 'stray.txt'],
      'only the interrupted removal was finished',
    );
    assert.equal((await cli(paths, ['volume', 'prune', '-f', '--all'])).code, 0);
    assert.deepEqual((await readdir(paths.volumes)).sort(), ['bare', 'garbled', 'odd', 'stray.txt']);
    // Asked by name, a leftover goes.
    assert.equal((await cli(paths, ['volume', 'rm', 'bare'])).out, 'bare\n');
    // create over a leftover without _data completes it.
    await mkdir(path.join(paths.volumes, 'resumed'));
    assert.equal((await store.create('resumed')).Name, 'resumed');
    assert.ok((await stat(store.dataDir('resumed'))).isDirectory());
    // ... but not over a _data that is not a directory.
    await assert.rejects(store.create('odd'), /exists and is not a directory/);
  });

  test('concurrent creates of one name make one volume', async () => {
    const { paths } = await freshRoot();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => new VolumeStore(paths).create('race', { labels: { n: '1' } })),
    );
    assert.equal(new Set(results.map((r) => r.CreatedAt)).size, 1);
    assert.deepEqual(await readdir(path.join(paths.volumes, 'race')), ['_data', 'volume.json']);
  });

  test('a volume with something mounted in it is not deleted through the mount', async () => {
    const { store } = await freshRoot();
    await store.create('busy');
    const hostDir = path.join(dir, `precious-${n}`);
    await mkdir(hostDir);
    await writeFile(path.join(hostDir, 'file'), 'do not delete');
    const target = store.dataDir('busy');
    execFileSync('mount', ['--bind', hostDir, target]);
    mounted.push(target);
    try {
      await assert.rejects(store.remove('busy', { usersOf: () => Promise.resolve([]) }), /is mounted there/);
      const pruned = await store.prune({ all: true, usersOf: () => Promise.resolve([]) });
      assert.deepEqual(pruned.deleted, []);
      assert.match(pruned.warnings.join('\n'), /volume busy not pruned: refusing to delete .* is mounted there/);
    } finally {
      execFileSync('umount', [target]);
      mounted.pop();
    }
    assert.equal(await readFile(path.join(hostDir, 'file'), 'utf8'), 'do not delete');
    assert.equal(await store.remove('busy', { usersOf: () => Promise.resolve([]) }), true);
  });
});

describe('volumes in running containers (runtime)', { skip: isRoot ? false : 'needs root' }, () => {
  const IMAGE = 'tsfig/busybox:latest';
  let t: TestEngine;
  const hostDirs: string[] = [];

  before(async () => {
    t = await makeTestEngine();
  });
  after(async () => {
    const cgroupParent = t.engine.paths.cgroupParent;
    await t.cleanup();
    for (const hostDir of hostDirs) await rm(hostDir, { recursive: true, force: true });
    assert.deepEqual([...leftovers(t.dir), ...leftovers(cgroupParent)], [], 'left cgroups, mounts or processes behind');
  });

  /** Creates, starts and waits for a container with the given mount specs; returns its record, exit code, output. */
  async function run(
    script: string,
    specs: MountSpec[],
    options: { volumesFrom?: VolumesFromSource[]; keep?: boolean } = {},
  ) {
    const result = await tryRun(script, specs, options);
    if (result.startError !== undefined) throw result.startError;
    return result;
  }

  /** As run, but a container the runtime refuses to start is a result (startError), not a failure. */
  async function tryRun(
    script: string,
    specs: MountSpec[],
    options: { volumesFrom?: VolumesFromSource[]; keep?: boolean } = {},
  ) {
    const { mounts } = await resolveMounts(specs, {
      volumes: t.engine.volumes,
      ...(options.volumesFrom !== undefined ? { volumesFrom: options.volumesFrom } : {}),
    });
    const record = await t.engine.containers.create({ image: IMAGE, cmd: ['sh', '-c', script], mounts });
    let exitCode = -1;
    let stdout = '';
    let stderr = '';
    let startError: Error | undefined;
    try {
      await t.engine.containers.start(record.id);
      exitCode = await t.engine.containers.wait(record.id, { timeoutMs: 30_000 });
      for await (const entry of t.engine.containers.logs(record.id)) {
        if (entry.stream === 'stdout') stdout += entry.text;
        else stderr += entry.text;
      }
    } catch (error) {
      startError = error instanceof Error ? error : new Error(JSON.stringify(error));
    }
    if (options.keep !== true) await t.engine.containers.remove(record.id, { force: true });
    return { record, exitCode, stdout, stderr, startError };
  }

  /** A container's mounts as volumes_from takes them. */
  function mountsOf(record: { readonly mounts: readonly ContainerMount[] }): ResolvedMount[] {
    return record.mounts.map((mount) => ({ ...mount, copy: mount.copy === true }));
  }

  const v = (spec: string) => parseVolumeFlag(spec);

  test("a named volume is populated from the image's content on first use and persists to a second container", async () => {
    const first = await run('ls /etc; echo 42 > /etc/answer; rm /etc/group', [v('etcdata:/etc')]);
    assert.equal(first.exitCode, 0, first.stderr);
    assert.match(first.stdout, /^passwd$/m, "the image's /etc was copied into the empty volume");
    const data = t.engine.volumes.dataDir('etcdata');
    assert.equal(await readFile(path.join(data, 'answer'), 'utf8'), '42\n');
    assert.match(await readFile(path.join(data, 'passwd'), 'utf8'), /^root:x:0:0:/);

    const second = await run('cat /etc/answer; ls /etc', [v('etcdata:/etc')]);
    assert.equal(second.exitCode, 0, second.stderr);
    assert.match(second.stdout, /^42$/m);
    assert.doesNotMatch(second.stdout, /^group$/m, 'a volume that is not empty is not copied into again');

    // Only the engine's own files are mounted on top of the volume (as docker does); nothing of the image's /etc.
    const nocopy = await run('ls -A /etc', [v('emptyetc:/etc:nocopy')]);
    assert.deepEqual(nocopy.stdout.trim().split('\n').sort(), ['hostname', 'hosts', 'resolv.conf'], nocopy.stderr);
  });

  test('an image VOLUME path gets an anonymous volume populated and owned as in the image', async () => {
    const { mounts, createdVolumes } = await resolveMounts([], {
      volumes: t.engine.volumes,
      imageVolumes: ['/tmp', '/etc'],
    });
    assert.equal(createdVolumes.length, 2);
    const record = await t.engine.containers.create({
      image: IMAGE,
      cmd: ['sh', '-c', 'ls /etc; stat -c %a /tmp'],
      mounts,
    });
    await t.engine.containers.start(record.id);
    assert.equal(await t.engine.containers.wait(record.id, { timeoutMs: 30_000 }), 0);
    let stdout = '';
    for await (const entry of t.engine.containers.logs(record.id)) stdout += entry.text;
    await t.engine.containers.remove(record.id);
    assert.match(stdout, /^passwd$/m);
    assert.match(stdout, /^1777$/m, "the volume's root took the mode of the image's /tmp");
    const tmp = mounts.find((mount) => mount.destination === '/tmp');
    assert.equal(tmp?.anonymous, true);
    assert.equal((await stat(tmp?.source ?? '')).mode & 0o7777, 0o1777);
  });

  test('tmpfs size is enforced, with docker default flags; tmpfs- and bind-backed volumes', async () => {
    const device = await mkdtemp('/tmp/tsfig-device-');
    hostDirs.push(device);
    await t.engine.volumes.create('ramvol', { driverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
    await t.engine.volumes.create('hostvol', { driverOpts: { type: 'none', o: 'bind', device } });
    const result = await run(
      [
        'grep -E " /(scratch|ram|host) " /proc/mounts',
        'dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>&1 | grep -o "No space left on device"',
        'dd if=/dev/zero of=/ram/big bs=1024 count=2048 2>&1 | grep -o "No space left on device"',
        'echo from-container > /host/written',
      ].join('; '),
      [parseTmpfsFlag('/scratch:size=1m'), v('ramvol:/ram'), v('hostvol:/host')],
    );
    assert.equal(result.exitCode, 0, result.stderr);
    const lines = result.stdout.split('\n');
    const scratch = lines.find((line) => line.includes(' /scratch '));
    assert.match(scratch ?? '', /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,.*size=1024k/);
    assert.match(lines.find((line) => line.includes(' /ram ')) ?? '', /tmpfs \/ram tmpfs rw,.*size=1024k/);
    assert.equal(result.stdout.match(/No space left on device/g)?.length, 2, result.stdout);
    assert.equal(await readFile(path.join(device, 'written'), 'utf8'), 'from-container\n');
  });

  test('the data-container pattern: volumes_from shares the anonymous volume, :ro cannot write', async () => {
    const data = await run('true', [v('/data')], { keep: true });
    assert.equal(data.exitCode, 0, data.stderr);
    const [anonymous] = data.record.mounts;
    assert.equal(anonymous?.anonymous, true);
    const fromData = (mode: 'ro' | 'rw'): VolumesFromSource[] => [{ mounts: mountsOf(data.record), mode }];

    const app = await run('echo hello > /data/hello', [], { volumesFrom: fromData('rw') });
    assert.equal(app.exitCode, 0, app.stderr);
    const reader = await run('cat /data/hello; echo more > /data/more', [], { volumesFrom: fromData('ro') });
    assert.equal(reader.stdout, 'hello\n');
    assert.notEqual(reader.exitCode, 0, 'a :ro volumes_from mount was writable');
    assert.match(reader.stderr, /Read-only file system/);

    const ro = await run('touch /data/x', [v(`${anonymous?.volumeName ?? ''}:/data:ro`)]);
    assert.notEqual(ro.exitCode, 0);
    assert.match(ro.stderr, /Read-only file system/);

    const users = containerRecordUsers(t.engine.paths);
    assert.deepEqual(await users(anonymous?.volumeName ?? ''), [data.record.name]);
    await assert.rejects(
      t.engine.volumes.remove(anonymous?.volumeName ?? '', { usersOf: users }),
      new RegExp(`in use by container ${data.record.name}`),
    );
    await t.engine.containers.remove(data.record.id);
    assert.equal(await readFile(path.join(anonymous?.source ?? '', 'hello'), 'utf8'), 'hello\n', 'data outlives rm');
  });

  test('a symlink planted in a volume cannot make a later mount or copy reach the host', async (ctx) => {
    const secret = await mkdtemp('/tmp/tsfig-secret-');
    hostDirs.push(secret);
    await writeFile(path.join(secret, 'secret'), 'host only');
    const escape = `tsfig-escape-${path.basename(secret)}`;
    assert.equal(existsSync(`/${escape}`), false);

    const plant = await run(`ln -s / /data/root && ln -s ${secret} /data/secret && ln -s /etc /data/etc`, [
      v('planted:/data'),
    ]);
    assert.equal(plant.exitCode, 0, plant.stderr);

    const bindSource = await mkdtemp('/tmp/tsfig-bindsrc-');
    hostDirs.push(bindSource);
    await writeFile(path.join(bindSource, 'file'), 'bound');
    // Each later mount's destination goes through a planted link. Followed on the host, they would create /<escape>
    // on the host, mount over or copy from the host's secret dir, or put a bind on the host's /etc. The runtime may
    // refuse to start or resolve the links inside the container's root; either way the host stays untouched.
    const attempts = [
      await tryRun(`touch /data/root/${escape}/x`, [v('planted:/data'), parseTmpfsFlag(`/data/root/${escape}`)]),
      await tryRun('echo pwned > /data/secret/pwned', [v('planted:/data'), v('fresh:/data/secret')]),
      await tryRun('echo pwned > /data/etc/pwned', [v('planted:/data'), v(`${bindSource}:/data/etc`)]),
    ];
    for (const attempt of attempts) {
      if (attempt.startError !== undefined) assert.ok(isEngineError(attempt.startError), String(attempt.startError));
      ctx.diagnostic(
        attempt.startError !== undefined
          ? `refused: ${attempt.startError.message}`
          : `ran: exit ${attempt.exitCode} ${attempt.stderr.trim()}`,
      );
    }
    assert.equal(existsSync(`/${escape}`), false, `the host got /${escape}`);
    assert.deepEqual(await readdir(secret), ['secret']);
    assert.equal(await readFile(path.join(secret, 'secret'), 'utf8'), 'host only');
    assert.equal(existsSync('/etc/pwned'), false);
    assert.equal((await readdir(t.engine.volumes.dataDir('fresh'))).includes('secret'), false, 'host file copied');
    // The symlink resolves inside the container's root (/data/etc -> the container's /etc), so the bind lands on the
    // container's /etc and the engine's hostname/hosts/resolv.conf mount points appear in it: still nothing on the host.
    const engineFiles = ['hostname', 'hosts', 'resolv.conf'];
    assert.deepEqual(
      (await readdir(bindSource)).filter((name) => !engineFiles.includes(name)),
      attempts[2]?.exitCode === 0 ? ['file', 'pwned'] : ['file'],
    );
    assert.equal((await lstat(path.join(t.engine.volumes.dataDir('planted'), 'root'))).isSymbolicLink(), true);
    for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
      assert.ok(!line.includes(secret) && !line.includes(escape), `host mount table has ${line}`);
    }
    // And removing the volume removes the links, not what they point to.
    await t.engine.volumes.remove('planted', { usersOf: containerRecordUsers(t.engine.paths) });
    assert.deepEqual(await readdir(secret), ['secret']);
    assert.ok(existsSync('/etc/passwd'));
  });
});
