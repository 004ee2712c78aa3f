// Item 10 of issue #15 (second half): `ADD <url>` held the whole download in memory (and the layer writer copied it
// once more), so a Dockerfile from someone else could make tsfig use as much memory as the server sends. A download
// is now streamed to a file of the build as it arrives, hashed on the way, refused beyond a size limit
// (TSFIG_BUILD_ADD_MAX_BYTES, 8 GiB by default) as soon as it passes it, and streamed from that file into the layer.
// The server here is on 127.0.0.1, made by the test: it sends zeros, as many as asked, without holding them.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, type TestEngine } from '../helpers/engine.js';
import { buildWithPeakRss } from './helpers.js';

const MiB = 1024 * 1024;

describe('Dockerfile ADD <url> against a large download', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let server: http.Server;
  let base: string;
  /** Bytes the server wrote per request path. */
  const sent = new Map<string, number>();

  before(async () => {
    t = await makeTestEngine();
    // /N: N MiB of zeros; /chunked/N: the same without a Content-Length (the limit must hold while it streams)
    server = http.createServer((request, response) => {
      const match = /^\/(chunked\/)?(\d+)$/.exec(request.url ?? '');
      if (match === null) {
        response.writeHead(404).end();
        return;
      }
      const total = Number(match[2]) * MiB;
      response.writeHead(200, match[1] === undefined ? { 'content-length': String(total) } : {});
      const chunk = Buffer.alloc(MiB);
      let left = total;
      const pump = (): void => {
        while (left > 0) {
          left -= MiB;
          sent.set(request.url ?? '', total - left);
          if (!response.write(chunk)) {
            response.once('drain', pump);
            return;
          }
        }
        response.end();
      };
      response.on('close', () => (left = 0));
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await t.cleanup();
  });

  async function context(name: string, url: string): Promise<string> {
    const dir = path.join(t.dir, name);
    await mkdir(dir);
    await writeFile(path.join(dir, 'Dockerfile'), `FROM tsfig/busybox\nADD ${url} /big\n`);
    return dir;
  }

  const build = (dir: string, tag: string, env: Record<string, string> = {}) => buildWithPeakRss(t, dir, tag, env);

  function scratchDirs(): string[] {
    return readdirSync(path.join(t.dir, 'root', 'tmp')).filter((name) => name.startsWith('add-'));
  }

  test('a download over the limit is refused while it streams, and nothing is built or left', async () => {
    for (const url of [`${base}/chunked/64`, `${base}/64`]) {
      const dir = await context(`limit-${url.includes('chunked') ? 'chunked' : 'length'}`, url);
      const result = await build(dir, 'hostile/add', { TSFIG_BUILD_ADD_MAX_BYTES: '1m' });
      assert.notEqual(result.code, 0, result.stdout);
      assert.match(
        result.stderr,
        /ADD http:\/\/127\.0\.0\.1:\d+\/\S+: the download is larger than the limit of 1048576 bytes/,
      );
      assert.match(result.stderr, /TSFIG_BUILD_ADD_MAX_BYTES/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
      assert.notEqual((await t.cli(['image', 'inspect', 'hostile/add'])).code, 0, 'no image was tagged');
      assert.deepEqual(scratchDirs(), [], 'no download is left');
    }
    // the stream was cut soon after the limit: far from the 64 MiB the server had to send
    assert.ok((sent.get('/chunked/64') ?? 0) < 48 * MiB, `the server sent ${sent.get('/chunked/64')} bytes`);
  });

  test('a bad limit is refused before anything is built', async () => {
    const dir = await context('bad-limit', `${base}/1`);
    const result = await build(dir, 'bad/limit', { TSFIG_BUILD_ADD_MAX_BYTES: 'lots' });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /TSFIG_BUILD_ADD_MAX_BYTES: invalid size "lots"/);
    assert.equal(sent.get('/1'), undefined, 'nothing was downloaded');
  });

  test('two downloads in one build each get their own file', async () => {
    const dir = path.join(t.dir, 'two');
    await mkdir(dir);
    await writeFile(path.join(dir, 'Dockerfile'), `FROM tsfig/busybox\nADD ${base}/3 /one\nADD ${base}/2 /two\n`);
    const result = await build(dir, 'add/two');
    assert.equal(result.code, 0, result.stderr);
    try {
      const sizes = await t.cli(['container', 'run', '--rm', 'add/two', 'stat', '-c', '%s', '/one', '/two']);
      assert.equal(sizes.stdout, `${3 * MiB}\n${2 * MiB}\n`, sizes.stderr);
      assert.deepEqual(scratchDirs(), [], 'the downloads are removed after the build');
    } finally {
      await t.cli(['image', 'rm', 'add/two']);
    }
  });

  test("the build's peak memory does not grow with the download's size", async () => {
    const small = await build(await context('small', `${base}/8`), 'add/small');
    assert.equal(small.code, 0, small.stderr);
    const large = await build(await context('large', `${base}/96`), 'add/large');
    assert.equal(large.code, 0, large.stderr);
    try {
      const size = await t.cli(['container', 'run', '--rm', 'add/large', 'stat', '-c', '%s', '/big']);
      assert.equal(size.stdout.trim(), String(96 * MiB), size.stderr);
      // held in memory, 88 MiB more would have cost at least 88 MiB more (twice that with the layer's copy)
      const grew = (large.peakKiB - small.peakKiB) / 1024;
      assert.ok(grew < 40, `peak RSS ${small.peakKiB} KiB for 8 MiB, ${large.peakKiB} KiB for 96 MiB`);
      assert.deepEqual(scratchDirs(), [], 'the downloads are removed after the build');
    } finally {
      await t.cli(['image', 'rm', 'add/small', 'add/large']);
    }
  });
});
