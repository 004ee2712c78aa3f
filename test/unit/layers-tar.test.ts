import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  linkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import {
  encodeEntry,
  endOfArchive,
  memberHeader,
  padding,
  readTar,
  tarEntries,
  type TarEntry,
} from '../../engine/layers/tar.js';
import { readTarSplit, reassemble, TarSplitRecorder, type TarSplitSegment } from '../../engine/layers/tarsplit.js';

// The engine's one tar reader (engine/layers/tar.ts): images (load, tar-split), containers (cp) and builds read
// through it. Archives come from its own writer and from GNU tar (PAX, GNU long names, hard links, sparse files,
// base-256 ids), and tar-split must give each back byte for byte.

const LONG = `${'deep/'.repeat(30)}file-with-a-long-name.txt`;

const entries: TarEntry[] = [
  { name: 'dir', type: 'dir', mode: 0o750, uid: 1000, gid: 1000, mtime: 1_700_000_000 },
  { name: 'dir/file.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, data: Buffer.from('hi\n') },
  { name: LONG, type: 'file', mode: 0o600, uid: 5, gid: 6, mtime: 1_700_000_000.5, data: Buffer.from('long\n') },
  { name: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, linkname: 'dir/file.txt' },
  {
    name: 'cap',
    type: 'file',
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: 0,
    data: Buffer.alloc(0),
    xattrs: { 'user.note': Buffer.from('x') },
  },
  { name: 'big-ids', type: 'file', mode: 0o644, uid: 3_000_000, gid: 3_000_001, mtime: 0, data: Buffer.from('') },
];

function archive(): Buffer {
  return Buffer.concat([...entries.map(encodeEntry), endOfArchive()]);
}

describe('tar writer and reader', () => {
  test('entries round-trip: PAX for long names, fractional mtimes, xattrs and large ids', async () => {
    const read: TarEntry[] = [];
    for await (const entry of readTar(Readable.from([archive()]))) read.push(entry);
    assert.deepEqual(
      read.map((entry) => [entry.name, entry.type, entry.mode, entry.uid, entry.gid, entry.mtime, entry.linkname]),
      entries.map((entry) => [entry.name, entry.type, entry.mode, entry.uid, entry.gid, entry.mtime, entry.linkname]),
    );
    assert.equal(read[2]?.data?.toString(), 'long\n');
    assert.equal(read[4]?.xattrs?.['user.note']?.toString(), 'x');
  });

  test('GNU tar reads what the writer writes', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-tar-'));
    try {
      writeFileSync(path.join(dir, 'a.tar'), archive());
      execFileSync('tar', ['-xf', 'a.tar', '--no-same-owner'], { cwd: dir });
      assert.equal(readFileSync(path.join(dir, 'dir/file.txt'), 'utf8'), 'hi\n');
      assert.equal(readFileSync(path.join(dir, LONG), 'utf8'), 'long\n');
      assert.equal(readlinkSync(path.join(dir, 'link')), 'dir/file.txt');
      assert.equal(statSync(path.join(dir, 'dir')).mode & 0o777, 0o750);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a truncated archive is an error', async () => {
    const cut = archive().subarray(0, 700);
    await assert.rejects(async () => {
      for await (const _ of readTar(Readable.from([cut]))) void _;
    }, /unexpected end of tar stream/);
  });
});

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of source) parts.push(chunk);
  return Buffer.concat(parts);
}

/** buffer in pieces of n bytes, so that headers and data straddle chunks. */
function pieces(buffer: Buffer, n: number): Readable {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < buffer.length; offset += n) parts.push(buffer.subarray(offset, offset + n));
  return Readable.from(parts);
}

/**
 * Records tar's tar-split through the recorder's tap, unpacks tar with GNU tar into a diff dir (as a layer is
 * unpacked) and re-makes the tar from the two; returns the segments and the re-made bytes.
 */
