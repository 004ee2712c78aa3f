import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { encodeEntry, endOfArchive, readTar, type TarEntry } from '../../engine/build/tar.js';

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

describe('build tar writer and reader', () => {
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
