import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstFree, parseSubordinate } from '../../engine/containers/userns.js';
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
