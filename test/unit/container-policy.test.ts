/** Restart policy and healthcheck: CLI flags → ContainerSpec → runtime.conf keys (native/PROTOCOL.md). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runtimeConfEntries } from '../../engine/containers/runtime-config.js';
import type { ContainerSpec } from '../../engine/containers/types.js';
import { renderRuntimeConf } from '../../engine/runtime/conf.js';
import { specFromFlags } from '../../src/cli/commands/container.js';
import { containerRecord } from '../helpers/records.js';

function confLines(spec: Omit<ContainerSpec, 'image'>): string[] {
  const text = renderRuntimeConf(
    runtimeConfEntries(containerRecord(spec), ['/l/1/diff'], { dir: '/c', runDir: '/r', cgroup: 'tsf-x/aaaa' }, 'new'),
  );
  return text.split('\n').filter((line) => /^(restart|health_)/.test(line));
}

describe('restart policy and healthcheck', () => {
  test('runtime.conf keys', () => {
    assert.deepEqual(confLines({}), []);
    assert.deepEqual(confLines({ restart: { name: 'no' } }), []);
    assert.deepEqual(confLines({ restart: { name: 'always' } }), ['restart always']);
    assert.deepEqual(confLines({ restart: { name: 'on-failure', maxRetries: 3 } }), [
      'restart on-failure',
      'restart_max 3',
    ]);
    assert.deepEqual(confLines({ restart: { name: 'on-failure', maxRetries: undefined } }), ['restart on-failure']);
    assert.deepEqual(confLines({ healthcheck: { test: ['NONE'] } }), []);
    assert.deepEqual(
      confLines({
        healthcheck: {
          test: ['CMD-SHELL', 'redis-cli ping\n|| exit 1'],
          intervalMs: 1500,
          timeoutMs: 2000,
          retries: 5,
          startPeriodMs: 10_000,
          startIntervalMs: 250,
        },
      }),
      [
        'health_cmd CMD-SHELL',
        'health_cmd redis-cli ping\\n|| exit 1',
        'health_interval_ms 1500',
        'health_timeout_ms 2000',
        'health_retries 5',
        'health_start_period_ms 10000',
        'health_start_interval_ms 250',
      ],
    );
    // undefined durations are left to the monitor's (docker's) defaults
    assert.deepEqual(confLines({ healthcheck: { test: ['CMD', 'true'], intervalMs: undefined } }), [
      'health_cmd CMD',
      'health_cmd true',
    ]);
  });

  test('docker run flags', () => {
    assert.deepEqual(specFromFlags('i', [], { restart: 'on-failure:5' }, []).restart, {
      name: 'on-failure',
      maxRetries: 5,
    });
    assert.deepEqual(specFromFlags('i', [], { restart: 'unless-stopped' }, []).restart, { name: 'unless-stopped' });
    assert.equal(specFromFlags('i', [], {}, []).restart, undefined);
    for (const bad of ['sometimes', 'always:3', 'on-failure:x', 'on-failure:'])
      assert.throws(() => specFromFlags('i', [], { restart: bad }, []), /--restart: invalid restart policy/);
    assert.throws(() => specFromFlags('i', [], { restart: 'always', rm: true }, []), /--restart and --rm/);
    assert.deepEqual(
      specFromFlags(
        'i',
        [],
        {
          healthCmd: 'curl -f localhost',
          healthInterval: '1m30s',
          healthTimeout: '500ms',
          healthRetries: '2',
          healthStartPeriod: '5s',
          healthStartInterval: '1s',
        },
        [],
      ).healthcheck,
      {
        test: ['CMD-SHELL', 'curl -f localhost'],
        intervalMs: 90_000,
        timeoutMs: 500,
        retries: 2,
        startPeriodMs: 5000,
        startIntervalMs: 1000,
      },
    );
    assert.deepEqual(specFromFlags('i', [], { healthcheck: false }, []).healthcheck, { test: ['NONE'] });
    assert.equal(specFromFlags('i', [], { healthcheck: true }, []).healthcheck, undefined);
    assert.throws(
      () => specFromFlags('i', [], { healthcheck: false, healthCmd: 'true' }, []),
      /--no-healthcheck conflicts/,
    );
    assert.throws(() => specFromFlags('i', [], { healthInterval: '1s' }, []), /need --health-cmd/);
    assert.throws(
      () => specFromFlags('i', [], { healthCmd: 'true', healthTimeout: 'soon' }, []),
      /--health-timeout: invalid duration/,
    );
  });
});
