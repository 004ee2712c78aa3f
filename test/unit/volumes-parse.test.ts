import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import { parseMountFlag, parseTmpfsFlag, parseVolumeFlag } from '../../engine/volumes/mounts.js';
import {
  parseLocalDriverOptions,
  parseMode,
  parseSize,
  parseTmpfsOptions,
  tmpfsMountOptions,
  volumeNameProblem,
} from '../../engine/volumes/options.js';

const base = { baseDir: '/project', homeDir: '/home/dev' };

/** Asserts fn throws an invalid EngineError whose message contains every part. */
function rejects(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isEngineError(error), `not an EngineError: ${String(error)}`);
    for (const part of parts) assert.ok(error.message.includes(part), `${JSON.stringify(error.message)} lacks ${part}`);
    return true;
  });
}

describe('-v specs', () => {
  test('/ctr is an anonymous volume', () => {
    assert.deepEqual(parseVolumeFlag('/data/', base), {
      type: 'volume',
      target: '/data',
      readonly: false,
      nocopy: false,
      origin: '-v "/data/"',
      notes: [],
    });
  });

  test('name:/ctr[:opts] is a named volume', () => {
    const spec = parseVolumeFlag('db-data:/var/lib/db:ro,nocopy', base);
    assert.equal(spec.type, 'volume');
    assert.equal(spec.type === 'volume' && spec.source, 'db-data');
    assert.equal(spec.target, '/var/lib/db');
    assert.equal(spec.readonly, true);
    assert.equal(spec.type === 'volume' && spec.nocopy, true);
  });

  test('/host:/ctr is a bind created when missing, rprivate by default', () => {
    const spec = parseVolumeFlag('/srv/../srv/app:/app', base);
    assert.deepEqual(spec, {
      type: 'bind',
      source: '/srv/app',
      target: '/app',
      readonly: false,
      propagation: 'rprivate',
      createHostPath: true,
      origin: '-v "/srv/../srv/app:/app"',
      notes: [],
    });
  });

  test('./rel, ../rel, . and ~ resolve against the base and home dirs', () => {
    const source = (spec: string) => {
      const parsed = parseVolumeFlag(spec, base);
      assert.equal(parsed.type, 'bind');
      return parsed.type === 'bind' ? parsed.source : '';
    };
    assert.equal(source('./src:/app'), '/project/src');
    assert.equal(source('../shared:/shared'), '/shared');
    assert.equal(source('.:/app'), '/project');
    assert.equal(source('~/cache:/cache'), '/home/dev/cache');
    assert.equal(source('~:/root'), '/home/dev');
  });

  test('rw, ro, propagation and consistency options', () => {
    const rw = parseVolumeFlag('/h:/c:rw', base);
    assert.equal(rw.readonly, false);
    const shared = parseVolumeFlag('/h:/c:ro,rshared', base);
    assert.equal(shared.readonly, true);
    assert.equal(shared.type === 'bind' && shared.propagation, 'rshared');
    assert.equal(parseVolumeFlag('/h:/c:cached', base).type, 'bind');
    assert.equal(parseVolumeFlag('/h:/c:', base).readonly, false);
  });

  test(':z and :Z are accepted with a note', () => {
    const z = parseVolumeFlag('./src:/app:z', base);
    assert.deepEqual(z.notes, ['-v "./src:/app:z": SELinux relabeling (:z) is not supported by tsfig and was ignored']);
    assert.equal(parseVolumeFlag('vol:/v:Z,ro', base).notes.length, 1);
  });

  test('errors name the spec and the rule broken', () => {
    rejects(() => parseVolumeFlag('', base), '-v ""', 'empty');
    rejects(() => parseVolumeFlag('a:/b:ro:x', base), '-v "a:/b:ro:x"', 'too many ":"');
    rejects(() => parseVolumeFlag(':/data', base), 'source before ":" is empty');
    rejects(() => parseVolumeFlag('/data:ro', base), '"ro" is an option, not a container path');
    rejects(() => parseVolumeFlag('/data:rw,z', base), 'is an option');
    rejects(() => parseVolumeFlag('data', base), 'container path "data" must be absolute');
    rejects(() => parseVolumeFlag('vol:data', base), '-v "vol:data"', 'must be absolute');
    rejects(() => parseVolumeFlag('/h:/', base), 'cannot be /');
    rejects(() => parseVolumeFlag('/h:/proc/sys', base), '/proc');
    rejects(() => parseVolumeFlag('/h:/c:rx', base), 'unknown option "rx"', 'valid: rw, ro');
    rejects(() => parseVolumeFlag('/h:/c:ro,rw', base), 'options "ro" and "rw" conflict');
    rejects(() => parseVolumeFlag('/h:/c:shared,slave', base), 'conflict');
    rejects(() => parseVolumeFlag('/h:/c:nocopy', base), '"nocopy" applies to volumes');
    rejects(() => parseVolumeFlag('vol:/c:rshared', base), 'applies to bind mounts');
    rejects(() => parseVolumeFlag('my/vol:/c', base), 'path separator');
    rejects(() => parseVolumeFlag('a\\b:/c', base), 'path separator');
    rejects(() => parseVolumeFlag('x:/c', base), 'at least 2 characters');
    rejects(() => parseVolumeFlag('-x:/c', base), 'invalid characters');
    rejects(() => parseVolumeFlag('v@l:/c', base), 'invalid characters');
  });
});

