import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import { ImageStore } from '../../engine/images/store.js';
import { enginePaths } from '../../engine/state/paths.js';

// Store bookkeeping without layers (an image with no layers needs no unpacking, so no root): ids, refs, lookups.

function configBytes(n: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: [`N=${n}`] },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
}

function idOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

describe('image store bookkeeping', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function newStore(): Promise<ImageStore> {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-images-unit-'));
    dirs.push(dir);
    return new ImageStore(enginePaths(path.join(dir, 'root'), { TSFIG_RUN_ROOT: path.join(dir, 'run') }));
  }

  test('the id is the sha256 of the config bytes; refs.json keeps full names', async () => {
    const store = await newStore();
    const bytes = configBytes(1);
    const image = await store.addImage(bytes, { reference: 'busybox' });
    assert.equal(image.id, idOf(bytes));
    assert.deepEqual(image.repoTags, ['busybox:latest']);
    assert.deepEqual(JSON.parse(await readFile(store.paths.refsFile, 'utf8')), {
      'docker.io/library/busybox:latest': image.id,
    });
    assert.deepEqual(await readFile(store.blobPath(image.id)), bytes);
    await assert.rejects(store.addImage(bytes, { expectedId: idOf(configBytes(2)) }), /digest mismatch/);
    await assert.rejects(store.addImage(Buffer.from('{}')), /rootfs.diff_ids/);
  });

  test('short ids resolve when unambiguous and are refused when not', async () => {
    const store = await newStore();
    // Find two configs whose ids share their first 4 hex digits.
    const seen = new Map<string, number>();
    let pair: [number, number] | undefined;
    for (let n = 0; pair === undefined; n++) {
      const prefix = idOf(configBytes(n)).slice(7, 11);
      const other = seen.get(prefix);
      if (other !== undefined) pair = [other, n];
      seen.set(prefix, n);
    }
    const a = await store.addImage(configBytes(pair[0]));
    const b = await store.addImage(configBytes(pair[1]));
    const shared = a.id.slice(7, 11);
    await assert.rejects(store.resolve(shared), (error: unknown) => isEngineError(error, 'conflict'));
    let distinct = 5;
    while (a.id.slice(7, 7 + distinct) === b.id.slice(7, 7 + distinct)) distinct++;
    assert.equal((await store.resolve(a.id.slice(7, 7 + distinct))).id, a.id);
    assert.equal((await store.resolve(`sha256:${b.id.slice(7, 7 + distinct)}`)).id, b.id);
    await assert.rejects(store.resolve('abc'), (error: unknown) => isEngineError(error, 'not-found'));
    await assert.rejects(store.resolve('sha256:xyz'), /invalid image id/);
  });

  test('tags move, list shows every image, rm by id with several tags needs force', async () => {
    const store = await newStore();
    const one = await store.addImage(configBytes(1), { reference: 'app:1' });
    const two = await store.addImage(configBytes(2), { reference: 'app:2' });
    await store.tag('app:1', 'app:latest');
    await store.tag('app:1', 'registry.local:5000/team/app:v1');
    await store.tag('app:2', 'app:latest'); // moves the tag
    assert.deepEqual((await store.resolve('app')).id, two.id);
    assert.deepEqual((await store.resolve('app:1')).repoTags, ['app:1', 'registry.local:5000/team/app:v1']);
    assert.deepEqual((await store.list()).map((image) => image.id).sort(), [one.id, two.id].sort());
    await assert.rejects(store.remove(one.id), (error: unknown) => isEngineError(error, 'conflict'));
    assert.deepEqual(await store.remove(one.id, { force: true }), [
      { kind: 'untagged', ref: 'app:1' },
      { kind: 'untagged', ref: 'registry.local:5000/team/app:v1' },
      { kind: 'deleted', id: one.id },
    ]);
    await assert.rejects(store.tag('app:2', 'Bad'), /must be lowercase/);
    await assert.rejects(store.tag('nothing', 'x'), (error: unknown) => isEngineError(error, 'not-found'));
  });

  test('a store sees tags moved and images removed by another process (another store on the same root)', async () => {
    const store = await newStore();
    const other = new ImageStore(store.paths);
    const one = await store.addImage(configBytes(11), { reference: 'svc:latest' });
    const two = await store.addImage(configBytes(12), { reference: 'svc:next' });
    assert.equal((await store.resolve('svc')).id, one.id);
    assert.equal((await store.resolve(one.id)).id, one.id);
    await other.tag('svc:next', 'svc:latest');
    assert.equal((await store.resolve('svc')).id, two.id);
    await other.remove(one.id, { force: true });
    await assert.rejects(store.resolve(one.id), (error: unknown) => isEngineError(error, 'not-found'));
  });
});
