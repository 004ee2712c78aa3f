/** The client against in-process fake registries on 127.0.0.1: tokens, redirects, retries, resumed downloads. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import { CredentialStore } from '../../engine/registry/auth.js';
import { RegistryClient, isLoopback } from '../../engine/registry/client.js';
import { sha256Digest } from '../../engine/registry/manifest.js';
import { downloadBlob } from '../../engine/registry/pull.js';
import { zstdDecompress } from '../../engine/registry/zstd.js';
import { execFileSync } from 'node:child_process';

async function listen(t: TestContext, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(t: TestContext): RegistryClient {
  const c = new RegistryClient({
    credentials: new CredentialStore({ file: '/nonexistent/tsfig-unit/config.json' }),
    backoffMs: 5,
  });
  t.after(() => c.close());
  return c;
}

describe('RegistryClient', () => {
  test('loopback hosts may use plain HTTP; others may not', () => {
    assert.equal(isLoopback('localhost:5000'), true);
    assert.equal(isLoopback('127.1.2.3'), true);
    assert.equal(isLoopback('[::1]:5000'), true);
    assert.equal(isLoopback('registry.example:5000'), false);
    const c = new RegistryClient({ insecureRegistries: ['reg.lan:5000'] });
    assert.equal(c.allowsHttp('reg.lan:5000'), true);
    assert.equal(c.allowsHttp('reg.lan'), false);
    c.close();
  });

  test('bearer token once per scope; 503 retried; redirect to another origin without Authorization; Range resume', async (t) => {
    const blob = randomBytes(300_000);
    const digest = sha256Digest(blob);
    const cdnSeen: Array<{ auth: string | undefined; range: string | undefined }> = [];
    let cdnCalls = 0;
    const cdn = await listen(t, (req, res) => {
      cdnCalls++;
      cdnSeen.push({ auth: req.headers.authorization, range: req.headers.range });
      if (cdnCalls === 1) {
        res.writeHead(503).end();
        return;
      }
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (range !== null) {
        const start = Number(range[1]);
        res.writeHead(206, {
          'Content-Length': String(blob.length - start),
          'Content-Range': `bytes ${start}-${blob.length - 1}/${blob.length}`,
        });
        res.end(blob.subarray(start));
        return;
      }
      // the whole blob announced, half sent, then the connection breaks
      res.writeHead(200, { 'Content-Length': String(blob.length), 'Accept-Ranges': 'bytes' });
      res.write(blob.subarray(0, 100_000), () => res.socket?.end());
    });
    let tokenCalls = 0;
    let registryDomain = '';
    registryDomain = await listen(t, (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/token') {
        tokenCalls++;
        assert.equal(url.searchParams.get('service'), 'fake');
        assert.deepEqual(url.searchParams.getAll('scope'), ['repository:team/app:pull']);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"token":"tok-1","expires_in":300}');
        return;
      }
      if (req.headers.authorization !== 'Bearer tok-1') {
        res
          .writeHead(401, {
            'WWW-Authenticate': `Bearer realm="http://${registryDomain}/token",service="fake",scope="repository:team/app:pull"`,
          })
          .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      if (url.pathname === `/v2/team/app/blobs/${digest}`) {
        res.writeHead(307, { Location: `http://${cdn}/blob/${digest}` }).end();
        return;
      }
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}');
    });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsfig-dl-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const c = client(t);
    const ref = { domain: registryDomain, path: 'team/app', tag: 'x', digest: undefined };
    const file = path.join(dir, 'blob');
    const progress: number[] = [];
    await downloadBlob(c, ref, { mediaType: 'x', digest, size: blob.length }, file, 'pulling test', (n) =>
      progress.push(n),
    );
    assert.deepEqual(await fs.readFile(file), blob);
    assert.equal(tokenCalls, 1);
    assert.ok(
      cdnSeen.every((seen) => seen.auth === undefined),
      'Authorization never reaches another origin',
    );
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdnSeen.at(-1)?.range ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 100_000, `resumed with a Range (${cdnSeen.at(-1)?.range})`);
    assert.equal(progress.at(-1), blob.length);

    // a second blob request reuses the token; a 404 names the registry, the status and the registry's message
    await assert.rejects(
      downloadBlob(c, ref, { mediaType: 'x', digest: sha256Digest(Buffer.from('x')), size: 1 }, file, 'pulling test'),
      (error: unknown) =>
        isEngineError(error, 'not-found') &&
        error.message ===
          `registry ${registryDomain} answered HTTP 404 pulling test: BLOB_UNKNOWN: blob unknown to registry`,
    );
    assert.equal(tokenCalls, 1);
    await assert.rejects(fs.stat(file), /ENOENT/);
  });

  test('a blob that does not match its digest or size is refused and its file removed', async (t) => {
    const blob = randomBytes(1000);
    const domain = await listen(t, (_req, res) => {
      res.writeHead(200, { 'Content-Length': String(blob.length) }).end(blob);
    });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsfig-dl-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const c = client(t);
    const ref = { domain, path: 'a/b', tag: undefined, digest: undefined };
    const file = path.join(dir, 'blob');
    const wrong = sha256Digest(Buffer.from('other'));
    await assert.rejects(
      downloadBlob(c, ref, { mediaType: 'x', digest: wrong, size: blob.length }, file, 'pulling a/b'),
      (error: unknown) =>
        isEngineError(error, 'invalid') && error.message.startsWith('blob digest mismatch pulling a/b'),
    );
    await assert.rejects(fs.stat(file), /ENOENT/);
    await assert.rejects(
      downloadBlob(c, ref, { mediaType: 'x', digest: sha256Digest(blob), size: 10 }, file, 'pulling a/b'),
      /is larger than the 10 bytes its manifest says/,
    );
  });

  test('basic auth: credentials from the store, once challenged', async (t) => {
    const seen: Array<string | undefined> = [];
    const domain = await listen(t, (req, res) => {
      seen.push(req.headers.authorization);
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="r"' }).end();
        return;
      }
      res.writeHead(200).end('ok');
    });
    const c = client(t);
    c.useCredentials(domain, { username: 'u', password: 'p' });
    const res = await c.request(domain, 'a/b', '/v2/', { what: 'checking' });
    assert.equal(await res.text(), 'ok');
    await (await c.request(domain, 'a/b', '/v2/', { what: 'checking' })).text();
    assert.deepEqual(
      seen.map((s) => s !== undefined),
      [false, true, true],
    );
    c.useCredentials(domain, undefined);
    await assert.rejects(
      c.request(domain, 'a/b', '/v2/', { what: 'logging in' }),
      (error: unknown) => isEngineError(error, 'permission') && /answered HTTP 401 logging in/.test(error.message),
    );
  });
});

describe('zstd', () => {
  test('decompresses through the zstd binary; corrupt input is an invalid error', async () => {
    const data = Buffer.concat([randomBytes(100_000), Buffer.alloc(500_000, 7)]);
    const compressed = execFileSync('zstd', ['-q', '-c'], { input: data });
    const chunks: Buffer[] = [];
    const source = (): Readable => {
      const parts: Buffer[] = [];
      for (let i = 0; i < compressed.length; i += 4096) parts.push(compressed.subarray(i, i + 4096));
      return Readable.from(parts);
    };
    for await (const chunk of zstdDecompress(source())) chunks.push(chunk);
    assert.deepEqual(Buffer.concat(chunks), data);
    const corrupt = (): Readable => Readable.from([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5, 6, 7, 8])]);
    await assert.rejects(
      (async () => {
        for await (const _ of zstdDecompress(corrupt())) void _;
      })(),
      (error: unknown) => isEngineError(error, 'invalid') && /zstd layer is corrupt/.test(error.message),
    );
    await assert.rejects(
      (async () => {
        for await (const _ of zstdDecompress(source(), 'no-such-zstd-binary')) void _;
      })(),
      (error: unknown) => isEngineError(error, 'unsupported') && /install zstd/.test(error.hint ?? ''),
    );
  });
});
