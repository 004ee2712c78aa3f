import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import { enginePaths } from '../../engine/state/paths.js';
import {
  parseMountFlag,
  parseTmpfsFlag,
  parseVolumeFlag,
  renderMountConf,
  resolveMounts,
  type ResolvedMount,
} from '../../engine/volumes/mounts.js';
import { VolumeStore } from '../../engine/volumes/store.js';

describe('resolveMounts', () => {
  let dir: string;
  let host: string;
  let store: VolumeStore;
  let n = 0;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tsfig-volumes-resolve-'));
    host = path.join(dir, 'host');
    await mkdir(host);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A fresh engine root per test. */
  async function freshStore(): Promise<VolumeStore> {
    const root = path.join(dir, `root-${n++}`);
    await mkdir(root);
    store = new VolumeStore(enginePaths(root, {}));
    return store;
  }

  async function volumeNames(): Promise<string[]> {
    return (await store.list()).volumes.map((v) => v.Name);
  }

  const v = (spec: string) => parseVolumeFlag(spec, { baseDir: host });

  test('named volume: bind of _data, copy unless nocopy, ro; created when missing', async () => {
    const volumes = await freshStore();
    const result = await resolveMounts([v('data:/data'), v('logs:/logs:ro,nocopy')], { volumes });
    assert.deepEqual(result.mounts, [
      {
        destination: '/data',
        type: 'bind',
        source: volumes.dataDir('data'),
        options: ['rbind', 'rprivate'],
        copy: true,
        volumeName: 'data',
      },
      {
        destination: '/logs',
        type: 'bind',
        source: volumes.dataDir('logs'),
        options: ['rbind', 'rprivate', 'ro'],
        copy: false,
        volumeName: 'logs',
      },
    ]);
    assert.deepEqual(result.createdVolumes, ['data', 'logs']);
    const again = await resolveMounts([v('data:/data')], { volumes });
    assert.deepEqual(again.createdVolumes, []);
  });

  test('an undeclared volume is an error when creation is off, and nothing is created', async () => {
    const volumes = await freshStore();
    await assert.rejects(
      resolveMounts([v('/anon'), v('missing:/m')], { volumes, createMissingVolumes: false, imageVolumes: ['/x'] }),
      (error: unknown) => isEngineError(error, 'not-found') && /no such volume: missing/.test(error.message),
    );
    assert.deepEqual(await volumeNames(), []);
  });

  test("anonymous volumes for -v /path and the image's uncovered VOLUME paths, labelled", async () => {
    const volumes = await freshStore();
    const result = await resolveMounts([v('/cache'), v('named:/var/lib/db')], {
      volumes,
      imageVolumes: ['/var/lib/db', '/srv/data/', 'relative'],
      volumeLabels: { 'io.tsfig.project': 'demo' },
    });
    const byDest = new Map(result.mounts.map((m) => [m.destination, m]));
    assert.deepEqual([...byDest.keys()], ['/cache', '/relative', '/srv/data', '/var/lib/db']);
    assert.equal(byDest.get('/var/lib/db')?.volumeName, 'named');
    for (const dest of ['/cache', '/srv/data', '/relative']) {
      const mount = byDest.get(dest);
      assert.equal(mount?.anonymous, true);
      assert.equal(mount?.copy, true);
      assert.match(mount?.volumeName ?? '', /^[0-9a-f]{64}$/);
      const info = await volumes.inspect(mount?.volumeName ?? '');
      assert.deepEqual(info.Labels, { 'io.tsfig.anonymous': '', 'io.tsfig.project': 'demo' });
    }
    assert.equal(result.createdVolumes.length, 4);
  });

  test('volumes_from: inherited without copy, :ro forces ro, explicit specs and later sources win', async () => {
    const volumes = await freshStore();
    const data: ResolvedMount = {
      destination: '/data',
      type: 'bind',
      source: '/var/lib/tsfig/volumes/abc/_data',
      options: ['rbind', 'rprivate'],
      copy: true,
      volumeName: 'abc',
      anonymous: true,
    };
    const conf: ResolvedMount = { ...data, destination: '/conf', volumeName: 'conf', anonymous: false };
    const other: ResolvedMount = { ...data, destination: '/other', volumeName: 'other' };
    const result = await resolveMounts([v('mine:/other')], {
      volumes,
      volumesFrom: [
        { mounts: [data, conf, other], mode: 'ro' },
        { mounts: [{ ...conf, volumeName: 'conf2', options: ['rbind', 'rprivate', 'ro'] }], mode: 'rw' },
      ],
      imageVolumes: ['/data'],
    });
    assert.deepEqual(result.mounts, [
      { ...data, copy: false, options: ['rbind', 'rprivate', 'ro'] },
      { ...conf, volumeName: 'conf2', copy: false, options: ['rbind', 'rprivate', 'ro'] },
      {
        destination: '/other',
        type: 'bind',
        source: volumes.dataDir('mine'),
        options: ['rbind', 'rprivate'],
        copy: true,
        volumeName: 'mine',
      },
    ]);
    const rw = await resolveMounts([], { volumes, volumesFrom: [{ mounts: [data], mode: 'rw' }] });
    assert.deepEqual(rw.mounts[0]?.options, ['rbind', 'rprivate']);
  });

  test('binds: symlinks and .. resolved on the host; missing -v source created, --mount source refused', async () => {
    const volumes = await freshStore();
    await mkdir(path.join(host, 'real'), { recursive: true });
    await symlink(path.join(host, 'real'), path.join(host, 'link'));
    const result = await resolveMounts([v('./link:/a'), v(`${host}/nope/../real:/b:ro,rslave`), v('./made/deep:/c')], {
      volumes,
    });
    assert.deepEqual(
      result.mounts.map((m) => [m.destination, m.source, m.options.join(','), m.copy]),
      [
        ['/a', path.join(host, 'real'), 'rbind,rprivate', false],
        ['/b', path.join(host, 'real'), 'rbind,rslave,ro', false],
        ['/c', path.join(host, 'made/deep'), 'rbind,rprivate', false],
      ],
    );
    assert.deepEqual(result.createdPaths, [path.join(host, 'made')]);
    assert.ok((await stat(path.join(host, 'made/deep'))).isDirectory());

    const missing = path.join(host, 'absent');
    await assert.rejects(
      resolveMounts([v('/anon'), parseMountFlag(`type=bind,src=${missing},dst=/x`)], { volumes }),
      (error: unknown) =>
        isEngineError(error, 'not-found') &&
        error.message.includes('--mount') &&
        error.message.includes(`bind source path does not exist: ${missing}`),
    );
    await assert.rejects(resolveMounts([v(`${missing}:/x`)], { volumes, createHostPath: false }), /does not exist/);
    await assert.rejects(stat(missing), /ENOENT/);
    assert.deepEqual(await volumeNames(), [], 'no anonymous volume left behind');
    const compose = { ...parseMountFlag(`type=bind,src=${missing},dst=/x`), createHostPath: true };
    await resolveMounts([compose], { volumes });
    assert.ok((await stat(missing)).isDirectory());
  });

  test('a failure after creating volumes removes them again', async () => {
    const volumes = await freshStore();
    const dangling = path.join(host, 'dangling');
    await symlink(path.join(host, 'nowhere', 'x'), dangling);
    // realpath says "missing" (allowed to create), mkdir then fails on the dangling link.
    await assert.rejects(resolveMounts([v('/anon'), v('fresh:/f'), v(`${dangling}:/d`)], { volumes }));
    assert.deepEqual(await volumeNames(), []);
  });

  test('an anonymous volume named again (recreate carry-over) stays anonymous; removeAnonymous keeps used ones', async () => {
    const volumes = await freshStore();
    const first = await resolveMounts([v('/cache'), v('/shared'), v('named:/n')], { volumes });
    const [cache, shared] = first.mounts.map((m) => m.volumeName ?? '');
    const again = await resolveMounts([v(`${cache}:/cache`)], { volumes });
    assert.equal(again.mounts[0]?.anonymous, true);
    assert.deepEqual(again.createdVolumes, []);
    const result = await volumes.removeAnonymous(first.mounts, {
      usersOf: (name) => Promise.resolve(name === shared ? ['other'] : []),
    });
    assert.deepEqual(result, { removed: [cache], kept: [{ name: shared, users: ['other'] }] });
    assert.deepEqual((await volumeNames()).sort(), ['named', shared].sort());
  });

  test('duplicate destinations are refused', async () => {
    const volumes = await freshStore();
    await assert.rejects(
      resolveMounts([v('a1:/data'), parseTmpfsFlag('/data/')], { volumes }),
      /--tmpfs "\/data\/": duplicate mount point \/data \(also used by -v "a1:\/data"\)/,
    );
    assert.deepEqual(await volumeNames(), []);
  });

  test('parents before children, by destination depth', async () => {
    const volumes = await freshStore();
    const result = await resolveMounts([v('/a/b/c'), parseTmpfsFlag('/a/b'), v('/z'), parseTmpfsFlag('/a')], {
      volumes,
      imageVolumes: ['/a/b/c/d'],
    });
    assert.deepEqual(
      result.mounts.map((m) => m.destination),
      ['/z', '/a', '/a/b', '/a/b/c', '/a/b/c/d'],
    );
  });

  test('tmpfs mounts get docker defaults; tmpfs- and bind-backed volumes', async () => {
    const volumes = await freshStore();
    const device = path.join(host, 'device');
    await mkdir(device);
    await volumes.create('scratch', { driverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m,mode=0700' } });
    await volumes.create('hostdir', { driverOpts: { type: 'none', o: 'bind,nosuid', device } });
    const result = await resolveMounts(
      [parseTmpfsFlag('/run:size=2m'), v('scratch:/s'), v('hostdir:/h:ro'), parseMountFlag('type=tmpfs,dst=/t,ro')],
      { volumes },
    );
    assert.deepEqual(result.mounts, [
      {
        destination: '/run',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['noexec', 'nosuid', 'nodev', 'size=2097152'],
        copy: false,
      },
      {
        destination: '/s',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['size=1048576', 'mode=0700'],
        copy: false,
        volumeName: 'scratch',
      },
      {
        destination: '/h',
        type: 'bind',
        source: device,
        options: ['rbind', 'rprivate', 'ro', 'nosuid'],
        copy: true,
        volumeName: 'hostdir',
      },
      { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'noexec', 'nosuid', 'nodev'], copy: false },
    ]);
  });

  test('a damaged volume (_data replaced by a symlink) is refused, not followed', async () => {
    const volumes = await freshStore();
    await volumes.create('hurt');
    const data = volumes.dataDir('hurt');
    await rm(data, { recursive: true });
    await symlink('/', data);
    await assert.rejects(resolveMounts([v('hurt:/x')], { volumes }), /volume hurt is damaged/);
  });

  test('a bind-backed volume whose device vanished is an error naming it', async () => {
    const volumes = await freshStore();
    const device = path.join(host, 'gone');
    await mkdir(device);
    await volumes.create('gone', { driverOpts: { type: 'none', o: 'bind', device } });
    await rm(device, { recursive: true });
    await assert.rejects(
      resolveMounts([v('gone:/g')], { volumes }),
      new RegExp(`volume device ${device} does not exist`),
    );
  });
});

describe('renderMountConf', () => {
  test('golden', () => {
    const text = renderMountConf([
      { destination: '/data', type: 'bind', source: '/v/db/_data', options: ['rbind', 'rprivate'], copy: true },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'size=1024'], copy: false },
      {
        destination: '/odd\tname',
        type: 'bind',
        source: '/h/a\\b\nc',
        options: ['rbind', 'rprivate', 'ro'],
        copy: false,
      },
    ]);
    assert.equal(
      text,
      [
        'mount /data',
        'mount.type bind',
        'mount.source /v/db/_data',
        'mount.options rbind,rprivate',
        'mount.copy 1',
        'mount /run',
        'mount.type tmpfs',
        'mount.source tmpfs',
        'mount.options noexec,nosuid,size=1024',
        'mount /odd\\tname',
        'mount.type bind',
        'mount.source /h/a\\\\b\\nc',
        'mount.options rbind,rprivate,ro',
        '',
      ].join('\n'),
    );
    assert.throws(() =>
      renderMountConf([{ destination: '/a\0', type: 'tmpfs', source: 'tmpfs', options: [], copy: false }]),
    );
  });
});
