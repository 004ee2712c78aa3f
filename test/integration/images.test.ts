import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { isEngineError } from '../../engine/errors.js';
import { chainIds } from '../../engine/images/layer.js';
import { ImageStore, type ImageInspect } from '../../engine/images/store.js';
import type { LayerRecord } from '../../engine/images/types.js';
import { enginePaths, type EnginePaths } from '../../engine/state/paths.js';
import { registerImageCommands, type ImageRow } from '../../src/cli/commands/image.js';
import { isRoot } from '../helpers/engine.js';
import { makeBusyboxRootfs } from '../helpers/rootfs.js';

// The image store against the real native extractor, as root: every test gets its own state root under a temp dir
// (removed even on failure). Hostile tarballs are built here with python3's tarfile; the checks look at the host
// paths such a tarball aims at, and at the store, which must be left exactly as before.

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

interface Root {
  readonly dir: string;
  readonly paths: EnginePaths;
  readonly store: ImageStore;
}

async function withRoot(fn: (root: Root) => Promise<void>): Promise<void> {
  const dir = await mkdtemp('/tmp/tsfig-it-images-');
  try {
    const paths = enginePaths(path.join(dir, 'root'), { TSFIG_RUN_ROOT: path.join(dir, 'run') });
    await fn({ dir, paths, store: new ImageStore(paths) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes a tar built by python3's tarfile from a list of entries: [name, type, extra] with type file|dir|symlink|
 * hardlink|char|fifo; extra is the content (file) or link target (symlink, hardlink).
 */
function pythonTar(file: string, entries: [string, string, string?][], format: 'pax' | 'gnu' = 'pax'): void {
  const script = `
import io, json, sys, tarfile
entries = json.loads(sys.argv[2])
fmt = tarfile.PAX_FORMAT if sys.argv[3] == 'pax' else tarfile.GNU_FORMAT
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE,
         'char': tarfile.CHRTYPE, 'fifo': tarfile.FIFOTYPE}
with tarfile.open(sys.argv[1], 'w', format=fmt) as tar:
    for name, kind, extra in entries:
        info = tarfile.TarInfo(name)
        info.type = types[kind]
        info.mode = 0o755 if kind == 'dir' else 0o644
        info.mtime = 1_600_000_000
        data = None
        if kind == 'file':
            payload = (extra or '').encode()
            info.size = len(payload)
            data = io.BytesIO(payload)
        elif kind in ('symlink', 'hardlink'):
            info.linkname = extra
        tar.addfile(info, data)
`;
  execFileSync(PYTHON, ['-c', script, file, JSON.stringify(entries.map(([a, b, c]) => [a, b, c ?? null])), format]);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** What the store holds: refs, layers, blobs, images, temp leftovers. */
async function storeState(paths: EnginePaths): Promise<Record<string, unknown>> {
  return {
    refs: existsSync(paths.refsFile) ? JSON.parse(readFileSync(paths.refsFile, 'utf8')) : {},
    layers: await listDir(paths.layers),
    blobs: await listDir(paths.blobs),
    images: await listDir(paths.images),
    tmp: await listDir(path.join(paths.root, 'tmp')),
  };
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function busyboxTar(dir: string): Promise<string> {
  const rootfs = path.join(dir, 'busybox-rootfs');
  await mkdir(rootfs);
  await makeBusyboxRootfs(rootfs);
  const tarFile = path.join(dir, 'busybox.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tarFile, '.']);
  return tarFile;
}

describe('image store (root)', { skip: isRoot ? false : 'needs root (run: sudo npm run test:integration)' }, () => {
  test('importing the same busybox tarball twice gives the same image and reuses the layer', async () => {
    await withRoot(async ({ dir, paths, store }) => {
      const tarFile = await busyboxTar(dir);
      const first = await store.importRootfs(
        { kind: 'file', path: tarFile },
        { reference: 'bb', changes: ['CMD ["sh"]'] },
      );
      assert.match(first.id, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(first.repoTags, ['bb:latest']);
      assert.equal(first.diffIds.length, 1);
      assert.equal(first.diffIds[0], `sha256:${sha256File(tarFile)}`, 'the DiffID is the sha256 of the plain tar');
      const [layerDir] = store.layerDirs(first);
      assert.ok(layerDir !== undefined);
      const before = await lstat(layerDir);
      assert.equal((await lstat(path.join(layerDir, 'bin', 'busybox'))).mode & 0o777, 0o755);
      assert.equal((await lstat(path.join(layerDir, 'bin', 'sh'))).isSymbolicLink(), true);

      const gz = path.join(dir, 'busybox.tar.gz');
      await writeFile(gz, gzipSync(readFileSync(tarFile)));
      const second = await store.importRootfs(
        { kind: 'file', path: tarFile },
        { reference: 'bb:two', changes: ['CMD ["sh"]'] },
      );
      assert.equal(second.id, first.id);
      assert.deepEqual(second.repoTags, ['bb:latest', 'bb:two']);
      const fromGzip = await store.importRootfs({ kind: 'file', path: gz }, { changes: ['CMD ["sh"]'], message: 'gz' });
      assert.deepEqual(fromGzip.diffIds, first.diffIds, 'gzip is detected and the DiffID is of the plain tar');
      assert.deepEqual(await listDir(paths.layers), [first.chainIds[0]?.slice(7)], 'one layer, shared');
      assert.equal((await lstat(layerDir)).ino, before.ino, 'the layer was not unpacked again');
      const layerJson = JSON.parse(
        await readFile(path.join(path.dirname(layerDir), 'layer.json'), 'utf8'),
      ) as LayerRecord;
      assert.deepEqual(
        { diffId: layerJson.diffId, chainId: layerJson.chainId, parent: layerJson.parent },
        { diffId: first.diffIds[0], chainId: first.chainIds[0], parent: null },
      );

      assert.equal((await store.resolve('bb:two')).id, first.id);
      assert.equal((await store.resolve(first.id.slice(7, 13))).id, first.id);
      assert.equal((await store.resolve(first.id)).id, first.id);
      assert.equal((await store.resolve(`docker.io/library/bb@${first.id}`)).id, first.id);
      const inspect = await store.inspect('bb');
      assert.deepEqual(inspect.Config.Cmd, ['sh']);
      assert.deepEqual(inspect.RootFS, { Type: 'layers', Layers: first.diffIds });
      await assert.rejects(store.resolve('nope'), (error: unknown) => isEngineError(error, 'not-found'));
    });
  });

  test('a directory import keeps ownership, modes (setuid, sticky), xattrs, devices and mtimes', async () => {
    await withRoot(async ({ dir, store }) => {
      const src = path.join(dir, 'src');
      await mkdir(path.join(src, 'sub'), { recursive: true });
      await writeFile(path.join(src, 'sub', 'suid'), 'x');
      execFileSync('chown', ['1234:5678', path.join(src, 'sub', 'suid')]);
      await chmod(path.join(src, 'sub', 'suid'), 0o4755);
      await mkdir(path.join(src, 'sticky'));
      await chmod(path.join(src, 'sticky'), 0o1777);
      await symlink('/etc/passwd', path.join(src, 'abs-link'));
      execFileSync('chown', ['-h', '42:43', path.join(src, 'abs-link')]);
      execFileSync('mknod', [path.join(src, 'null'), 'c', '1', '3']);
      execFileSync('mkfifo', [path.join(src, 'fifo')]);
      execFileSync(PYTHON, [
        '-c',
        `import os; os.setxattr('${src}/sub/suid', 'user.note', b'kept'); os.setxattr('${src}/sub/suid', 'security.capability', bytes.fromhex('0100000200200000000000000000000000000000'))`,
      ]);
      const old = new Date('2001-02-03T04:05:06Z');
      await utimes(path.join(src, 'sub', 'suid'), old, old);
      await utimes(path.join(src, 'sub'), old, old);
      execFileSync('touch', ['-h', '-d', '2002-01-01T00:00:00Z', path.join(src, 'abs-link')]);

      const image = await store.importRootfs({ kind: 'dir', path: src }, { reference: 'attrs' });
      const [diff] = store.layerDirs(image);
      assert.ok(diff !== undefined);
      const suid = await lstat(path.join(diff, 'sub', 'suid'));
      assert.equal(suid.mode & 0o7777, 0o4755);
      assert.deepEqual([suid.uid, suid.gid], [1234, 5678]);
      assert.equal(suid.mtime.getTime(), old.getTime());
      assert.equal(
        (await lstat(path.join(diff, 'sub'))).mtime.getTime(),
        old.getTime(),
        'dir mtime set after children',
      );
      assert.equal((await lstat(path.join(diff, 'sticky'))).mode & 0o7777, 0o1777);
      const link = await lstat(path.join(diff, 'abs-link'));
      assert.equal(link.isSymbolicLink(), true);
      assert.deepEqual([link.uid, link.gid], [42, 43]);
      assert.equal(link.mtime.getTime(), Date.parse('2002-01-01T00:00:00Z'));
      const node = await lstat(path.join(diff, 'null'));
      assert.equal(node.isCharacterDevice(), true);
      assert.equal(node.rdev, (await lstat('/dev/null')).rdev);
      assert.equal((await lstat(path.join(diff, 'fifo'))).isFIFO(), true);
      const xattrs = execFileSync(PYTHON, [
        '-c',
        `import os; p='${diff}/sub/suid'; print(os.getxattr(p, 'user.note').decode(), os.getxattr(p, 'security.capability').hex())`,
      ])
        .toString()
        .trim();
      assert.equal(xattrs, 'kept 0100000200200000000000000000000000000000');

      const again = await store.importRootfs({ kind: 'dir', path: src }, { reference: 'attrs' });
      assert.equal(again.id, image.id, 'an unchanged directory packs to the same DiffID and image');
    });
  });

  test('whiteouts become 0:0 character devices and .wh..wh..opq an opaque directory', async () => {
    await withRoot(async ({ dir, store }) => {
      const tarFile = path.join(dir, 'wh.tar');
      pythonTar(tarFile, [
        ['dir', 'dir'],
        ['dir/.wh..wh..opq', 'file'],
        ['dir/keep', 'file', 'k'],
        ['dir/.wh.old', 'file'],
        ['.wh.gone', 'file'],
        ['other/.wh..wh..opq', 'file'],
      ]);
      const image = await store.importRootfs({ kind: 'file', path: tarFile });
      const [diff] = store.layerDirs(image);
      assert.ok(diff !== undefined);
      for (const whiteout of ['gone', 'dir/old']) {
        const stat: Stats = await lstat(path.join(diff, whiteout));
        assert.equal(stat.isCharacterDevice(), true, whiteout);
        assert.equal(stat.rdev, 0, `${whiteout} is 0:0`);
      }
      const opaque = (target: string): string =>
        execFileSync(PYTHON, ['-c', `import os; print(os.getxattr('${target}', 'trusted.overlay.opaque').decode())`])
          .toString()
          .trim();
      assert.equal(opaque(path.join(diff, 'dir')), 'y');
      assert.equal(opaque(path.join(diff, 'other')), 'y', 'a missing parent is created, then marked');
      assert.equal(await readFile(path.join(diff, 'dir', 'keep'), 'utf8'), 'k');
      const names = execFileSync('find', [diff], { encoding: 'utf8' });
      assert.doesNotMatch(names, /\.wh\./, 'no marker is written');
    });
  });

  test('two layers stack under overlay: whiteouts hide, opaque dirs reset, layerDirs is topmost first', async () => {
    await withRoot(async ({ dir, store }) => {
      const baseTar = path.join(dir, 'base.tar');
      const topTar = path.join(dir, 'top.tar');
      const longName = `deep/${'n'.repeat(120)}/${'f'.repeat(150)}`;
      pythonTar(baseTar, [
        ['keep', 'file', 'base'],
        ['gone', 'file', 'base'],
        ['dir', 'dir'],
        ['dir/old1', 'file', 'base'],
        ['dir/old2', 'file', 'base'],
        [longName, 'file', 'long'],
      ]);
      pythonTar(
        topTar,
        [
          ['.wh.gone', 'file'],
          ['dir', 'dir'],
          ['dir/.wh..wh..opq', 'file'],
          ['dir/new', 'file', 'top'],
          ['keep', 'file', 'top'],
          ['long-link', 'symlink', `/${'t'.repeat(200)}`],
        ],
        'gnu',
      );
      const base = await store.addLayer(Readable.from([readFileSync(baseTar)]), null);
      const top = await store.addLayer(Readable.from([readFileSync(topTar)]), base.chainId);
      assert.equal(top.parent, base.chainId);
      assert.equal(top.chainId, chainIds([base.diffId, top.diffId])[1]);
      const config = Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          rootfs: { type: 'layers', diff_ids: [base.diffId, top.diffId] },
        }),
      );
      const image = await store.addImage(config, { reference: 'stack:1' });
      const lowers = store.layerDirs(image);
      assert.equal(lowers.length, 2);
      assert.ok(lowers[0]?.includes(top.chainId.slice(7)), 'topmost first');
      const merged = path.join(dir, 'merged');
      await mkdir(merged);
      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')}`, merged]);
      try {
        assert.deepEqual((await readdir(merged)).sort(), ['deep', 'dir', 'keep', 'long-link']);
        assert.deepEqual(await readdir(path.join(merged, 'dir')), ['new'], 'opaque: the lower dir content is hidden');
        assert.equal(await readFile(path.join(merged, 'keep'), 'utf8'), 'top');
        assert.equal(await readFile(path.join(merged, longName), 'utf8'), 'long', 'PAX long name');
        assert.equal(readlinkSync(path.join(merged, 'long-link')), `/${'t'.repeat(200)}`, 'GNU long link');
      } finally {
        execFileSync('umount', [merged]);
      }
      await assert.rejects(
        store.addImage(
          Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } })),
        ),
        (error: unknown) => isEngineError(error, 'not-found'),
      );
    });
  });

  test('hostile tarballs are refused or confined; nothing outside the store changes', async () => {
    const tag = randomBytes(6).toString('hex');
    const passwdBefore = sha256File('/etc/passwd');
    const targets = [
      `/tmp/escape-${tag}`,
      `/escape-${tag}`,
      `/tmp/abs-${tag}`,
      `/tmp/pwned-${tag}`,
      `/tmp/pwned2-${tag}`,
      `/tmp/pwned3-${tag}`,
      `/tmp/over-${tag}`,
    ];
    // Each case: entries, and whether the extractor must refuse it (true) or may confine it (false).
    const cases: [string, [string, string, string?][], boolean][] = [
      ['dotdot', [[`../escape-${tag}`, 'file', 'x']], true],
      ['deep dotdot', [[`a/../../../../tmp/escape-${tag}`, 'file', 'x']], true],
      ['absolute dotdot', [[`/tmp/../../escape-${tag}`, 'file', 'x']], true],
      ['absolute name', [[`/tmp/abs-${tag}`, 'file', 'x']], false],
      [
        'symlink to / then through it',
        [
          ['evil', 'symlink', '/'],
          [`evil/tmp/pwned-${tag}`, 'file', 'x'],
        ],
        false,
      ],
      ['hardlink to /etc/passwd', [['passwd', 'hardlink', '/etc/passwd']], true],
      ['hardlink climbing out', [['passwd', 'hardlink', '../../../../etc/passwd']], true],
      [
        'hardlink through a symlinked dir',
        [
          ['etc-link', 'symlink', '/etc'],
          ['pw', 'hardlink', 'etc-link/passwd'],
        ],
        true,
      ],
      [
        'symlink to a host dir then a file in it',
        [
          ['d', 'symlink', '/tmp'],
          [`d/pwned2-${tag}`, 'file', 'x'],
        ],
        false,
      ],
      [
        'relative symlink out then a file in it',
        [
          ['r', 'symlink', '../../../../../tmp'],
          [`r/pwned3-${tag}`, 'file', 'x'],
        ],
        false,
      ],
      [
        'file replacing a symlink to the host',
        [
          ['f', 'symlink', `/tmp/over-${tag}`],
          ['f', 'file', 'x'],
        ],
        false,
      ],
    ];
    for (const [name, entries, mustRefuse] of cases) {
      for (const format of ['pax', 'gnu'] as const) {
        await withRoot(async ({ dir, paths, store }) => {
          const tarFile = path.join(dir, 'evil.tar');
          pythonTar(tarFile, entries, format);
          const emptyState = await storeState(paths);
          let image;
          try {
            image = await store.importRootfs({ kind: 'file', path: tarFile }, { reference: 'evil' });
          } catch (error) {
            assert.ok(isEngineError(error), `${name}: ${String(error)}`);
            assert.deepEqual(await storeState(paths), { ...emptyState, tmp: [] }, `${name}: the store is unchanged`);
          }
          if (mustRefuse) assert.equal(image, undefined, `${name} (${format}) must be refused`);
          if (image !== undefined) {
            // Confined: what it wrote is inside the layer.
            const [diff] = store.layerDirs(image);
            assert.ok(diff !== undefined);
            const found = execFileSync('find', [diff], { encoding: 'utf8' });
            for (const target of targets) {
              if (entries.some(([entry]) => entry.endsWith(path.basename(target)))) {
                assert.match(found, new RegExp(path.basename(target)), `${name}: written inside the layer`);
              }
            }
          }
          for (const target of targets) assert.equal(existsSync(target), false, `${name}: ${target} must not exist`);
          assert.equal(sha256File('/etc/passwd'), passwdBefore, `${name}: /etc/passwd unchanged`);
        });
      }
    }
  });

  test('a corrupt gzip, a truncated tar and garbage are refused with nothing left behind', async () => {
    await withRoot(async ({ dir, paths, store }) => {
      const tarFile = await busyboxTar(dir);
      const plain = readFileSync(tarFile);
      const gz = gzipSync(plain);
      const corrupt = Buffer.from(gz);
      for (let i = 1000; i < 1100; i++) corrupt[i] = (corrupt[i] ?? 0) ^ 0x5a;
      const inputs: [string, Buffer][] = [
        ['corrupt gzip', corrupt],
        ['truncated gzip', gz.subarray(0, Math.floor(gz.length / 2))],
        ['truncated tar', plain.subarray(0, 512 * 41 + 100)],
        ['tar cut at a block boundary', plain.subarray(0, 512 * 40)],
        ['garbage', randomBytes(10_000)],
        ['empty', Buffer.alloc(0)],
      ];
      const emptyState = await storeState(paths);
      for (const [name, data] of inputs) {
        const file = path.join(dir, 'bad');
        await writeFile(file, data);
        await assert.rejects(
          store.importRootfs({ kind: 'file', path: file }, { reference: 'bad' }),
          (error: unknown) => isEngineError(error) && /unpack|gzip|truncated/.test(error.message),
          name,
        );
        assert.deepEqual(await storeState(paths), { ...emptyState, tmp: [] }, `${name}: nothing left`);
      }
    });
  });

  test('a half-made layer (no layer.json) is removed and redone; prune removes leftovers', async () => {
    await withRoot(async ({ dir, paths, store }) => {
      const tarFile = path.join(dir, 'one.tar');
      pythonTar(tarFile, [['hello', 'file', 'world']]);
      const diffId = `sha256:${sha256File(tarFile)}`;
      const half = path.join(paths.layers, diffId.slice(7), 'diff');
      await mkdir(half, { recursive: true });
      await writeFile(path.join(half, 'junk'), 'from a crash');
      const image = await store.importRootfs({ kind: 'file', path: tarFile }, { reference: 'kept' });
      const [diff] = store.layerDirs(image);
      assert.equal(diff, half);
      assert.deepEqual(await listDir(half), ['hello']);
      assert.equal(existsSync(path.join(paths.layers, diffId.slice(7), 'layer.json')), true);

      // prune: half layers go at once; a layer no image uses as soon as no live operation claims it (no age rule).
      const otherTar = path.join(dir, 'other.tar');
      pythonTar(otherTar, [['other', 'file', 'x']]);
      const fresh = await store.withClaim('test', async () => {
        const layer = await store.addLayer(Readable.from([readFileSync(otherTar)]), null);
        const halfAgain = path.join(paths.layers, 'f'.repeat(64));
        await mkdir(path.join(halfAgain, 'diff'), { recursive: true });
        await store.prune();
        assert.deepEqual(await listDir(paths.layers), [diffId.slice(7), layer.chainId.slice(7)].sort());
        return layer;
      });
      assert.ok(existsSync(path.join(paths.layers, fresh.chainId.slice(7))), 'kept while claimed');
      await store.prune();
      assert.deepEqual(await listDir(paths.layers), [diffId.slice(7)], 'the orphan is gone, the used layer kept');
    });
  });

  test('rm untags, refuses images in use, and deletes layers no longer shared', async () => {
    await withRoot(async ({ dir, paths, store }) => {
      const a = path.join(dir, 'a.tar');
      const b = path.join(dir, 'b.tar');
      pythonTar(a, [['a', 'file', 'a']]);
      pythonTar(b, [['b', 'file', 'b']]);
      const imageA = await store.importRootfs({ kind: 'file', path: a }, { reference: 'app:a' });
      const imageA2 = await store.importRootfs(
        { kind: 'file', path: a },
        { reference: 'app:a2', changes: ['CMD ["x"]'] },
      );
      const imageB = await store.importRootfs({ kind: 'file', path: b }, { reference: 'app:b' });
      assert.notEqual(imageA.id, imageA2.id);
      assert.deepEqual(imageA.chainIds, imageA2.chainIds);
      await store.tag('app:b', 'other/name:v1');

      const inUse = (id: string) => Promise.resolve(id === imageB.id ? ['web-1', 'worker-2'] : []);
      assert.deepEqual(await store.remove('app:b', { isInUse: inUse }), [{ kind: 'untagged', ref: 'app:b' }]);
      await assert.rejects(
        store.remove('other/name:v1', { isInUse: inUse }),
        (error: unknown) => isEngineError(error, 'conflict') && /web-1, worker-2/.test(error.message),
      );
      assert.deepEqual(await store.remove('other/name:v1', { isInUse: inUse, force: true }), [
        { kind: 'untagged', ref: 'other/name:v1' },
      ]);
      assert.equal((await store.resolve(imageB.id)).repoTags.length, 0, 'forced: untagged, kept for its containers');

      const layerA = imageA.chainIds[0]?.slice(7) ?? '';
      assert.deepEqual(await store.remove('app:a'), [
        { kind: 'untagged', ref: 'app:a' },
        { kind: 'deleted', id: imageA.id },
      ]);
      assert.ok((await listDir(paths.layers)).includes(layerA), 'still used by app:a2');
      await store.remove(imageA2.id.slice(7, 19));
      assert.ok(!(await listDir(paths.layers)).includes(layerA), 'the last user is gone, so is the layer');
      assert.ok(!(await listDir(paths.blobs)).includes(imageA.id.slice(7)));

      assert.deepEqual(await store.prune({ isInUse: inUse }), [], 'b is dangling but in use');
      assert.deepEqual(await store.prune(), [imageB.id]);
      assert.deepEqual(await storeState(paths), { refs: {}, layers: [], blobs: [], images: [], tmp: [] });
    });
  });

  test('the image commands import, list, tag, inspect and remove', async () => {
    await withRoot(async ({ dir, paths }) => {
      const tarFile = await busyboxTar(dir);
      let stdout = '';
      const run = async (...args: string[]): Promise<string> => {
        stdout = '';
        const program = new Command('tsfig').exitOverride();
        registerImageCommands(program, {
          paths: () => paths,
          stdout: { write: (text: string) => (stdout += text) },
          stdin: Readable.from([gzipSync(readFileSync(tarFile))]),
        });
        await program.parseAsync(args, { from: 'user' });
        return stdout;
      };
      const id = (await run('image', 'import', '-c', 'CMD ["sh"]', '-m', 'hello', tarFile, 'tsfig/bb:1')).trim();
      assert.match(id, /^sha256:[0-9a-f]{64}$/);
      await run('image', 'tag', 'tsfig/bb:1', 'bb');
      const table = await run('image', 'ls');
      assert.match(table, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/m);
      assert.match(table, new RegExp(`^bb +latest +${id.slice(7, 19)} +.+ ago +[0-9.]+MB$`, 'm'));
      assert.match(table, /^tsfig\/bb +1 +/m);
      assert.equal((await run('image', 'ls', '-q')).trim(), id.slice(7, 19));
      const json = (await run('image', 'ls', '--format', 'json'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as ImageRow);
      assert.deepEqual(json.map((row) => row.Repository).sort(), ['bb', 'tsfig/bb']);
      const [inspect] = JSON.parse(await run('image', 'inspect', 'bb')) as ImageInspect[];
      assert.equal(inspect?.Id, id);
      assert.equal(inspect.Comment, 'hello');
      assert.deepEqual(inspect.RepoTags, ['bb:latest', 'tsfig/bb:1']);
      assert.equal(await run('image', 'rm', 'bb'), 'Untagged: bb:latest\n');
      assert.equal(await run('image', 'rm', 'tsfig/bb:1'), `Untagged: tsfig/bb:1\nDeleted: ${id}\n`);
      assert.equal(await run('image', 'ls', '-q'), '');
      const fromStdin = (await run('image', 'import', '-', 'piped:gz')).trim();
      const [piped] = JSON.parse(await run('image', 'inspect', 'piped:gz')) as ImageInspect[];
      assert.equal(piped?.Comment, 'Imported from -');
      assert.match(fromStdin, /^sha256:[0-9a-f]{64}$/);
    });
  });
});
