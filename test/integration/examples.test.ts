import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, isRoot, makeTestEngine, REPO, type TestEngine } from '../helpers/engine.js';

const EXAMPLES = path.join(REPO, 'examples');

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** HTTP GET over loopback with Node's own client. */
async function get(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return response.text();
}

interface Inspect {
  State: { StartedAt: string; Health?: { Status: string; Log?: { End: string; ExitCode: number }[] } };
}

describe('examples (root)', { skip: isRoot ? false : 'needs root (run: sudo npm run test:integration)' }, () => {
  let t: TestEngine;
  before(async () => {
    t = await makeTestEngine({ debian: true });
  });
  after(async () => {
    await t.cleanup();
  });

  test('redis-app: the web service waits for a healthy redis and counts visits through 127.0.0.1', async () => {
    const dir = path.join(EXAMPLES, 'redis-app');
    const port = await freePort();
    const options = { cwd: dir, env: { WEB_PORT: String(port) }, timeoutMs: 120_000 };
    const up = await t.cli(['-p', 'itredis', 'up', '-d', '--wait'], options);
    try {
      assert.equal(up.code, 0, up.stderr);
      const first = await get(`http://127.0.0.1:${port}/`);
      const second = await get(`http://127.0.0.1:${port}/`);
      assert.match(first, /I have been seen 1 times/);
      assert.match(second, /I have been seen 2 times/);
      const [redis, web] = (await Promise.all([
        t.engine.containers.inspect('itredis-redis-1'),
        t.engine.containers.inspect('itredis-web-1'),
      ])) as unknown as [Inspect, Inspect];
      assert.equal(redis.State.Health?.Status, 'healthy');
      const firstHealthy = redis.State.Health?.Log?.find((entry) => entry.ExitCode === 0)?.End;
      assert.ok(firstHealthy !== undefined, 'no successful health check was recorded');
      assert.ok(
        web.State.StartedAt >= firstHealthy,
        `web started at ${web.State.StartedAt}, before redis was healthy at ${firstHealthy}`,
      );
    } finally {
      const down = await t.cli(['-p', 'itredis', 'down', '-t', '2'], options);
      assert.equal(down.code, 0, down.stderr);
    }
  });

  test('migration: the app starts only after the one-shot migration completed', async () => {
    const dir = path.join(EXAMPLES, 'migration');
    const options = { cwd: dir, timeoutMs: 120_000 };
    const up = await t.cli(['-p', 'itmig', 'up', '-d'], options);
    try {
      assert.equal(up.code, 0, up.stderr);
      const logs = await eventually(async () => {
        const result = await t.cli(['-p', 'itmig', 'logs', '--no-log-prefix', 'app'], options);
        return /app sees schema/.test(result.stdout) ? result.stdout : undefined;
      }, 30_000);
      assert.match(logs, /app sees schema 3/);
      const migrate = await t.cli(['-p', 'itmig', 'logs', '--no-log-prefix', 'migrate'], options);
      assert.match(migrate.stdout, /migrated to schema 3/);
    } finally {
      assert.equal((await t.cli(['-p', 'itmig', 'down', '-t', '2'], options)).code, 0);
    }
  });

  test('data-container: a one-off reader sees what the writer wrote through volumes_from, and down -v removes it', async () => {
    const dir = path.join(EXAMPLES, 'data-container');
    const options = { cwd: dir, timeoutMs: 60_000 };
    assert.equal((await t.cli(['-p', 'itdata', 'up', '-d'], options)).code, 0);
    try {
      const read = await eventually(async () => {
        const result = await t.cli(['-p', 'itdata', '--profile', 'tools', 'run', '--rm', '-T', 'reader'], options);
        return result.code === 0 && /\d{4}/.test(result.stdout) ? result : undefined;
      }, 20_000);
      assert.equal(read.code, 0);
      const volumes = (await t.engine.volumes.list()).volumes.map((volume) => volume.Name);
      assert.equal(volumes.length, 1, 'the data service has one anonymous volume');
    } finally {
      assert.equal((await t.cli(['-p', 'itdata', 'down', '-v', '-t', '1'], options)).code, 0);
    }
    assert.deepEqual((await t.engine.volumes.list()).volumes, []);
  });
});