describe('--mount specs', () => {
  test('type defaults to volume; src/dst aliases; readonly forms', () => {
    assert.deepEqual(parseMountFlag('source=cache,target=/cache,readonly', base), {
      type: 'volume',
      source: 'cache',
      target: '/cache',
      readonly: true,
      nocopy: false,
      origin: '--mount "source=cache,target=/cache,readonly"',
      notes: [],
    });
    assert.equal(parseMountFlag('type=volume,dst=/x,ro=false', base).readonly, false);
    const anon = parseMountFlag('type=volume,destination=/x,volume-nocopy', base);
    assert.equal(anon.type === 'volume' && anon.source, undefined);
    assert.equal(anon.type === 'volume' && anon.nocopy, true);
  });

  test('bind: no host path creation, propagation, relative source resolved', () => {
    const spec = parseMountFlag('type=bind,src=./conf,dst=/etc/app,bind-propagation=rslave,ro=1', base);
    assert.deepEqual(spec, {
      type: 'bind',
      source: '/project/conf',
      target: '/etc/app',
      readonly: true,
      propagation: 'rslave',
      createHostPath: false,
      origin: '--mount "type=bind,src=./conf,dst=/etc/app,bind-propagation=rslave,ro=1"',
      notes: [],
    });
  });

  test('volume labels and driver options, quoted fields', () => {
    const spec = parseMountFlag(
      'type=volume,src=scratch,dst=/s,volume-label=a=b,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"volume-opt=o=size=1m,mode=700",volume-driver=local',
      base,
    );
    assert.equal(spec.type, 'volume');
    if (spec.type !== 'volume') return;
    assert.deepEqual(spec.labels, { a: 'b' });
    assert.deepEqual(spec.driverOpts, { type: 'tmpfs', device: 'tmpfs', o: 'size=1m,mode=700' });
  });

  test('tmpfs size and mode', () => {
    const spec = parseMountFlag('type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770', base);
    assert.equal(spec.type, 'tmpfs');
    if (spec.type !== 'tmpfs') return;
    assert.equal(spec.tmpfs.size, String(64 * 1024 * 1024));
    assert.equal(spec.tmpfs.mode, 0o1770);
  });

  test('errors', () => {
    rejects(() => parseMountFlag('', base), '--mount ""', 'empty');
    rejects(() => parseMountFlag('type=bind,source=/a', base), 'target is required');
    rejects(() => parseMountFlag('type=bind,target=/a', base), 'source is required for a bind mount');
    rejects(() => parseMountFlag('type=npipe,target=/a', base), 'mount type "npipe" is not supported');
    rejects(() => parseMountFlag('type=volume,target=/a,foo=bar', base), 'unexpected key "foo"');
    rejects(() => parseMountFlag('type=volume,target', base), 'invalid field "target": must be a key=value pair');
    rejects(() => parseMountFlag('type=volume,=x,target=/a', base), 'must be a key=value pair');
    rejects(() => parseMountFlag('type=volume,target=/a,readonly=maybe', base), 'invalid value for readonly');
    rejects(() => parseMountFlag('type=volume,target=/a,bind-propagation=rshared', base), "cannot mix 'bind-*'");
    rejects(() => parseMountFlag('type=bind,src=/h,target=/a,volume-nocopy', base), "cannot mix 'volume-*'");
    rejects(() => parseMountFlag('type=bind,src=/h,target=/a,tmpfs-size=1m', base), "cannot mix 'tmpfs-*'");
    rejects(() => parseMountFlag('type=tmpfs,src=x,target=/a', base), 'takes no source');
    rejects(() => parseMountFlag('type=tmpfs,target=/a,tmpfs-size=lots', base), 'invalid tmpfs-size');
    rejects(() => parseMountFlag('type=tmpfs,target=/a,tmpfs-mode=999', base), 'invalid tmpfs-mode');
    rejects(
      () => parseMountFlag('type=bind,src=/h,target=/a,bind-propagation=weird', base),
      'invalid bind-propagation',
    );
    rejects(() => parseMountFlag('type=volume,src=/h,target=/a', base), 'is a host path; use type=bind');
    rejects(() => parseMountFlag('type=volume,src=a/b,target=/a', base), 'path separator');
    rejects(() => parseMountFlag('type=volume,target=/a,volume-driver=nfs', base), 'volume driver "nfs"');
    rejects(() => parseMountFlag('type=volume,target=/a,volume-opt=novalue', base), 'invalid volume-opt');
    rejects(
      () => parseMountFlag('type=volume,target=/a,volume-opt=type=nfs,volume-opt=device=x', base),
      'not supported',
    );
    rejects(
      () => parseMountFlag('type=volume,src=vol,target=/a,volume-subpath=../x', base),
      'subpath must be a relative path within the volume: "../x"',
    );
    rejects(() => parseMountFlag('type=volume,src=vol,target=/a,volume-subpath=/x', base), 'a relative path');
    rejects(() => parseMountFlag('type=bind,src=/h,target=/a,volume-subpath=x', base), 'volume-subpath');
    assert.equal(
      (parseMountFlag('type=volume,src=vol,target=/a,volume-subpath=./x/y/', base) as { subpath?: string }).subpath,
      'x/y',
    );
    rejects(() => parseMountFlag('type=volume,target=relative', base), 'must be absolute');
    rejects(() => parseMountFlag('type=volume,"target=/a', base), 'unterminated double quote');
  });
});

