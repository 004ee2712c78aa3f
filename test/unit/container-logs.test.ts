import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
