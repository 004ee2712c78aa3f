import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { acquireLock, withLock } from '../../engine/state/lock.js';
import { readJson, writeJsonAtomic } from '../../engine/state/atomic.js';
import { enginePaths, rootIdOf } from '../../engine/state/paths.js';

describe('engine state', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  test('two roots get different ids and host prefixes that fit interface names', () => {
    const a = enginePaths('/var/lib/tsfig', {});
    const b = enginePaths('/tmp/other-root', {});
    assert.notEqual(a.rootId, b.rootId);
    assert.match(a.hostPrefix, /^tsf[0-9a-f]{4}$/);
    assert.equal(a.runRoot, `/run/tsfig/${rootIdOf('/var/lib/tsfig')}`);
    assert.equal(enginePaths(undefined, { TSFIG_ROOT: '/x/y' }).root, '/x/y');
  });

  test('atomic JSON writes leave no temp files and read back', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-state-'));
    dirs.push(dir);
    const file = path.join(dir, 'a.json');
    await writeJsonAtomic(file, { x: 1 });
    await writeJsonAtomic(file, { x: 2 });
    assert.deepEqual(await readJson(file), { x: 2 });
    assert.deepEqual(await readdir(dir), ['a.json']);
    assert.equal(await readJson(path.join(dir, 'missing.json')), undefined);
    assert.match(await readFile(file, 'utf8'), /\n$/);
  });

  test('a lock is exclusive until released', async () => {
    const name = `test-${process.pid}-${Date.now()}`;
    const order: string[] = [];
    const first = await acquireLock(name);
    const second = withLock(name, () => {
      order.push('second');
      return Promise.resolve();
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    order.push('first-release');
    await first.release();
    await second;
    assert.deepEqual(order, ['first-release', 'second']);
  });

  test('a lock times out with a conflict error', async () => {
    const name = `test-timeout-${process.pid}`;
    const held = await acquireLock(name);
    try {
      await assert.rejects(acquireLock(name, { timeoutMs: 20 }), /timed out waiting for lock/);
    } finally {
      await held.release();
    }
  });

  test('waiters of one process get the lock in turn, at once, and one that gives up keeps the queue going', async () => {
    const name = `test-fifo-${process.pid}-${Date.now()}`;
    const order: number[] = [];
    let inside = 0;
    const held = await acquireLock(name);
    const gaveUp = acquireLock(name, { timeoutMs: 10 });
    const waiters = Array.from({ length: 20 }, (_, index) =>
      withLock(name, async () => {
        inside++;
        assert.equal(inside, 1);
        order.push(index);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inside--;
      }),
    );
    await assert.rejects(gaveUp, /timed out waiting for lock/);
    const started = Date.now();
    await held.release();
    await Promise.all(waiters);
    assert.deepEqual(
      order,
      Array.from({ length: 20 }, (_, index) => index),
    );
    // Handed over without the cross-process back-off (up to 100 ms per waiter).
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });
});
