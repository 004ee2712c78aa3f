import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readLogs } from '../../engine/containers/logs.js';
import type { LogEntry } from '../../engine/containers/types.js';

async function nextText(reader: AsyncGenerator<LogEntry>): Promise<string | undefined> {
  const result = await reader.next();
  return result.done === true ? undefined : result.value.text;
}

const line = (text: string) =>
  `${JSON.stringify({ log: `${text}\n`, stream: 'stdout', time: new Date().toISOString() })}\n`;

test('follow: a line appended after the existing ones were read is not skipped', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-logs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'container-json.log');
  const three = line('three');
  await writeFile(file, `${line('one')}${line('two')}${three.slice(0, 10)}`);
  let done = false;
  const reader = readLogs(file, () => Promise.resolve(done), { follow: true });
  assert.equal(await nextText(reader), 'one\n');
  assert.equal(await nextText(reader), 'two\n');
  // The generator is paused after the last complete entry: the monitor finishes the torn line and writes another.
  await appendFile(file, `${three.slice(10)}${line('four')}`);
  done = true;
  const rest: string[] = [];
  for await (const entry of reader) rest.push(entry.text);
  assert.deepEqual(rest, ['three\n', 'four\n']);
});

test('follow: an abort still yields what is already in the file, then ends', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-logs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'container-json.log');
  await writeFile(file, line('first'));
  const controller = new AbortController();
  const reader = readLogs(file, () => Promise.resolve(false), { follow: true, signal: controller.signal });
  assert.equal(await nextText(reader), 'first\n');
  await appendFile(file, line('last words'));
  controller.abort();
  const rest: string[] = [];
  for await (const entry of reader) rest.push(entry.text);
  assert.deepEqual(rest, ['last words\n']);
});

test('follow: the exit (status.json renamed into the container dir) wakes the reader, not the next poll', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-logs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'container-json.log');
  await writeFile(file, line('only'));
  let done = false;
  // The poll's setTimeout never fires: only a file system event can end the follow.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const reader = readLogs(file, () => Promise.resolve(done), { follow: true });
  assert.equal(await nextText(reader), 'only\n');
  const ended = reader.next();
  // the container exits without writing to its log: its monitor renames status.json in
  await writeFile(path.join(dir, '.status.json.tmp'), '{"state":"exited"}');
  done = true;
  await rename(path.join(dir, '.status.json.tmp'), path.join(dir, 'status.json'));
  let guard: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    guard = setInterval(() => resolve('hung'), 10_000);
  });
  try {
    assert.deepEqual(await Promise.race([ended, hung]), { done: true, value: undefined });
  } finally {
    clearInterval(guard);
  }
});