describe('--tmpfs specs', () => {
  test('path and options', () => {
    const spec = parseTmpfsFlag('/run:size=64k,mode=1777,exec,uid=1000');
    assert.equal(spec.target, '/run');
    assert.equal(spec.readonly, false);
    assert.deepEqual(tmpfsMountOptions(spec.tmpfs, spec.readonly, { noexec: true, nosuid: true, nodev: true }), [
      'nosuid',
      'nodev',
      'size=65536',
      'mode=1777',
      'uid=1000',
    ]);
    const ro = parseTmpfsFlag('/cache:ro');
    assert.equal(ro.readonly, true);
    assert.equal(parseTmpfsFlag('/x').tmpfs.size, undefined);
    assert.equal(parseTmpfsFlag('/x:size=50%').tmpfs.size, '50%');
  });

  test('errors', () => {
    rejects(() => parseTmpfsFlag('run'), '--tmpfs "run"', 'must be absolute');
    rejects(() => parseTmpfsFlag('/run:size=big'), 'invalid tmpfs size');
    rejects(() => parseTmpfsFlag('/run:mode=8'), 'invalid tmpfs mode');
    rejects(() => parseTmpfsFlag('/run:noatime'), 'unknown tmpfs option "noatime"');
    rejects(() => parseTmpfsFlag('/run:uid=abc'), 'invalid tmpfs option "uid=abc"');
    rejects(() => parseTmpfsFlag('/'), 'cannot be /');
  });
});

