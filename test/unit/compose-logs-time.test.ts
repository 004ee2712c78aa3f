/** `logs --since/--until`: the durations, Unix times and RFC3339-like dates docker and compose accept. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLogTime } from '../../src/cli/log-time.js';
import { TsfigError } from '../../src/errors.js';

const now = new Date('2026-12-07T02:40:00.250Z');

test('a duration is that long before now', () => {
  assert.equal(parseLogTime('2s', '--since', now), '2026-12-07T02:39:58.250000000Z');
  assert.equal(parseLogTime('10m', '--until', now), '2026-12-07T02:30:00.250000000Z');
  assert.equal(parseLogTime('1h30m', '--since', now), '2026-12-07T01:10:00.250000000Z');
  assert.equal(parseLogTime('1.5s', '--since', now), '2026-12-07T02:39:58.750000000Z');
  assert.equal(parseLogTime('300ms', '--since', now), '2026-12-07T02:39:59.950000000Z');
  assert.equal(parseLogTime('-1m', '--until', now), '2026-12-07T02:41:00.250000000Z');
});

test('a Unix time, with or without fraction; 0 is the epoch', () => {
  assert.equal(parseLogTime('1700000000', '--since', now), '2023-11-14T22:13:20.000000000Z');
  assert.equal(parseLogTime('1700000000.000000123', '--since', now), '2023-11-14T22:13:20.000000123Z');
  assert.equal(parseLogTime('0', '--since', now), '1970-01-01T00:00:00.000000000Z');
});

test('RFC3339 and its shorter forms; a zone offset is applied, no zone is local time', () => {
  assert.equal(parseLogTime('2026-12-07T02:33:01Z', '--since', now), '2026-12-07T02:33:01.000000000Z');
  assert.equal(parseLogTime('2026-12-07T02:33:01.5Z', '--since', now), '2026-12-07T02:33:01.500000000Z');
  assert.equal(parseLogTime('2026-12-07T03:33:01.123456789+01:00', '--since', now), '2026-12-07T02:33:01.123456789Z');
  assert.equal(parseLogTime('2026-12-07T02:33Z', '--since', now), '2026-12-07T02:33:00.000000000Z');
  const local = new Date(2026, 11, 7, 2, 33, 0).toISOString().slice(0, 19);
  assert.equal(parseLogTime('2026-12-07T02:33', '--since', now), `${local}.000000000Z`);
  const midnight = new Date(2026, 11, 7).toISOString().slice(0, 19);
  assert.equal(parseLogTime('2026-12-07', '--since', now), `${midnight}.000000000Z`);
});

test('the result compares as a string with the monitor log times (9 fraction digits, UTC)', () => {
  const since = parseLogTime('2026-12-07T02:33:01.123Z', '--since', now);
  assert.ok('2026-12-07T02:33:01.123456789Z' >= since);
  assert.ok('2026-12-07T02:33:01.122999999Z' < since);
});

test('anything else is a usage error naming the flag', () => {
  for (const value of ['yesterday', '2s ago', '2026-13-01', '2026-02-30T00:00Z', '12:00', '5d', '']) {
    assert.throws(
      () => parseLogTime(value, '--since', now),
      (error: unknown) => error instanceof TsfigError && error.kind === 'usage' && error.message.startsWith('--since'),
      value,
    );
  }
});
