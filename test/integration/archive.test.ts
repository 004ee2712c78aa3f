import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, test, type TestContext } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import { loadImages, saveImages, type ArchiveFormat } from '../../engine/images/archive.js';
import { commitContainer, exportContainer } from '../../engine/images/container-archive.js';
import { Command } from 'commander';
import { registerArchiveCommands } from '../../src/cli/commands/archive.js';
import { registerComposeArchiveCommands } from '../../src/cli/compose/archive-commands.js';
import { registerUpDown } from '../../src/cli/compose/up.js';
import { addGlobalOptions } from '../../src/cli/global-options.js';
import { makeTestEngine, skipUnlessRoot, type TestEngine } from '../helpers/engine.js';

// Image archives against a real engine root (as root): save → rm → load round trips in both formats, archives that
// are tampered with or escape are refused with the store untouched, and commit/export of a container.

const IMAGE = 'tsfig/busybox:latest';

async function engineFor(t: TestContext): Promise<TestEngine> {
  const te = await makeTestEngine();
  t.after(() => te.cleanup());
  return te;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp('/tmp/tsfig-it-archive-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function saveTo(te: TestEngine, refs: string[], file: string, format: ArchiveFormat): Promise<void> {
  const out = createWriteStream(file);
  await saveImages(te.engine.images, refs, out, { format });
  out.end();
  await once(out, 'close');
}

/** Every name under the store's refs/layers/blobs/images, and refs.json's text. */
async function storeSnapshot(te: TestEngine): Promise<string[]> {
  const root = te.engine.paths.root;
  const names: string[] = [];
  for (const sub of ['layers', 'blobs', 'images']) {
    const dir = path.join(root, sub);
    if (!existsSync(dir)) continue;
    for (const name of await readdir(dir, { recursive: true })) names.push(`${sub}/${name}`);
  }
  names.sort();
  names.push(await readFile(te.engine.paths.refsFile, 'utf8').catch(() => '<no refs.json>'));
  return names;
}

interface Member {
  name: string;
  flag: string;
  header: number;
  data: number;
  size: number;
}

/** The members of a plain (ustar) tar in memory. */
function members(tar: Buffer): Member[] {
  const list: Member[] = [];
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const block = tar.subarray(offset, offset + 512);
    if (block.every((b) => b === 0)) break;
    const name = block.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(block.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
    list.push({ name, flag: String.fromCharCode(block[156] ?? 0), header: offset, data: offset + 512, size });
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return list;
}

function checksum(block: Buffer): void {
  block.write('        ', 148, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
}

/** A ustar member (header + data + padding). */
function member(name: string, data: Buffer): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 'utf8');
  block.write('0000644\0', 100, 'ascii');
  block.write('0000000\0', 108, 'ascii');
  block.write('0000000\0', 116, 'ascii');
  block.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  block.write('00000000000\0', 136, 'ascii');
  block.write('0', 156, 'ascii');
  block.write('ustar\x0000', 257, 'ascii');
  checksum(block);
  return Buffer.concat([block, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

async function expectRefused(te: TestEngine, archive: Buffer, pattern: RegExp): Promise<void> {
  const before = await storeSnapshot(te);
  await assert.rejects(loadImages(te.engine.images, Readable.from([archive])), (error: unknown) => {
    assert.ok(isEngineError(error, 'invalid'), String(error));
    assert.match((error as Error).message, pattern);
    return true;
  });
  assert.deepEqual(await storeSnapshot(te), before, 'a refused archive changes nothing in the store');
  assert.deepEqual(await readdir(path.join(te.engine.paths.root, 'tmp')), [], 'no temp files are left');
}

describe('image archives', () => {
  for (const format of ['docker', 'oci'] as const) {
    test(`save → rm → load round-trips to the same image id (${format})`, async (t) => {
      if (skipUnlessRoot(t)) return;
      const te = await engineFor(t);
      const dir = await tempDir(t);
      const image = await te.engine.images.resolve(IMAGE);
      const file = path.join(dir, 'busybox.tar');
      await saveTo(te, [IMAGE], file, format);
      const names = members(await readFile(file)).map((m) => m.name);
      assert.ok(names.includes('index.json') && names.includes('oci-layout'), names.join(' '));
      assert.equal(names.includes('manifest.json'), format === 'docker');
      for (const diffId of image.diffIds) assert.ok(names.includes(`blobs/sha256/${diffId.slice(7)}`));

      // the same image saved twice gives the same bytes
      const again = path.join(dir, 'again.tar');
      await saveTo(te, [IMAGE], again, format);
      assert.ok((await readFile(file)).equals(await readFile(again)), 'save is deterministic');

      await te.engine.images.remove(IMAGE);
      await assert.rejects(te.engine.images.resolve(IMAGE));
      const loaded = await loadImages(te.engine.images, createReadStream(file));
      assert.deepEqual(loaded, [{ id: image.id, tags: [IMAGE] }]);
      assert.equal((await te.engine.images.resolve(IMAGE)).id, image.id);
      // loading again changes nothing
      assert.deepEqual(await loadImages(te.engine.images, createReadStream(file)), loaded);
      // the loaded image runs
      const run = await runIn(te, IMAGE, ['sh', '-c', 'echo hello from $(basename $(readlink -f /bin/sh))']);
      assert.deepEqual(run, { exitCode: 0, stdout: 'hello from busybox\n' });
    });
  }

  test('a tampered layer is refused with nothing written', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await engineFor(t);
    const dir = await tempDir(t);
    const image = await te.engine.images.resolve(IMAGE);
    const file = path.join(dir, 'busybox.tar');
    await saveTo(te, [IMAGE], file, 'docker');
    await te.engine.images.remove(IMAGE);
    const tar = await readFile(file);
    const layerName = `blobs/sha256/${(image.diffIds[0] ?? '').slice(7)}`;
    const layer = members(tar).find((m) => m.name === layerName);
    assert.ok(layer !== undefined);
    // flip a byte of a file's content inside the layer
    const tampered = Buffer.from(tar);
    const inner = members(tar.subarray(layer.data, layer.data + layer.size)).find((m) => m.flag === '0' && m.size > 64);
    assert.ok(inner !== undefined);
    const at = layer.data + inner.data + 7;
    tampered[at] = (tampered[at] ?? 0) ^ 0xff;
    await expectRefused(te, tampered, new RegExp(`"${layerName}" does not match its digest`));

    // the same layer also renamed to its new digest: the DiffID of the config catches it
    await writeFile(path.join(dir, 'tampered.tar'), tampered);
    const repacked = repackWithRenamedLayer(tampered, layer, dir);
    await expectRefused(te, repacked, /does not match the image's DiffID/);
  });

  test('an archive entry that escapes the archive is refused with nothing written', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await engineFor(t);
    const dir = await tempDir(t);
    const file = path.join(dir, 'busybox.tar');
    await saveTo(te, [IMAGE], file, 'oci');
    await te.engine.images.remove(IMAGE);
    const tar = await readFile(file);
    const end = members(tar).reduce((max, m) => Math.max(max, m.data + Math.ceil(m.size / 512) * 512), 0);
    const evil = Buffer.concat([tar.subarray(0, end), member('../escape', Buffer.from('owned\n')), Buffer.alloc(1024)]);
    await expectRefused(te, evil, /archive entry "\.\.\/escape" escapes the archive/);
    assert.ok(!existsSync(path.join(te.engine.paths.root, '..', 'escape')));
    assert.ok(!existsSync(path.join(process.cwd(), '..', 'escape')));
  });
});

describe('hand-made archives', () => {
  const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

  test('a legacy docker save layout (<id>/layer.tar, <hex>.json, a symlinked layer) and a gzip archive load', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await engineFor(t);
    const image = await te.engine.images.resolve(IMAGE);
    const dir = await tempDir(t);
    const file = path.join(dir, 'busybox.tar');
    await saveTo(te, [IMAGE], file, 'docker');
    const tar = await readFile(file);
    const body = (name: string): Buffer => {
      const m = members(tar).find((candidate) => candidate.name === name);
      assert.ok(m !== undefined, name);
      return tar.subarray(m.data, m.data + m.size);
    };
    const config = body(`blobs/sha256/${image.id.slice(7)}`);
    const layer = body(`blobs/sha256/${(image.diffIds[0] ?? '').slice(7)}`);
    const symlink = Buffer.alloc(512);
    symlink.write('other/layer.tar', 0, 'utf8');
    symlink.write('0000777\0', 100, 'ascii');
    symlink.write('0000000\0', 108, 'ascii');
    symlink.write('0000000\0', 116, 'ascii');
    symlink.write('00000000000\0', 124, 'ascii');
    symlink.write('00000000000\0', 136, 'ascii');
    symlink.write('2', 156, 'ascii');
    symlink.write('../aaaa/layer.tar', 157, 'utf8');
    symlink.write('ustar\x0000', 257, 'ascii');
    checksum(symlink);
    const legacy = Buffer.concat([
      member('aaaa/layer.tar', layer),
      symlink,
      member(`${image.id.slice(7)}.json`, config),
      member(
        'manifest.json',
        Buffer.from(
          JSON.stringify([
            { Config: `${image.id.slice(7)}.json`, RepoTags: ['tsfig/legacy:1'], Layers: ['other/layer.tar'] },
          ]),
        ),
      ),
      Buffer.alloc(1024),
    ]);
    assert.deepEqual(await loadImages(te.engine.images, Readable.from([legacy])), [
      { id: image.id, tags: ['tsfig/legacy:1'] },
    ]);
    await te.engine.images.remove('tsfig/legacy:1');
    await te.engine.images.remove(IMAGE);
    assert.deepEqual(await loadImages(te.engine.images, Readable.from([gzipSync(tar)])), [
      { id: image.id, tags: [IMAGE] },
    ]);
  });

  test('a layer with an entry climbing out of the root is refused before anything is stored', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await engineFor(t);
    const layer = Buffer.concat([
      member('ok.txt', Buffer.from('fine\n')),
      member('../../evil', Buffer.from('x')),
      Buffer.alloc(1024),
    ]);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] },
      }),
    );
    const archive = Buffer.concat([
      member(`blobs/sha256/${sha(layer)}`, layer),
      member(`blobs/sha256/${sha(config)}`, config),
      member(
        'manifest.json',
        Buffer.from(
          JSON.stringify([
            {
              Config: `blobs/sha256/${sha(config)}`,
              RepoTags: ['tsfig/evil:1'],
              Layers: [`blobs/sha256/${sha(layer)}`],
            },
          ]),
        ),
      ),
      Buffer.alloc(1024),
    ]);
    await expectRefused(te, archive, /has an entry that escapes the root: \.\.\/\.\.\/evil/);
  });
});

