/**
 * The short chaos run of CI (issue #20): two up/down cycles and a kill -9 fault of each operation (up, down,
 * run --rm, build, pull, volume rm, network rm, monitor). The long soak is `npm run chaos` (docs/reliability.md).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NEEDS_ROOT } from '../helpers/engine.js';
import { runChaos } from './soak.js';

test(
  'kill -9 at random moments: every next command converges, nothing is left, no data is lost',
  { skip: NEEDS_ROOT },
  async (t) => {
    const result = await runChaos({ cycles: 2, kills: 1, services: 3, log: (line) => t.diagnostic(line) });
    t.diagnostic(`seed ${result.seed}, kills ${JSON.stringify(result.kills)}, ${result.seconds} s`);
    assert.deepEqual(result.convergenceFailures, []);
    assert.deepEqual(result.leftovers, []);
    assert.deepEqual(result.dataLost, []);
  },
);
