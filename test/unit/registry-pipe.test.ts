import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkPipe, RestartedFromZero } from '../../engine/registry/pipe.js';

test('ChunkPipe: the writer waits above the high-water mark; the reader gets every byte in order, then the end', async () => {
  const pipe = new ChunkPipe(4);
  let written = 0;
  const writer = (async () => {
    for (let i = 0; i < 10; i++) {
      await pipe.write(Buffer.from([i, i]));
      written++;
    }
    pipe.end();
  })();
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(written < 10, `the writer waits for the reader (${written} written)`);
  const got: number[] = [];
  for await (const chunk of pipe) got.push(...chunk);
  await writer;
  assert.deepEqual(
    got,
    Array.from({ length: 20 }, (_, i) => i >> 1),
  );
});

test('ChunkPipe: once the reader stops, writes are dropped and never wait', async () => {
  const pipe = new ChunkPipe(1);
  const first = pipe.write(Buffer.from('ab')); // above the mark: waits for the reader
  const reader = (async () => {
    for await (const chunk of pipe) return chunk; // takes one chunk and stops
    return undefined;
  })();
  assert.deepEqual(await reader, Buffer.from('ab'));
  await first;
  for (let i = 0; i < 100; i++) await pipe.write(Buffer.alloc(1024));
});

test('ChunkPipe: a restart from the first byte after bytes were handed over fails the reader; a failure is thrown', async () => {
  const pipe = new ChunkPipe();
  pipe.begin(0);
  await pipe.write(Buffer.from('abc'));
  pipe.begin(3); // a resumed download goes on
  assert.throws(() => pipe.begin(0), RestartedFromZero);
  await assert.rejects(async () => {
    for await (const chunk of pipe) void chunk;
  }, RestartedFromZero);
  const other = new ChunkPipe();
  other.fail(new Error('digest mismatch'));
  await assert.rejects(async () => {
    for await (const chunk of other) void chunk;
  }, /digest mismatch/);
});
