/**
 * Round trip on real containers: `tsfig kube generate` of examples/redis-app → `tsfig kube play` of the manifests →
 * the page counts visits through 127.0.0.1 → `kube play --down` leaves no container, network or volume.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isRoot, makeTestEngine, REPO, type TestEngine } from '../helpers/engine.js';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function get(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return response.text();
}

async function eventuallyGet(url: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await get(url);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

describe('kube generate → kube play (root)', { skip: isRoot ? false : 'needs root' }, () => {
  let t: TestEngine;
  let out: string;
  before(async () => {
    t = await makeTestEngine({ debian: true });
    out = mkdtempSync(path.join(tmpdir(), 'tsfig-kube-it-'));
  });
  after(async () => {
    await t.cleanup();
    rmSync(out, { recursive: true, force: true });
  });

  test('redis-app round trip: the page counts visits, --down removes everything', async () => {
    const dir = path.join(REPO, 'examples', 'redis-app');
    const port = await freePort();
    const gen = await t.cli(['kube', 'generate', '--allow-hostpath', '--validate', '-o', out], {
      cwd: dir,
      env: { WEB_PORT: String(port) },
    });
    assert.equal(gen.code, 0, gen.stderr);
    assert.match(gen.stderr, /objects match the Kubernetes v1\.33\.0 schema/);
    const files = readdirSync(out)
      .sort()
      .map((f) => path.join(out, f));
    assert.ok(files.some((f) => f.endsWith('web-deployment.yaml')));
    const play = await t.cli(['kube', 'play', ...files], { timeoutMs: 120_000 });
    try {
      assert.equal(play.code, 0, play.stderr);
      // NetworkPolicies have no cluster to enforce them: said, not silently dropped.
      assert.match(play.stderr, /NetworkPolicy is not played/);
      const first = await eventuallyGet(`http://127.0.0.1:${port}/`, 60_000);
      const second = await get(`http://127.0.0.1:${port}/`);
      assert.match(first, /I have been seen \d+ times/);
      const n = Number(/seen (\d+) times/.exec(first)?.[1]);
      assert.match(second, new RegExp(`I have been seen ${n + 1} times`));
      const names = (await t.engine.containers.list({ all: true })).map((c) => c.name).sort();
      assert.deepEqual(names, ['redis-app-redis-1', 'redis-app-web-1']);
      // The compose document play ran is kept under the state root: ps, logs and exec work with it.
      const composeFile = path.join(t.env.TSFIG_ROOT ?? '', 'kube', 'redis-app', 'compose.yaml');
      const ps = await t.cli(['-f', composeFile, 'ps', '--format', 'json']);
      assert.equal(ps.code, 0, ps.stderr);
      assert.match(ps.stdout, /healthy/);
    } finally {
      const down = await t.cli(['kube', 'play', '--down', ...files], { timeoutMs: 60_000 });
      assert.equal(down.code, 0, down.stderr);
    }
    assert.deepEqual(await t.engine.containers.list({ all: true }), []);
    assert.deepEqual(await t.engine.networks.list(), []);
    assert.deepEqual((await t.engine.volumes.list()).volumes, []);
  });

  test('bad input is a clear error with the file and line, and changes nothing', async () => {
    const bad = path.join(out, 'bad.yaml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: many\n');
    const play = await t.cli(['kube', 'play', bad]);
    assert.equal(play.code, 65, play.stderr);
    assert.match(play.stderr, /Deployment\/x: .*replicas must be integer/);
    assert.doesNotMatch(play.stderr, /\n\s+at /);
    writeFileSync(bad, 'kind: [\n');
    const syntax = await t.cli(['kube', 'play', bad]);
    assert.equal(syntax.code, 65, syntax.stderr);
    assert.match(syntax.stderr, /bad\.yaml:\d+:\d+/);
    assert.deepEqual(await t.engine.containers.list({ all: true }), []);
  });
});
