import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { encodeEntry, endOfArchive } from '../../engine/build/tar.js';
import { isEngineError } from '../../engine/errors.js';
import {
  archiveLinkTarget,
  archiveMemberName,
  detectArchiveLayout,
  isAttestation,
  parseDockerManifest,
  tagFromAnnotations,
} from '../../engine/images/archive-format.js';
import { reassemble, TarSplitRecorder, type TarSplitSegment } from '../../engine/images/tarsplit.js';
import { tarEnd, tarHeader, tarPadding, walkTar } from '../../engine/images/tarstream.js';

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of source) parts.push(chunk);
  return Buffer.concat(parts);
}

describe('archive format detection and parsing', () => {
  test('manifest.json is read first, then index.json', () => {
    assert.equal(detectArchiveLayout(['blobs/sha256/ab', 'index.json', 'manifest.json', 'oci-layout']), 'docker');
    assert.equal(detectArchiveLayout(['blobs/sha256/ab', 'index.json', 'oci-layout']), 'oci');
    assert.equal(detectArchiveLayout(['layer.tar', 'json']), undefined);
  });

  test('manifest.json items are checked', () => {
    const items = parseDockerManifest(
      JSON.stringify([{ Config: 'blobs/sha256/aa', RepoTags: null, Layers: ['blobs/sha256/bb'] }]),
    );
    assert.deepEqual(items, [{ Config: 'blobs/sha256/aa', RepoTags: [], Layers: ['blobs/sha256/bb'] }]);
    for (const bad of ['{', '{}', '[1]', '[{"Layers":[]}]', '[{"Config":"x","Layers":[1]}]', '[{"Config":"x"}]']) {
      assert.throws(
        () => parseDockerManifest(bad),
        (error: unknown) => isEngineError(error, 'invalid'),
        bad,
      );
    }
  });

  test('member names are normalised; absolute and .. names are refused naming the entry', () => {
    assert.equal(archiveMemberName('./blobs/sha256/ab'), 'blobs/sha256/ab');
    assert.equal(archiveMemberName('blobs/'), 'blobs');
    for (const bad of ['../x', 'blobs/../../x', '/etc/passwd', 'a/..']) {
      assert.throws(
        () => archiveMemberName(bad),
        (error: unknown) => isEngineError(error, 'invalid') && error.message.includes(`"${bad}"`),
      );
    }
    assert.equal(archiveLinkTarget('abc/layer.tar', '../def/layer.tar', false), 'def/layer.tar');
    assert.equal(archiveLinkTarget('abc/layer.tar', 'def/layer.tar', true), 'def/layer.tar');
    assert.throws(() => archiveLinkTarget('abc/layer.tar', '../../x', false), /links outside the archive/);
    assert.throws(() => archiveLinkTarget('abc/layer.tar', '/etc/passwd', false), /links outside the archive/);
  });

  test('tags come from the containerd name, else a ref.name that is a whole reference', () => {
    assert.equal(
      tagFromAnnotations({ 'io.containerd.image.name': 'docker.io/library/busybox:1.36' }),
      'docker.io/library/busybox:1.36',
    );
    assert.equal(tagFromAnnotations({ 'org.opencontainers.image.ref.name': 'app:v1' }), 'docker.io/library/app:v1');
    assert.equal(tagFromAnnotations({ 'org.opencontainers.image.ref.name': 'latest' }), undefined);
    assert.equal(tagFromAnnotations({ 'org.opencontainers.image.ref.name': 'Bad Name:x' }), undefined);
    assert.equal(tagFromAnnotations(undefined), undefined);
    assert.ok(
      isAttestation({ mediaType: 'x', digest: 'd', size: 1, platform: { os: 'unknown', architecture: 'unknown' } }),
    );
  });
});

describe('tar streams', () => {
  test('walkTar streams entries and their data; tarHeader members read back', async () => {
    const data = Buffer.from('hello world\n');
    const tar = Buffer.concat([
      tarHeader({ name: 'blobs/', size: 0, type: 'dir' }),
      tarHeader({ name: 'blobs/sha256/x', size: data.length, type: 'file' }),
      data,
      tarPadding(data.length),
      tarEnd(),
    ]);
    const seen: Array<[string, string, string]> = [];
    await walkTar(Readable.from([tar.subarray(0, 700), tar.subarray(700)]), async (entry, body) => {
      seen.push([entry.name, entry.type, (await collect(body)).toString()]);
    });
    assert.deepEqual(seen, [
      ['blobs/', 'dir', ''],
      ['blobs/sha256/x', 'file', 'hello world\n'],
    ]);
    const broken = Buffer.from(tar);
    broken[10] = 0x41;
    await assert.rejects(
      walkTar(Readable.from([broken]), () => undefined),
      /bad checksum/,
    );
  });

  test('a tar-split re-makes the exact tar from the unpacked files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-tarsplit-'));
    try {
      const long = `deep/${'x'.repeat(120)}/file`;
      const entries = [
        { name: 'deep', type: 'dir' as const, mode: 0o755, uid: 0, gid: 0, mtime: 1 },
        {
          name: long,
          type: 'file' as const,
          mode: 0o644,
          uid: 0,
          gid: 0,
          mtime: 1.5,
          data: Buffer.from('a'.repeat(700)),
        },
        { name: 'empty', type: 'file' as const, mode: 0o600, uid: 1, gid: 1, mtime: 2 },
        { name: '.wh.gone', type: 'file' as const, mode: 0o600, uid: 0, gid: 0, mtime: 0 },
        { name: 'link', type: 'symlink' as const, mode: 0o777, uid: 0, gid: 0, mtime: 3, linkname: 'deep' },
      ];
      const tar = Buffer.concat([...entries.map(encodeEntry), endOfArchive(), Buffer.alloc(512)]);
      const recorder = new TarSplitRecorder();
      const passed = await collect(recorder.tap(Readable.from([tar.subarray(0, 1000), tar.subarray(1000)])));
      assert.ok(passed.equals(tar), 'the bytes pass through unchanged');
      await recorder.save(path.join(dir, 'tar-split.json.gz'));
      // the unpacked layer
      const diff = path.join(dir, 'diff');
      await mkdir(path.join(diff, path.dirname(long)), { recursive: true });
      await writeFile(path.join(diff, long), 'a'.repeat(700));
      const { readTarSplit } = await import('../../engine/images/tarsplit.js');
      const segments = (await readTarSplit(dir)) as TarSplitSegment[];
      assert.equal(segments.filter((s) => 'f' in s).length, 1, 'only file content is referenced');
      const again = await collect(reassemble(segments, diff));
      assert.equal(createHash('sha256').update(again).digest('hex'), createHash('sha256').update(tar).digest('hex'));
      await assert.rejects(collect(reassemble([{ f: '../../etc/passwd', s: 1 }], diff)), /outside the layer/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a stream that is not a tar gets no tar-split (and is passed through)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-tarsplit-'));
    try {
      const garbage = Buffer.alloc(4096, 0x37);
      const recorder = new TarSplitRecorder();
      assert.ok((await collect(recorder.tap(Readable.from([garbage])))).equals(garbage));
      await recorder.save(path.join(dir, 'tar-split.json.gz'));
      const { readTarSplit } = await import('../../engine/images/tarsplit.js');
      assert.equal(await readTarSplit(dir), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
