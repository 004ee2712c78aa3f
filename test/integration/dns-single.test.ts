/**
 * One resolver per command: networks created in parallel each ask for the embedded resolver before it is ready; only
 * one starts, and dns.pid names it (a second one lost the resolver's lock and exited, its pid left in dns.pid: the
 * security suite's dns test then found no forwarding socket of that pid, in CI).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { eventually, makeTestEngine, skipUnlessRoot } from '../helpers/engine.js';

function resolvers(root: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return args.some((arg) => /dns-server\.(js|ts)$/.test(arg)) && args.includes(root);
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('networks created in parallel start one resolver, and dns.pid names it', async (t) => {
  if (skipUnlessRoot(t)) return;
  const te = await makeTestEngine();
  t.after(() => te.cleanup());
  await Promise.all(
    ['a', 'b', 'c'].map((name) => te.engine.networks.create(`dns-${name}`, { internal: false, labels: {} })),
  );
  const pid = await eventually(() => {
    const text = (() => {
      try {
        return readFileSync(path.join(te.engine.paths.runRoot, 'dns.pid'), 'utf8').trim();
      } catch {
        return '';
      }
    })();
    const running = resolvers(te.engine.paths.root);
    return running.length === 1 && String(running[0]) === text ? running[0] : undefined;
  }, 20_000).catch(() => {
    throw new Error(
      `resolvers ${JSON.stringify(resolvers(te.engine.paths.root))}, dns.pid ${readFileSync(path.join(te.engine.paths.runRoot, 'dns.pid'), 'utf8')}`,
    );
  });
  assert.ok(pid !== undefined);
  // and it stays the only one (no loser exiting later, no second start)
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(resolvers(te.engine.paths.root), [pid]);
});
