import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  CredentialStore,
  DOCKER_HUB_AUTH_KEY,
  authKey,
  decodeAuth,
  dockerConfigPath,
  encodeAuth,
  keyHost,
  parseWwwAuthenticate,
} from '../../engine/registry/auth.js';

describe('parseWwwAuthenticate', () => {
  test("Docker Hub's Bearer challenge", () => {
    assert.deepEqual(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:library/alpine:pull',
          },
        },
      ],
    );
  });

  test('Basic, unquoted values, spaces, escapes and several challenges', () => {
    assert.deepEqual(parseWwwAuthenticate('Basic realm="Registry Realm"'), [
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('bearer realm=http://127.0.0.1:9/token , service = "a\\"b"'), [
      { scheme: 'bearer', params: { realm: 'http://127.0.0.1:9/token', service: 'a"b' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('Basic realm="x", Bearer realm="https://t/token",scope="a:b:pull,push"'), [
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'https://t/token', scope: 'a:b:pull,push' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('Negotiate, Basic realm="r"'), [
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'r' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate(''), []);
  });
});

describe('config.json credentials', () => {
  test('keys: Docker Hub is its legacy URL, others host[:port]', () => {
    assert.equal(authKey('docker.io'), DOCKER_HUB_AUTH_KEY);
    assert.equal(authKey('localhost:5000'), 'localhost:5000');
    assert.equal(keyHost('https://index.docker.io/v1/'), 'index.docker.io');
    assert.equal(keyHost('http://reg.local:5000'), 'reg.local:5000');
    assert.equal(dockerConfigPath({ DOCKER_CONFIG: '/x' }), '/x/config.json');
    assert.equal(dockerConfigPath({ HOME: '/home/u' }), '/home/u/.docker/config.json');
    assert.deepEqual(decodeAuth(encodeAuth('u', 'p:a:ss')), { username: 'u', password: 'p:a:ss' });
  });

  test('store, get (also from keys written by docker with a scheme), erase; other settings kept', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsfig-auth-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'config.json');
    await fs.writeFile(
      file,
      JSON.stringify({
        auths: { 'https://old.example:5000': { auth: encodeAuth('old', 'pw') } },
        detachKeys: 'ctrl-x',
      }),
    );
    const store = new CredentialStore({ file });
    assert.deepEqual(await store.get('old.example:5000'), { username: 'old', password: 'pw' });
    assert.equal(await store.get('none.example'), undefined);
    await store.store('docker.io', { username: 'hub', password: 'secret' });
    await store.store('reg.local:5000', { username: 'me', password: 'pw2' });
    const written = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    assert.equal(written.detachKeys, 'ctrl-x');
    assert.deepEqual((written.auths as Record<string, unknown>)[DOCKER_HUB_AUTH_KEY], {
      auth: Buffer.from('hub:secret').toString('base64'),
    });
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await store.get('docker.io'), { username: 'hub', password: 'secret' });
    assert.equal(await store.erase('reg.local:5000'), true);
    assert.equal(await store.get('reg.local:5000'), undefined);
    assert.equal(await store.erase('reg.local:5000'), false);
    assert.deepEqual(await store.get('docker.io'), { username: 'hub', password: 'secret' });
  });

  test('identity tokens and a missing file', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsfig-auth-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'config.json');
    assert.equal(await new CredentialStore({ file }).get('docker.io'), undefined);
    await fs.writeFile(file, JSON.stringify({ auths: { 'r.example': { identitytoken: 'refresh-me' } } }));
    assert.deepEqual(await new CredentialStore({ file }).get('r.example'), {
      username: '',
      password: '',
      identityToken: 'refresh-me',
    });
    await fs.writeFile(file, '{not json');
    await assert.rejects(new CredentialStore({ file }).get('r.example'), /is not valid JSON/);
  });

  test('credHelpers win over credsStore; helpers get the server on stdin', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsfig-auth-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const log = path.join(dir, 'log');
    for (const name of ['one', 'two']) {
      await fs.writeFile(
        path.join(dir, `docker-credential-${name}`),
        [
          '#!/bin/sh',
          'input=$(cat)',
          `echo "${name} $1 $input" >> ${log}`,
          `[ "$1" = get ] || exit 0`,
          `[ "$input" = missing.example ] && { echo "credentials not found in native keychain"; exit 1; }`,
          `printf '{"ServerURL":"%s","Username":"${name}-user","Secret":"${name}-secret"}' "$input"`,
        ].join('\n'),
        { mode: 0o755 },
      );
    }
    const file = path.join(dir, 'config.json');
    await fs.writeFile(file, JSON.stringify({ credsStore: 'one', credHelpers: { 'special.example': 'two' } }));
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` };
    const store = new CredentialStore({ file, env });
    assert.deepEqual(await store.get('reg.example'), { username: 'one-user', password: 'one-secret' });
    assert.deepEqual(await store.get('special.example'), { username: 'two-user', password: 'two-secret' });
    assert.equal(await store.get('missing.example'), undefined);
    await store.store('reg.example', { username: 'u', password: 'p' });
    const lines = (await fs.readFile(log, 'utf8')).trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['one get reg.example', 'two get special.example', 'one get missing.example']);
    assert.equal(lines[3], 'one store {"ServerURL":"reg.example","Username":"u","Secret":"p"}');
    // nothing in plain text in config.json
    assert.equal((JSON.parse(await fs.readFile(file, 'utf8')) as { auths?: unknown }).auths, undefined);
  });
});
