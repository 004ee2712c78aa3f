import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { Engine } from '../../engine/index.js';
import { readTarSplit, reassemble } from '../../engine/layers/tarsplit.js';
import { BUSYBOX_TAR, DEBIAN_TAR, makeTestEngine, skipUnlessRoot, TEST_DIR_PREFIX } from '../helpers/engine.js';

// Real layers through the one tar reader (engine/layers/tar.ts): each tar is imported by the engine (the native
// unpacker and the tar-split recorder read the same stream), then re-made from its tar-split and the unpacked
// layer. The re-made tar must have the layer's DiffID, which must be the file's own digest: image ids survive
// `image save`.

async function sha256Of(source: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of source) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

/** Imports file as a one-layer image and checks its tar-split re-makes it byte for byte. */
async function assertRoundTrip(engine: Engine, file: string, reference: string): Promise<void> {
  const fileDigest = await sha256Of(createReadStream(file));
  const image = await engine.images.importRootfs({ kind: 'file', path: file }, { reference });
  assert.deepEqual(image.diffIds, [fileDigest], `${file}: the layer's DiffID is the file's digest`);
  const [diff] = engine.images.layerDirs(image);
  assert.ok(diff !== undefined);
  const segments = await readTarSplit(path.dirname(diff));
  assert.ok(segments !== undefined, `${file}: a tar-split was recorded`);
  assert.equal(await sha256Of(reassemble(segments, diff)), fileDigest, `${file}: re-made byte for byte`);
}

/** A tree with long names, long link targets, hard links, devices, a FIFO, setuid and xattrs (as root). */
function edgeTree(root: string): void {
  const long = path.join(root, 'd'.repeat(90), 'e'.repeat(90), 'f'.repeat(120));
  mkdirSync(path.dirname(long), { recursive: true });
  writeFileSync(long, 'deep\n');
  writeFileSync(path.join(root, 'a'), 'a\n');
  linkSync(path.join(root, 'a'), path.join(root, 'hard'));
  linkSync(long, path.join(root, 'hard-to-long'));
  symlinkSync('l'.repeat(200), path.join(root, 'longlink'));
  execFileSync('mknod', [path.join(root, 'null'), 'c', '1', '3']);
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  writeFileSync(path.join(root, 'suid'), '#!/bin/sh\n', { mode: 0o4755 });
  execFileSync('chown', ['3000000:7', path.join(root, 'a')]);
  execFileSync('python3', [
    '-c',
    'import os,sys; os.setxattr(sys.argv[1], "user.note", b"hello")',
    path.join(root, 'suid'),
  ]);
  writeFileSync(path.join(root, 'big'), Buffer.alloc(3_000_000, 0x62));
  writeFileSync(path.join(root, 'empty'), '');
}

/** A test engine and a tree (filled by fill) packed by GNU tar with args into a file; both removed after t. */
async function packedTree(
  t: TestContext,
  fill: (root: string) => void,
  name: string,
  args: readonly string[],
): Promise<{ engine: Engine; file: string }> {
  const te = await makeTestEngine();
  t.after(() => te.cleanup());
  const dir = mkdtempSync(`${TEST_DIR_PREFIX}layers-`);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = path.join(dir, 'tree');
  mkdirSync(root);
  fill(root);
  const file = path.join(dir, name);
  execFileSync('tar', ['--create', `--file=${file}`, ...args, '-C', root, '.']);
  return { engine: te.engine, file };
}

describe('real layers round-trip through tar-split', () => {
  test('the busybox and debootstrap base images', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await makeTestEngine();
    t.after(() => te.cleanup());
    await assertRoundTrip(te.engine, BUSYBOX_TAR, 'rt/busybox:1');
    await assertRoundTrip(te.engine, DEBIAN_TAR, 'rt/debian:1');
  });

  for (const format of ['pax', 'gnu'] as const) {
    test(`GNU tar ${format}: PAX records or GNU long names, hard links, devices, xattrs, base-256 ids`, async (t) => {
      if (skipUnlessRoot(t)) return;
      const xattrs = format === 'pax' ? ['--xattrs', '--xattrs-include=user.*', '--pax-option=comment=g'] : [];
      const args = [`--format=${format}`, '--numeric-owner', ...xattrs];
      const { engine, file } = await packedTree(t, edgeTree, `${format}.tar`, args);
      await assertRoundTrip(engine, file, `rt/${format}:1`);
    });
  }

  test('a GNU sparse file is refused by the unpacker, naming the entry, and leaves no layer', async (t) => {
    if (skipUnlessRoot(t)) return;
    const sparse = (root: string) => execFileSync('truncate', ['-s', '1M', path.join(root, 'sparse')]);
    const { engine, file } = await packedTree(t, sparse, 'sparse.tar', ['--format=gnu', '--sparse']);
    const before = await engine.images.list();
    await assert.rejects(
      engine.images.importRootfs({ kind: 'file', path: file }, { reference: 'rt/sparse:1' }),
      /sparse/,
    );
    assert.deepEqual(await engine.images.list(), before);
  });
});
