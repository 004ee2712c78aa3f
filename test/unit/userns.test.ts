import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runtimeConfEntries, type ShiftPlan } from '../../engine/containers/runtime-config.js';
import { joinLowerdir, splitLowerdir } from '../../engine/containers/shift.js';
import type { ContainerRecord } from '../../engine/containers/types.js';
import { firstFree, parseSubordinate } from '../../engine/containers/userns.js';
import { renderRuntimeConf } from '../../engine/runtime/conf.js';
import { defaultUserns, parseUsernsMode } from '../../src/userns.js';

test('parseSubordinate: the lines of one user, by name or uid; bad lines skipped', () => {
  const text =
    '# comment\ntsfig-rl:100000:65536\ncontainers:2147483647:2147483648\n1001:500000:65536\ncontainers:x:1\n';
  assert.deepEqual(parseSubordinate(text, 'containers'), [{ start: 2147483647, count: 2147483648 }]);
  assert.deepEqual(parseSubordinate(text, 'bob', 1001), [{ start: 500000, count: 65536 }]);
  assert.deepEqual(parseSubordinate(text, 'nobody'), []);
});

test('firstFree: the first aligned block that overlaps no taken range, across the ranges', () => {
  const available = [
    { start: 100000, count: 131072 },
    { start: 1000000, count: 65536 },
  ];
  assert.equal(firstFree(available, [], 65536), 100000);
  assert.equal(firstFree(available, [{ start: 100000, count: 65536 }], 65536), 165536);
  assert.equal(
    firstFree(
      available,
      [
        { start: 100000, count: 65536 },
        { start: 165536, count: 65536 },
      ],
      65536,
    ),
    1000000,
  );
  // a taken range that overlaps a block partly makes it unusable
  assert.equal(firstFree([{ start: 100000, count: 131072 }], [{ start: 150000, count: 1 }], 65536), 165536);
  assert.equal(firstFree([{ start: 100000, count: 65535 }], [], 65536), undefined);
});

test('userns modes: auto, host, empty (host); TSFIG_USERNS as the default, a bad one is a usage error', () => {
  assert.equal(parseUsernsMode('auto'), 'auto');
  assert.equal(parseUsernsMode('host'), 'host');
  assert.equal(parseUsernsMode(''), 'host');
  assert.equal(parseUsernsMode('keep-id'), undefined);
  assert.equal(defaultUserns({}), undefined);
  assert.equal(defaultUserns({ TSFIG_USERNS: 'auto' }), 'auto');
  assert.throws(() => defaultUserns({ TSFIG_USERNS: 'bogus' }), /TSFIG_USERNS: invalid user namespace mode "bogus"/);
});

test('chown-on-copy: an image mount lowerdir list splits and joins with its escapes', () => {
  const dirs = ['/l/a:b/diff', '/l/c,d\\e/diff', '/l/plain/diff'];
  const joined = joinLowerdir(dirs);
  assert.equal(joined, '/l/a\\:b/diff:/l/c\\,d\\\\e/diff:/l/plain/diff');
  assert.deepEqual(splitLowerdir(joined), dirs);
});

test('chown-on-copy: runtime.conf mounts the copies as they are (lower_shifted), chowned volumes without idmap', () => {
  const record: ContainerRecord = {
    v: 1,
    id: 'a'.repeat(64),
    name: 'web',
    created: '2026-01-01T00:00:00.000Z',
    imageId: 'sha256:' + 'b'.repeat(64),
    imageRef: 'tsfig/busybox',
    spec: { image: 'tsfig/busybox' },
    process: { argv: ['true'], env: [], cwd: '/', user: '' },
    hostname: 'aaaaaaaaaaaa',
    capabilities: [],
    stopSignal: 15,
    stopTimeout: 10,
    mounts: [
      { destination: '/v', type: 'bind', source: '/vol/_data', options: ['rbind'], copy: false, volumeName: 'vol' },
      { destination: '/w', type: 'bind', source: '/wol/_data', options: ['rbind'], copy: false, volumeName: 'wol' },
    ],
    labels: {},
    userns: { uid: 100000, gid: 100000, size: 65536 },
  };
  const dirs = { dir: '/c', runDir: '/r', cgroup: 'tsf-x/aaaa' };
  const conf = (shift?: ShiftPlan) =>
    renderRuntimeConf(runtimeConfEntries(record, ['/c/shifted/x'], dirs, 'new', undefined, 0, shift)).split('\n');
  // idmapped mounts everywhere: every volume and engine file idmapped, no lower_shifted
  const idmapped = conf();
  assert.equal(idmapped.filter((line) => line === 'mount.idmap 1').length, 5);
  assert.ok(!idmapped.includes('lower_shifted 1'));
  const shifted = conf({ lowerShifted: true, mounts: new Map([['/v', { source: '/vol/_data' }]]), engineFiles: true });
  assert.ok(shifted.includes('lower_shifted 1'));
  // only /w (on a file system with idmapped mounts) is still idmapped
  assert.equal(shifted.filter((line) => line === 'mount.idmap 1').length, 1);
  assert.equal(shifted[shifted.indexOf('mount /w') + 4], 'mount.idmap 1');
});