/** tar with the layer at `layer` renamed to its (new) content digest, in manifest.json and the blob name. */
function repackWithRenamedLayer(tar: Buffer, layer: Member, dir: string): Buffer {
  const data = tar.subarray(layer.data, layer.data + layer.size);
  const newHex = createHash('sha256').update(data).digest('hex');
  const oldHex = layer.name.slice('blobs/sha256/'.length);
  const parts: Buffer[] = [];
  for (const m of members(tar)) {
    const body = tar.subarray(m.data, m.data + m.size);
    if (m.name.endsWith('/')) continue;
    if (m.name === layer.name) parts.push(member(`blobs/sha256/${newHex}`, Buffer.from(body)));
    else if (m.name === 'manifest.json')
      parts.push(member(m.name, Buffer.from(body.toString().replace(oldHex, newHex))));
    else parts.push(member(m.name, Buffer.from(body)));
  }
  void dir;
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

/** Runs a container of image to its exit; its exit code and stdout. */
async function runIn(te: TestEngine, image: string, cmd: string[]): Promise<{ exitCode: number; stdout: string }> {
  const record = await te.engine.containers.create(cmd.length > 0 ? { image, cmd } : { image });
  try {
    await te.engine.containers.start(record.id);
    const exitCode = await te.engine.containers.wait(record.id, { timeoutMs: 30_000 });
    let stdout = '';
    for await (const entry of te.engine.containers.logs(record.id)) if (entry.stream === 'stdout') stdout += entry.text;
    return { exitCode, stdout };
  } finally {
    await te.engine.containers.remove(record.id, { force: true });
  }
}

/** A container of busybox that wrote /srv/new.txt and deleted /bin/vi (stopped, not removed). */
async function changedContainer(te: TestEngine, t: TestContext): Promise<string> {
  const record = await te.engine.containers.create({
    image: IMAGE,
    cmd: ['sh', '-c', 'mkdir -p /srv && echo committed > /srv/new.txt && rm /bin/vi && test ! -e /bin/vi'],
  });
  t.after(() => te.engine.containers.remove(record.id, { force: true }).catch(() => undefined));
  await te.engine.containers.start(record.id);
  assert.equal(await te.engine.containers.wait(record.id, { timeoutMs: 30_000 }), 0);
  return record.id;
}

describe('container commit and export', () => {
  test('a committed container runs with its new file and without the deleted one', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await engineFor(t);
    const id = await changedContainer(te, t);
    const base = await te.engine.images.resolve(IMAGE);
    const image = await commitContainer(te.engine, id, {
      reference: 'tsfig/committed:v1',
      changes: ['ENV COMMITTED=yes', 'CMD ["cat", "/srv/new.txt"]'],
      message: 'added a file',
      author: 'tester',
    });
    assert.deepEqual(image.repoTags, ['tsfig/committed:v1']);
    assert.deepEqual(image.diffIds.slice(0, -1), base.diffIds);
    assert.equal(image.diffIds.length, base.diffIds.length + 1);
    assert.ok(image.config.config?.Env?.includes('COMMITTED=yes'));
    assert.deepEqual(image.config.config?.Cmd, ['cat', '/srv/new.txt']);
    assert.equal(image.config.history?.at(-1)?.comment, 'added a file');
    assert.equal((image.config as { author?: string }).author, 'tester');

    assert.deepEqual(await runIn(te, 'tsfig/committed:v1', []), { exitCode: 0, stdout: 'committed\n' });
    const check = await runIn(te, 'tsfig/committed:v1', [
      'sh',
      '-c',
      'test -e /bin/vi && echo vi-present; test -e /bin/ls && echo ls-present; echo $COMMITTED; ls /etc/hosts',
    ]);
    assert.equal(check.stdout, 'ls-present\nyes\n/etc/hosts\n');

    // the layer tar has a whiteout for /bin/vi and no mount stubs
    const dir = await tempDir(t);
    const file = path.join(dir, 'committed.tar');
    await saveTo(te, ['tsfig/committed:v1'], file, 'docker');
    const top = `blobs/sha256/${(image.diffIds.at(-1) ?? '').slice(7)}`;
    execFileSync('tar', ['-xf', file, '-C', dir, top]);
    const listing = execFileSync('tar', ['-tf', path.join(dir, top)], { encoding: 'utf8' }).split('\n');
    assert.ok(listing.includes('bin/.wh.vi'), listing.join(' '));
    assert.ok(listing.includes('srv/new.txt'), listing.join(' '));
    assert.ok(!listing.includes('etc/hosts'), "the runtime's mount stubs are not committed");

    // a bad --change adds nothing
    const before = await storeSnapshot(te);
    await assert.rejects(commitContainer(te.engine, id, { changes: ['BOGUS x'] }));
    assert.deepEqual(await storeSnapshot(te), before);
  });

  test('export gives the merged tree as a flat tar without whiteouts', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await engineFor(t);
    const id = await changedContainer(te, t);
    const dir = await tempDir(t);
    const file = path.join(dir, 'export.tar');
    const out = createWriteStream(file);
    await exportContainer(te.engine, id, out);
    out.end();
    await once(out, 'close');
    const listing = execFileSync('tar', ['-tf', file], { encoding: 'utf8' })
      .split('\n')
      .map((name) => name.replace(/^\.\//, ''));
    assert.ok(listing.includes('bin/ls'), 'a file of the image');
    assert.ok(listing.includes('srv/new.txt'), "the container's new file");
    assert.ok(!listing.includes('bin/vi'), 'the deleted file is absent');
    assert.ok(!listing.some((name) => name.split('/').at(-1)?.startsWith('.wh.')), 'no whiteout markers');
    const content = execFileSync('tar', ['-xOf', file, './srv/new.txt'], { encoding: 'utf8' });
    assert.equal(content, 'committed\n');
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    assert.ok(!mounts.includes(te.dir), 'no mount is left');
  });
});

function installed(binary: string): boolean {
  return ['/usr/bin', '/usr/local/bin', '/usr/sbin'].some((dir) => existsSync(path.join(dir, binary)));
}

describe('interoperability with skopeo and umoci', () => {
  test('skopeo and umoci read the layouts tsfig writes; tsfig loads what skopeo writes', async (t) => {
    if (skipUnlessRoot(t)) return;
    const missing = ['skopeo', 'umoci'].filter((binary) => !installed(binary));
    if (missing.length > 0) {
      t.skip(`${missing.join(' and ')} not installed (apt-get install -y skopeo umoci; scripts/setup.sh does)`);
      return;
    }
    const te = await engineFor(t);
    const dir = await tempDir(t);
    const image = await te.engine.images.resolve(IMAGE);
    const oci = path.join(dir, 'oci.tar');
    const docker = path.join(dir, 'docker.tar');
    await saveTo(te, [IMAGE], oci, 'oci');
    await saveTo(te, [IMAGE], docker, 'docker');

    for (const transport of [`oci-archive:${oci}`, `oci-archive:${oci}:latest`, `docker-archive:${docker}`]) {
      const inspected = JSON.parse(execFileSync('skopeo', ['inspect', transport], { encoding: 'utf8' })) as {
        Layers: string[];
        Os: string;
      };
      assert.deepEqual(inspected.Layers, image.diffIds, transport);
      assert.equal(inspected.Os, 'linux');
      const config = execFileSync('skopeo', ['inspect', '--config', '--raw', transport]);
      assert.equal(`sha256:${createHash('sha256').update(config).digest('hex')}`, image.id, transport);
    }
    const layout = path.join(dir, 'layout');
    execFileSync('mkdir', [layout]);
    execFileSync('tar', ['-xf', oci, '-C', layout]);
    assert.deepEqual(execFileSync('umoci', ['ls', '--layout', layout], { encoding: 'utf8' }).trim().split('\n'), [
      'latest',
    ]);
    const stat = execFileSync('umoci', ['stat', '--image', `${layout}:latest`], { encoding: 'utf8' });
    assert.ok(stat.includes(image.diffIds[0] ?? '-'), stat);

    // skopeo's own OCI archive, layers gzip-compressed, tagged by ref.name: loaded as the same image
    const theirs = path.join(dir, 'skopeo.tar');
    execFileSync(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--dest-compress',
        '--dest-compress-format',
        'gzip',
        `oci-archive:${oci}`,
        `oci-archive:${theirs}:tsfig/from-skopeo:v2`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const loaded = await loadImages(te.engine.images, createReadStream(theirs));
    assert.deepEqual(loaded, [{ id: image.id, tags: ['tsfig/from-skopeo:v2'] }]);
    assert.deepEqual(await runIn(te, 'tsfig/from-skopeo:v2', ['echo', 'ok']), { exitCode: 0, stdout: 'ok\n' });
  });
});

/** Runs the archive and compose commands in-process against te's root; stdout as text. */
async function cli(te: TestEngine, args: string[]): Promise<string> {
  const saved = {
    root: process.env.TSFIG_ROOT,
    run: process.env.TSFIG_RUN_ROOT,
    write: process.stdout.write.bind(process.stdout),
  };
  process.env.TSFIG_ROOT = te.env.TSFIG_ROOT;
  process.env.TSFIG_RUN_ROOT = te.env.TSFIG_RUN_ROOT;
  let stdout = '';
  process.stdout.write = (chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  };
  try {
    const program = addGlobalOptions(new Command('tsfig').exitOverride().enablePositionalOptions());
    registerArchiveCommands(program);
    registerComposeArchiveCommands(program);
    registerUpDown(program);
    await program.parseAsync(['node', 'tsfig', ...args]);
    return stdout;
  } finally {
    process.stdout.write = saved.write;
    if (saved.root === undefined) delete process.env.TSFIG_ROOT;
    else process.env.TSFIG_ROOT = saved.root;
    if (saved.run === undefined) delete process.env.TSFIG_RUN_ROOT;
    else process.env.TSFIG_RUN_ROOT = saved.run;
  }
}

describe('archive CLI', () => {
  test('image save -o / load -i, container commit and export -o', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await engineFor(t);
    const dir = await tempDir(t);
    const image = await te.engine.images.resolve(IMAGE);
    const file = path.join(dir, 'saved.tar');
    await cli(te, ['image', 'save', '--format', 'oci', '-o', file, IMAGE]);
    assert.deepEqual((await readdir(dir)).sort(), ['saved.tar'], 'no temp file is left next to the output');
    await te.engine.images.remove(IMAGE);
    assert.equal(await cli(te, ['image', 'load', '-i', file]), `Loaded image: ${IMAGE}\n`);
    assert.equal(await cli(te, ['image', 'load', '-q', '-i', file]), '');
    assert.equal((await te.engine.images.resolve(IMAGE)).id, image.id);
    await assert.rejects(cli(te, ['image', 'save', '--format', 'zip', '-o', file, IMAGE]), /invalid --format/);
    await assert.rejects(cli(te, ['image', 'save', '-o', path.join(dir, 'x.tar'), 'no/such:image']), /no such image/);
    assert.ok(!existsSync(path.join(dir, 'x.tar')));

    const id = await changedContainer(te, t);
    const committed = (
      await cli(te, ['container', 'commit', '-c', 'CMD ["cat", "/srv/new.txt"]', '-m', 'cli', id, 'tsfig/cli:1'])
    ).trim();
    assert.equal((await te.engine.images.resolve('tsfig/cli:1')).id, committed);
    assert.deepEqual(await runIn(te, 'tsfig/cli:1', []), { exitCode: 0, stdout: 'committed\n' });
    const exported = path.join(dir, 'export.tar');
    await cli(te, ['container', 'export', '-o', exported, id]);
    assert.equal(execFileSync('tar', ['-xOf', exported, './srv/new.txt'], { encoding: 'utf8' }), 'committed\n');
  });
});

describe('compose commit and export', () => {
  test('tsfig commit SERVICE and tsfig export SERVICE pick the container by --index', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await engineFor(t);
    const dir = await tempDir(t);
    const compose = path.join(dir, 'compose.yaml');
    await writeFile(
      compose,
      [
        'name: archtest',
        'services:',
        '  web:',
        '    image: tsfig/busybox:latest',
        '    network_mode: none',
        '    command: ["sh", "-c", "mkdir -p /srv && echo from-$$(hostname) > /srv/new.txt && exec sleep 3600"]',
        '',
      ].join('\n'),
    );
    const project = ['--progress', 'quiet', '-f', compose];
    await cli(te, [...project, 'up', '-d']);
    t.after(() => cli(te, [...project, 'down', '-t', '0']).catch(() => undefined));
    const [web] = (await te.engine.containers.list({ all: true })).filter((c) => c.name.includes('web'));
    assert.ok(web !== undefined);
    await eventuallyFile(te, web.id);

    const dry = await cli(te, [...project, 'commit', '--dry-run', 'web', 'tsfig/web:dry']);
    assert.match(dry, /^# commit container \S+-web-1 \(tsfig commit: its changes as tsfig\/web:dry\)\n/);
    await assert.rejects(te.engine.images.resolve('tsfig/web:dry'), /no such image|not found/i);
    const id = (await cli(te, [...project, 'commit', '-m', 'snap', 'web', 'tsfig/web:snap'])).trim();
    assert.equal((await te.engine.images.resolve('tsfig/web:snap')).id, id);
    const out = await runIn(te, 'tsfig/web:snap', ['cat', '/srv/new.txt']);
    assert.equal(out.exitCode, 0);
    assert.match(out.stdout, /^from-/);

    const file = path.join(dir, 'web.tar');
    await cli(te, [...project, 'export', '-o', file, 'web']);
    assert.match(execFileSync('tar', ['-xOf', file, './srv/new.txt'], { encoding: 'utf8' }), /^from-/);
    await assert.rejects(cli(te, [...project, 'export', '--index', '2', '-o', file, 'web']), /no container number 2/);
    await assert.rejects(cli(te, [...project, 'commit', 'nosuch']), /no such service/);
  });
});

/** Waits until the container wrote /srv/new.txt in its upper dir. */
async function eventuallyFile(te: TestEngine, id: string): Promise<void> {
  const file = path.join(te.engine.paths.containers, id, 'upper', 'srv', 'new.txt');
  for (let i = 0; i < 200 && !existsSync(file); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.ok(existsSync(file), 'the service wrote its file');
}
