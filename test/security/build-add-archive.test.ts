// Item 10 of issue #15 (the archives): `ADD archive.tar.gz /dest` extracts a local archive of the build context, and
// the builder decompressed it whole in memory, then copied each member once more, without any limit: a few hundred
// KiB of gzip in a repository's build context made the build take gigabytes. The archive is now decompressed and
// extracted as a stream into files of the build, and refused once its decompressed bytes pass
// TSFIG_BUILD_ADD_MAX_BYTES, at the step's Dockerfile line, naming the file, leaving nothing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeEntry, encodeHeader, endOfArchive, padding, type TarEntry } from '../../engine/layers/tar.js';
import { makeTestEngine, NEEDS_ROOT, type TestEngine } from '../helpers/engine.js';
import { buildWithPeakRss } from './helpers.js';

const MiB = 1024 * 1024;
const COMPRESSORS = { gz: 'gzip', bz2: 'bzip2', xz: 'xz', zst: 'zstd' } as const;

describe('Dockerfile ADD of a local archive', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;

  before(async () => {
    t = await makeTestEngine();
  });

  after(async () => {
    await t.cleanup();
  });

  /**
   * A compressed tar of one file of `size` zeros, written as concatenated members (gzip, bzip2, xz and zstd all
   * allow them): the compressed 16 MiB of zeros once, repeated. 512 MiB make 520 KiB of gzip.
   */
  function bomb(file: string, size: number, compressor: string): number {
    const compress = (input: Buffer): Buffer => execFileSync(compressor, ['-9', '-c'], { input, maxBuffer: 64 * MiB });
    const header = encodeHeader({ name: 'zeros', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0 }, size);
    const zeros = compress(Buffer.alloc(16 * MiB));
    const parts = [compress(header)];
    for (let left = size; left > 0; left -= 16 * MiB) parts.push(zeros);
    parts.push(compress(Buffer.concat([padding(size), endOfArchive()])));
    const bytes = Buffer.concat(parts);
    execFileSync('dd', [`of=${file}`, 'status=none'], { input: bytes });
    return bytes.length;
  }

  async function context(name: string, dockerfile: string): Promise<string> {
    const dir = path.join(t.dir, name);
    await mkdir(dir);
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile);
    return dir;
  }

  const build = (dir: string, tag: string, env: Record<string, string> = {}) => buildWithPeakRss(t, dir, tag, env);

  const state = (sub: string): string[] => {
    const dir = path.join(t.dir, 'root', sub);
    return existsSync(dir) ? readdirSync(dir).sort() : [];
  };

  /** Processes (other than this one's) whose command line names file: a decompressor left running. */
  function processesReading(file: string): string[] {
    const found: string[] = [];
    for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (argv.includes(file)) found.push(`${pid}: ${argv.join(' ')}`);
      } catch {
        // exited meanwhile
      }
    }
    return found;
  }

  test('an archive past the limit fails its step and leaves nothing; memory stays bounded either way', async (ctx) => {
    const normal = await build(
      await context('small', 'FROM tsfig/busybox\nCOPY Dockerfile /Dockerfile.copy\n'),
      'add/small',
    );
    assert.equal(normal.code, 0, normal.stderr);
    await t.cli(['image', 'rm', 'add/small']);
    const layers = state('layers');
    for (const [ext, compressor] of Object.entries(COMPRESSORS)) {
      // the gzip bomb is the big one: 512 MiB from 520 KiB; bzip2, xz and zstd get 256 MiB (from under 70 KiB)
      const size = (ext === 'gz' ? 512 : 256) * MiB;
      const dir = await context(`bomb-${ext}`, `FROM tsfig/busybox\nENV A=1\nADD bomb.tar.${ext} /opt/\n`);
      const file = path.join(dir, `bomb.tar.${ext}`);
      const compressed = bomb(file, size, compressor);
      assert.ok(compressed < 600 * 1024, `${ext}: ${compressed} bytes`);
      const result = await build(dir, 'hostile/bomb', { TSFIG_BUILD_ADD_MAX_BYTES: '32m' });
      ctx.diagnostic(
        `${ext}: ${compressed} bytes to ${size} bytes, peak RSS ${result.peakKiB} KiB (COPY: ${normal.peakKiB})`,
      );
      assert.notEqual(result.code, 0, `${ext}: ${result.stdout}`);
      assert.match(
        result.stderr,
        new RegExp(
          `Dockerfile:3:1: ADD bomb\\.tar\\.${ext}: the archive expands to more than the limit of 33554432 bytes`,
        ),
      );
      assert.match(result.stderr, /TSFIG_BUILD_ADD_MAX_BYTES/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
      // held whole, the archive alone would have taken its decompressed size (and the old reader twice that)
      const peakMiB = result.peakKiB / 1024;
      assert.ok(peakMiB < 200, `${ext}: peak RSS ${peakMiB.toFixed(0)} MiB for ${size / MiB} MiB decompressed`);
      assert.ok(
        result.peakKiB - normal.peakKiB < 48 * 1024,
        `${ext}: peak RSS ${result.peakKiB} KiB, a COPY build ${normal.peakKiB} KiB`,
      );
      assert.notEqual((await t.cli(['image', 'inspect', 'hostile/bomb'])).code, 0, 'no image was tagged');
      assert.deepEqual(state('layers'), layers, `${ext}: no layer was added`);
      assert.deepEqual(
        state('tmp').filter((name) => name.startsWith('add-')),
        [],
        `${ext}: no extracted file is left`,
      );
      assert.deepEqual(processesReading(file), [], `${ext}: no decompressor is left running`);
    }
    // under the limit (8 GiB by default) the same 256 MiB of xz extracts, in the same bounded memory
    const fits = await build(path.join(t.dir, 'bomb-xz'), 'add/fits');
    ctx.diagnostic(`xz under the limit: peak RSS ${fits.peakKiB} KiB`);
    assert.equal(fits.code, 0, fits.stderr);
    try {
      assert.ok(
        fits.peakKiB - normal.peakKiB < 48 * 1024,
        `peak RSS ${fits.peakKiB} KiB, a COPY build ${normal.peakKiB} KiB`,
      );
      const size = await t.cli(['container', 'run', '--rm', 'add/fits', 'stat', '-c', '%s', '/opt/zeros']);
      assert.equal(size.stdout, `${256 * MiB}\n`, size.stderr);
      assert.deepEqual(
        state('tmp').filter((name) => name.startsWith('add-')),
        [],
        'the extracted files are removed after the build',
      );
    } finally {
      await t.cli(['image', 'rm', 'add/fits']);
    }
  });

  test('a damaged archive fails its step and leaves nothing; a compressed file that is no tar is copied', async () => {
    const dir = await context('damaged', 'FROM tsfig/busybox\nADD notes.gz /notes.gz\nADD cut.tar.gz /opt/\n');
    const tree = path.join(t.dir, 'damaged-tree');
    await mkdir(tree);
    await writeFile(path.join(tree, 'first'), 'first\n');
    execFileSync('dd', ['if=/dev/urandom', `of=${path.join(tree, 'random')}`, 'bs=64k', 'count=16', 'status=none']);
    const whole = execFileSync('tar', ['-cz', '-C', tree, 'first', 'random'], { maxBuffer: 16 * MiB });
    await writeFile(path.join(dir, 'cut.tar.gz'), whole.subarray(0, whole.length / 2));
    await writeFile(path.join(dir, 'notes.gz'), execFileSync('gzip', ['-c'], { input: 'just text\n' }));
    const result = await build(dir, 'add/damaged');
    assert.notEqual(result.code, 0, result.stdout);
    assert.match(result.stderr, /Dockerfile:3:1: ADD cut\.tar\.gz: cannot extract the archive: /);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    assert.notEqual((await t.cli(['image', 'inspect', 'add/damaged'])).code, 0, 'no image was tagged');
    assert.deepEqual(
      state('tmp').filter((name) => name.startsWith('add-')),
      [],
      'no extracted file is left',
    );
    // without the damaged one, the gzip of text is copied as it is (Docker does the same)
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM tsfig/busybox\nADD notes.gz /notes.gz\n');
    const copied = await build(dir, 'add/notes');
    assert.equal(copied.code, 0, copied.stderr);
    try {
      const text = await t.cli(['container', 'run', '--rm', 'add/notes', 'sh', '-c', 'gzip -dc /notes.gz']);
      assert.equal(text.stdout, 'just text\n', text.stderr);
    } finally {
      await t.cli(['image', 'rm', 'add/notes']);
    }
  });

  test('a normal archive still extracts, with its owners, modes and links, confined to the image', async () => {
    // a host directory that an absolute link in the archive names: nothing may reach it
    const host = path.join(t.dir, 'host-target');
    await mkdir(host);
    const tree = path.join(t.dir, 'tree');
    await mkdir(path.join(tree, 'app', 'bin'), { recursive: true });
    await writeFile(path.join(tree, 'app', 'bin', 'tool'), '#!/bin/sh\necho tool\n');
    await writeFile(path.join(tree, 'app', 'secret'), 'secret\n');
    await chown(path.join(tree, 'app'), 1234, 5678);
    await chmod(path.join(tree, 'app'), 0o750);
    await chown(path.join(tree, 'app', 'bin', 'tool'), 1000, 100);
    await chmod(path.join(tree, 'app', 'bin', 'tool'), 0o4751);
    await chown(path.join(tree, 'app', 'secret'), 0, 42);
    await chmod(path.join(tree, 'app', 'secret'), 0o640);
    await link(path.join(tree, 'app', 'secret'), path.join(tree, 'app', 'hard'));
    await symlink('bin/tool', path.join(tree, 'app', 'rel'));
    await symlink('/etc/passwd', path.join(tree, 'app', 'abs'));
    await symlink(host, path.join(tree, 'app', 'out'));
    const lines = ['FROM tsfig/busybox'];
    const dir = await context('normal', '');
    for (const ext of ['tar', ...Object.keys(COMPRESSORS)]) {
      const file = path.join(dir, `app.${ext}`);
      const flag = { tar: [], gz: ['-z'], bz2: ['-j'], xz: ['-J'], zst: ['--zstd'] }[ext] ?? [];
      execFileSync('tar', ['-c', ...flag, '-f', file, '--numeric-owner', '-C', tree, 'app']);
      lines.push(`ADD app.${ext} /x/${ext}/`);
    }
    await writeFile(path.join(dir, 'Dockerfile'), `${lines.join('\n')}\n`);
    const result = await build(dir, 'add/normal', { TSFIG_BUILD_ADD_MAX_BYTES: '32m' });
    assert.equal(result.code, 0, result.stderr);
    try {
      for (const ext of ['tar', ...Object.keys(COMPRESSORS)]) {
        const root = `/x/${ext}/app`;
        const listing = await t.cli([
          'container',
          'run',
          '--rm',
          'add/normal',
          'sh',
          '-c',
          `cd ${root} && stat -c '%n %u:%g %a %h %F' . bin bin/tool secret hard && for l in rel abs out; do readlink $l; done && ` +
            // abs and out resolve in the container's root: its /etc/passwd, and no host-target there
            `./rel && head -1 abs && cat hard && if ls out/ 2>/dev/null; then echo host; else echo confined; fi`,
        ]);
        assert.equal(listing.code, 0, `${ext}: ${listing.stderr}`);
        assert.equal(
          listing.stdout,
          [
            '. 1234:5678 750 3 directory',
            'bin 0:0 755 2 directory',
            'bin/tool 1000:100 4751 1 regular file',
            'secret 0:42 640 2 regular file',
            'hard 0:42 640 2 regular file',
            'bin/tool',
            '/etc/passwd',
            host,
            'tool',
            'root:x:0:0:root:/root:/bin/sh',
            'secret',
            'confined',
            '',
          ].join('\n'),
          ext,
        );
      }
      assert.deepEqual(readdirSync(host), [], 'nothing was written on the host through a link');
      assert.deepEqual(
        state('tmp').filter((name) => name.startsWith('add-')),
        [],
        'the extracted files are removed after the build',
      );
    } finally {
      await t.cli(['image', 'rm', 'add/normal']);
    }
  });

  test("a member below the archive's own link to a directory it does not make fails naming the link; one it makes works", async () => {
    const base = { mode: 0o755, uid: 0, gid: 0, mtime: 0 };
    const tarOf = (entries: TarEntry[]): Buffer => Buffer.concat([...entries.map(encodeEntry), endOfArchive()]);
    const member = { ...base, name: 'link/evil', type: 'file', mode: 0o644, data: Buffer.from('evil\n') } as const;
    const dir = await context('own-link', 'FROM tsfig/busybox\nADD hostile.tar /app/\n');
    // `link -> /etc`, then `link/evil`: the image's /etc is in a layer below, not in the step's
    await writeFile(
      path.join(dir, 'hostile.tar'),
      tarOf([{ ...base, name: 'link', type: 'symlink', linkname: '/etc' }, member]),
    );
    const layers = state('layers');
    const result = await build(dir, 'add/own-link');
    assert.notEqual(result.code, 0, result.stdout);
    assert.match(
      result.stderr,
      /^error: Dockerfile:2:1: ADD hostile\.tar: the archive's member "link\/evil" is below \/app\/link, a symbolic link the archive makes to \/etc, which is not a directory the archive makes$/m,
    );
    assert.match(result.stderr, /^hint: the step's layer holds only the archive's files/m);
    assert.doesNotMatch(result.stderr, /native helper|space left|\n\s+at /);
    assert.notEqual((await t.cli(['image', 'inspect', 'add/own-link'])).code, 0, 'no image was tagged');
    assert.deepEqual(state('layers'), layers, 'no layer was added');
    // a link to a directory the archive makes (absolute: from the layer's root; or relative) holds members
    await writeFile(
      path.join(dir, 'hostile.tar'),
      tarOf([
        { ...base, name: 'real', type: 'dir' },
        { ...base, name: 'link', type: 'symlink', linkname: '/app/real' },
        { ...base, name: 'rel', type: 'symlink', linkname: 'real' },
        member,
        { ...member, name: 'rel/second' },
      ]),
    );
    const fine = await build(dir, 'add/own-link');
    assert.equal(fine.code, 0, fine.stderr);
    try {
      const read = await t.cli([
        'container',
        'run',
        '--rm',
        'add/own-link',
        'cat',
        '/app/real/evil',
        '/app/real/second',
      ]);
      assert.equal(read.stdout, 'evil\nevil\n', read.stderr);
      const etc = await t.cli(['container', 'run', '--rm', 'add/own-link', 'ls', '/etc']);
      assert.doesNotMatch(etc.stdout, /evil/);
    } finally {
      await t.cli(['image', 'rm', 'add/own-link']);
    }
  });
});
