import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { policyInterval, pullDecision } from '../../src/cli/compose/pull.js';

describe('pull_policy', () => {
  test('intervals', () => {
    assert.equal(policyInterval('daily'), 86_400_000);
    assert.equal(policyInterval('weekly'), 7 * 86_400_000);
    assert.equal(policyInterval('every_1d12h'), 36 * 3_600_000);
    assert.equal(policyInterval('every_90s'), 90_000);
    assert.equal(policyInterval('every_'), undefined);
    assert.equal(policyInterval('sometimes'), undefined);
  });

  test('decisions', () => {
    const absent = { present: false, hasBuild: false };
    const present = { present: true, hasBuild: false };
    assert.equal(pullDecision('always', present), 'pull');
    assert.equal(pullDecision('refresh', present), 'pull');
    assert.equal(pullDecision('never', present), 'skip');
    assert.equal(pullDecision('never', absent), 'missing-never');
    assert.equal(pullDecision('missing', present), 'skip');
    assert.equal(pullDecision('missing', absent), 'pull');
    assert.equal(pullDecision('if_not_present', absent), 'pull');
    assert.equal(pullDecision('missing', { present: false, hasBuild: true }), 'build');
    assert.equal(pullDecision('build', absent), 'build');
    const now = Date.parse('2026-01-02T00:00:00Z');
    const lastPulled = new Date('2026-01-01T06:00:00Z');
    assert.equal(pullDecision('daily', { ...present, lastPulled, now }), 'skip');
    assert.equal(pullDecision('every_12h', { ...present, lastPulled, now }), 'pull');
    assert.equal(pullDecision('daily', { ...present, now }), 'pull');
    assert.equal(pullDecision('weekly', absent), 'pull');
    assert.throws(() => pullDecision('sometimes', present), /unknown pull_policy "sometimes"/);
  });
});