async function tarSplitRoundTrip(tar: Buffer, chunk: number): Promise<{ segments: TarSplitSegment[]; again: Buffer }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-tarsplit-'));
  try {
    const recorder = new TarSplitRecorder();
    const passed = await collect(recorder.tap(pieces(tar, chunk)));
    assert.ok(passed.equals(tar), 'the bytes pass through unchanged');
    await recorder.save(path.join(dir, 'tar-split.json.gz'));
    const diff = path.join(dir, 'diff');
    await mkdir(diff);
    execFileSync('tar', ['-x', '-f', '-', '-C', diff, '--no-same-owner', '--no-same-permissions'], { input: tar });
    const segments = await readTarSplit(dir);
    assert.ok(segments !== undefined, 'a tar-split is recorded');
    return { segments, again: await collect(reassemble(segments, diff)) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A tree with every kind of entry GNU tar writes that a layer can have (devices need root; a FIFO stands in). */
function makeTree(root: string): { long: string; longTarget: string } {
  const long = `${'d'.repeat(60)}/${'e'.repeat(80)}/${'f'.repeat(120)}`;
  const longTarget = 'l'.repeat(150);
  mkdirSync(path.join(root, path.dirname(long)), { recursive: true });
  writeFileSync(path.join(root, long), 'deep\n');
  writeFileSync(path.join(root, 'a'), 'a\n');
  linkSync(path.join(root, 'a'), path.join(root, 'hard'));
  symlinkSync(longTarget, path.join(root, 'longlink'));
  const sparse = Buffer.alloc(0);
  writeFileSync(path.join(root, 'sparse'), sparse);
  execFileSync('truncate', ['-s', '1M', path.join(root, 'sparse')]);
  execFileSync('dd', ['of=' + path.join(root, 'sparse'), 'bs=1', 'seek=500000', 'conv=notrunc', 'status=none'], {
    input: 'x',
  });
  writeFileSync(path.join(root, 'big'), Buffer.alloc(200_000, 0x61));
  writeFileSync(path.join(root, 'empty'), '');
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  return { long, longTarget };
}

function gnuTar(root: string, format: 'pax' | 'gnu' | 'ustar', extra: string[] = []): Buffer {
  const args = ['--create', '--file=-', `--format=${format}`, '--owner=:3000000', '--group=:7', ...extra, '-C', root];
  return execFileSync('tar', [...args, '.'], { maxBuffer: 64 << 20 });
}

describe('tar streams (tarEntries)', () => {
  test('entries and their data stream in order; memberHeader members read back', async () => {
    const data = Buffer.from('hello world\n');
    const tar = Buffer.concat([
      memberHeader({ name: 'blobs/', size: 0, type: 'dir' }),
      memberHeader({ name: 'blobs/sha256/x', size: data.length, type: 'file' }),
      data,
      padding(data.length),
      endOfArchive(),
    ]);
    const seen: Array<[string, string | undefined, string]> = [];
    for await (const { header, data: body } of tarEntries(pieces(tar, 700))) {
      seen.push([header.name, header.type, (await collect(body)).toString()]);
    }
    assert.deepEqual(seen, [
      ['blobs/', 'dir', ''],
      ['blobs/sha256/x', 'file', 'hello world\n'],
    ]);
    assert.throws(() => memberHeader({ name: 'x'.repeat(101), size: 0, type: 'file' }), /too long/);
  });

  test('a bad checksum, a truncated header and truncated data are errors', async () => {
    const tar = Buffer.concat([
      encodeEntry({
        name: 'f',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        data: Buffer.from('x'.repeat(600)),
      }),
      endOfArchive(),
    ]);
    const broken = Buffer.from(tar);
    broken[10] = 0x41;
    const drain = async (bytes: Buffer) => {
      for await (const { data } of tarEntries(Readable.from([bytes]))) await collect(data);
    };
    await assert.rejects(drain(broken), /bad checksum/);
    await assert.rejects(drain(tar.subarray(0, 300)), /unexpected end of tar stream/);
    await assert.rejects(drain(tar.subarray(0, 900)), /unexpected end of tar stream/);
    await drain(tar.subarray(0, 1536)); // no end marker: the stream's end ends the archive
  });

  test('a PAX or long-name record over 1 MiB is refused before it is read (it would be held in memory)', async () => {
    for (const flag of ['x', 'g', 'L', 'K']) {
      // a header declaring 64 MiB of record, then zeros without end: only what the reader pulls is made
      const block = memberHeader({ name: 'PaxHeaders/f', size: 64 * 1024 * 1024, type: 'file' });
      block.write(flag, 156, 'ascii');
      block.write('        ', 148, 'ascii');
      let sum = 0;
      for (const byte of block) sum += byte;
      block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
      let pulled = 0;
      const source: AsyncIterable<Buffer> = {
        [Symbol.asyncIterator]: () => ({
          next: () => {
            const value = pulled === 0 ? block : Buffer.alloc(65536);
            pulled += value.length;
            return Promise.resolve({ done: false, value });
          },
        }),
      };
      await assert.rejects(
        (async () => {
          for await (const { data } of tarEntries(source)) await collect(data);
        })(),
        /a PAX or long-name record of 67108864 bytes/,
        flag,
      );
      assert.ok(pulled <= 512 + 1024 * 1024, `${flag}: ${pulled} bytes pulled`);
    }
    // one of 1 MiB (the most) still reads
    const name = `${'n/'.repeat(100_000)}end`;
    const read: string[] = [];
    const bytes = Buffer.concat([
      encodeEntry({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: Buffer.from('x') }),
      endOfArchive(),
    ]);
    for await (const { header } of tarEntries(Readable.from([bytes]))) read.push(header.name);
    assert.deepEqual(read, [name]);
  });

  test('data left unread is skipped; onBytes sees every byte once, in order, file content marked', async () => {
    const tar = Buffer.concat([
      encodeEntry({ name: 'one', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: Buffer.alloc(70_000, 1) }),
      encodeEntry({
        name: `${'n'.repeat(120)}`,
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        data: Buffer.from('two'),
      }),
      endOfArchive(),
      Buffer.alloc(4096), // blocking padding after the marker
    ]);
    const seen: Buffer[] = [];
    const files: string[] = [];
    const names: string[] = [];
    const entries = tarEntries(pieces(tar, 333), {
      onBytes: (bytes, file) => {
        seen.push(bytes);
        if (file !== undefined && files.at(-1) !== file.name) files.push(file.name);
      },
    });
    for await (const { header } of entries) names.push(header.name); // data never read
    assert.deepEqual(names, ['one', 'n'.repeat(120)]);
    assert.deepEqual(files, ['one', 'n'.repeat(120)]);
    assert.ok(Buffer.concat(seen).equals(tar), 'every byte, once, in order, to the end of the stream');
  });
});

describe('GNU tar archives', () => {
  for (const format of ['pax', 'gnu'] as const) {
    test(`${format}: long names and link targets, hard links, sparse files, big ids read back`, async () => {
      const root = mkdtempSync(path.join(tmpdir(), 'tsfig-tar-'));
      try {
        const { long, longTarget } = makeTree(root);
        const tar = gnuTar(root, format, ['--sparse']);
        const entries: TarEntry[] = [];
        for await (const entry of readTar(pieces(tar, 1000))) entries.push(entry);
        const byName = new Map(entries.map((entry) => [entry.name, entry]));
        assert.equal(byName.get(long)?.data?.toString(), 'deep\n');
        assert.equal(byName.get('longlink')?.linkname, longTarget);
        // GNU tar writes the second name of a hard link pair as the link
        const links = entries.filter((entry) => entry.type === 'hardlink');
        assert.equal(links.length, 1);
        assert.ok(['a', 'hard'].includes(links[0]?.linkname ?? ''), JSON.stringify(links));
        assert.equal(byName.get('fifo')?.type, 'fifo');
        assert.equal(byName.get('big')?.data?.length, 200_000);
        assert.equal(byName.get('a')?.gid, 7);
        assert.equal(byName.get('a')?.uid, 3_000_000);
        assert.equal(byName.get('big')?.gid, 7);
        assert.ok(
          entries.every((entry) => !entry.name.includes('sparse') && !entry.name.includes('GNUSparseFile')),
          'a sparse file is a kind the reader does not give',
        );
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }

  test('GNU base-256 numbers are read (an id over the octal field)', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'tsfig-tar-'));
    try {
      writeFileSync(path.join(root, 'f'), 'x');
      const tar = execFileSync('tar', ['--create', '--file=-', '--format=gnu', '--owner=:3000000', '-C', root, 'f']);
      for await (const entry of readTar(Readable.from([tar]))) assert.equal(entry.uid, 3_000_000);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('tar-split', () => {
  test('re-makes the exact tar from the unpacked files (own writer: PAX names, fractional mtime, empty files)', async () => {
    const long = `deep/${'x'.repeat(120)}/file`;
    const entries: TarEntry[] = [
      { name: 'deep', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1 },
      { name: long, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1.5, data: Buffer.from('a'.repeat(700)) },
      { name: 'empty', type: 'file', mode: 0o600, uid: 1, gid: 1, mtime: 2 },
      { name: '.wh.gone', type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: 0 },
      { name: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 3, linkname: 'deep' },
    ];
    const tar = Buffer.concat([...entries.map(encodeEntry), endOfArchive(), Buffer.alloc(512)]);
    const { segments, again } = await tarSplitRoundTrip(tar, 1000);
    assert.equal(segments.filter((s) => 'f' in s).length, 1, 'only file content is referenced');
    assert.ok(again.equals(tar));
  });

  for (const format of ['pax', 'gnu', 'ustar'] as const) {
    test(`re-makes GNU tar's ${format} archive byte for byte, at any chunking`, async () => {
      const root = mkdtempSync(path.join(tmpdir(), 'tsfig-tar-'));
      try {
        makeTree(root);
        if (format === 'ustar') rmSync(path.join(root, 'd'.repeat(60)), { recursive: true }); // names ustar cannot hold
        if (format === 'ustar') rmSync(path.join(root, 'longlink'));
        const extra =
          format === 'ustar' ? ['--owner=:0'] : ['--sparse', ...(format === 'pax' ? ['--pax-option=comment=g'] : [])];
        const tar = gnuTar(root, format, extra);
        for (const chunk of [511, 4096, 65_536]) {
          const { segments, again } = await tarSplitRoundTrip(tar, chunk);
          assert.ok(again.equals(tar), `${format}, chunks of ${chunk}: the same bytes`);
          const files = segments.flatMap((s) => ('f' in s ? [s.f] : []));
          assert.ok(files.includes('./big') && (files.includes('./a') || files.includes('./hard')), files.join(' '));
          if (format !== 'ustar') {
            assert.ok(!files.some((name) => /sparse/i.test(name)), 'a sparse file is kept as the archive has it');
          }
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }

  test('paths outside the layer are refused; a changed file is reported', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-tarsplit-'));
    try {
      await writeFile(path.join(dir, 'f'), 'abc');
      await assert.rejects(collect(reassemble([{ f: '../../etc/passwd', s: 1 }], dir)), /outside the layer/);
      await assert.rejects(collect(reassemble([{ f: './f', s: 4 }], dir)), /no longer matches its tar/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the source's own failure (a download's) is passed on, not taken for a stream that is not a tar", async () => {
    const tar = Buffer.concat([
      encodeEntry({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: Buffer.alloc(5000, 1) }),
      endOfArchive(),
    ]);
    async function* failing(): AsyncGenerator<Buffer> {
      yield tar.subarray(0, 1024);
      await new Promise((resolve) => setImmediate(resolve));
      throw new Error('connection reset');
    }
    const passed: Buffer[] = [];
    const recorder = new TarSplitRecorder();
    await assert.rejects(async () => {
      for await (const chunk of recorder.tap(failing())) passed.push(chunk);
    }, /connection reset/);
    assert.ok(Buffer.concat(passed).equals(tar.subarray(0, 1024)), 'what came before the failure is passed on');
  });

  test('a stream that is not a tar gets no tar-split (and is passed through)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-tarsplit-'));
    try {
      const garbage = Buffer.alloc(4096, 0x37);
      const recorder = new TarSplitRecorder();
      assert.ok((await collect(recorder.tap(Readable.from([garbage])))).equals(garbage));
      await recorder.save(path.join(dir, 'tar-split.json.gz'));
      assert.equal(await readTarSplit(dir), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