describe('volume names, sizes, modes, driver options', () => {
  test("docker's name rule", () => {
    for (const good of ['db', 'my_app.data-1', 'A1', '0x']) assert.equal(volumeNameProblem(good), undefined, good);
    for (const bad of ['', 'a', '.hidden', '_x', 'a b', 'a/b', '../etc', 'x'.repeat(256)]) {
      assert.notEqual(volumeNameProblem(bad), undefined, bad);
    }
  });

  test('sizes and modes', () => {
    assert.equal(parseSize('100m'), 100 * 1024 * 1024);
    assert.equal(parseSize('1.5g'), 1.5 * 1024 ** 3);
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('64KiB'), 65536);
    assert.equal(parseSize('0'), undefined);
    assert.equal(parseSize('-1'), undefined);
    assert.equal(parseSize('1x'), undefined);
    assert.equal(parseMode('1777'), 0o1777);
    assert.equal(parseMode('0755'), 0o755);
    assert.equal(parseMode('08'), undefined);
    assert.equal(parseMode('17777'), undefined);
  });

  test('tmpfs options parse into flags and data', () => {
    assert.deepEqual(parseTmpfsOptions('size=1m,nosuid,suid,ro,nr_inodes=1k', 'o'), {
      readonly: true,
      flags: { nosuid: false },
      size: '1048576',
      data: ['nr_inodes=1k'],
    });
  });

  test('local driver options as docker validates them', () => {
    assert.deepEqual(parseLocalDriverOptions({}), { kind: 'plain' });
    const tmpfs = parseLocalDriverOptions({ type: 'tmpfs', device: 'tmpfs', o: 'size=100m,uid=1000' });
    assert.equal(tmpfs.kind, 'tmpfs');
    assert.equal(tmpfs.tmpfs?.size, String(100 * 1024 * 1024));
    assert.deepEqual(parseLocalDriverOptions({ type: 'none', o: 'bind,ro', device: '/srv/data' }), {
      kind: 'bind',
      device: '/srv/data',
      bindFlags: ['ro'],
    });
    rejects(() => parseLocalDriverOptions({ foo: 'x' }), 'invalid volume option "foo"');
    rejects(() => parseLocalDriverOptions({ type: 'tmpfs' }), 'requires option "device"');
    rejects(() => parseLocalDriverOptions({ device: 'tmpfs' }), 'requires option "type"');
    rejects(() => parseLocalDriverOptions({ o: 'size=1m', type: 'tmpfs' }), 'requires option "device"');
    rejects(() => parseLocalDriverOptions({ type: 'tmpfs', device: 'tmpfs', o: 'size=huge' }), 'invalid tmpfs size');
    rejects(() => parseLocalDriverOptions({ type: 'tmpfs', device: 'tmpfs', o: 'sync' }), 'unknown tmpfs option');
    rejects(() => parseLocalDriverOptions({ type: 'none', device: '/x', o: 'ro' }), 'needs o=bind');
    rejects(() => parseLocalDriverOptions({ type: 'none', device: 'rel', o: 'bind' }), 'absolute host path');
    rejects(() => parseLocalDriverOptions({ type: 'none', device: '/x', o: 'bind,weird' }), 'unknown option "weird"');
    rejects(() => parseLocalDriverOptions({ type: 'nfs', device: ':/x', o: 'addr=1.2.3.4' }), 'volume type "nfs"');
    rejects(() => parseLocalDriverOptions({ size: '1g' }), 'quota');
  });
});
