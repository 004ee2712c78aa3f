import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher, type Settled } from '../../engine/network/batch.js';

test('calls made while a batch runs go together in the next one, each with its own result', async () => {
  const batches: number[][] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const batcher = new Batcher<number, number>(async (items) => {
    batches.push([...items]);
    if (batches.length === 1) await gate;
    return items.map((n): Settled<number> =>
      n < 0 ? { ok: false, error: new Error(`bad ${n}`) } : { ok: true, value: n * 2 },
    );
  });
  const first = batcher.submit(1);
  await new Promise((resolve) => setImmediate(resolve));
  const rest = [batcher.submit(2), batcher.submit(-3), batcher.submit(4)];
  release();
  assert.equal(await first, 2);
  const settled = await Promise.allSettled(rest);
  assert.deepEqual(batches, [[1], [2, -3, 4]]);
  assert.deepEqual(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    [4, 'bad -3', 8],
  );
});

test('calls in the same turn share the first batch; a throwing run fails only its batch', async () => {
  const batches: string[][] = [];
  const batcher = new Batcher<string, string>((items) => {
    batches.push([...items]);
    if (items.includes('boom')) return Promise.reject(new Error('run failed'));
    return Promise.resolve(items.map((value) => ({ ok: true as const, value })));
  });
  const a = batcher.submit('a');
  const boom = batcher.submit('boom');
  await assert.rejects(a, /run failed/);
  await assert.rejects(boom, /run failed/);
  assert.equal(await batcher.submit('c'), 'c');
  assert.deepEqual(batches, [['a', 'boom'], ['c']]);
});
