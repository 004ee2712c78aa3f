/**
 * Registry pull and push against Debian's `docker-registry` (CNCF distribution 2.8) run by each test on a free
 * 127.0.0.1 port with a config in a temp dir: plain HTTP, HTTPS with a test CA, htpasswd basic auth (bcrypt entry
 * from apache2-utils' `htpasswd -B`), Bearer tokens from a small token server in the test (JWTs signed RS256 with a
 * key whose certificate the registry trusts). Nothing but 127.0.0.1 is contacted.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync, promises as fs } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, test, type TestContext } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import {
  CredentialStore,
  MEDIA,
  RegistryClient,
  login,
  pullImage,
  pushImage,
  sha256Digest,
  uploadBlob,
  type PullEvent,
  type PushEvent,
} from '../../engine/registry/index.js';
import { parseReference } from '../../engine/images/reference.js';
import { chainIds } from '../../engine/images/layer.js';
import { packDirectory } from '../../engine/layers/pack.js';
import { readTarSplit, reassemble } from '../../engine/layers/tarsplit.js';
import { createEngine } from '../../engine/index.js';
import { Command } from 'commander';
import { registerRegistryCommands } from '../../src/cli/commands/registry.js';
import { registerPullPush } from '../../src/cli/compose/pull.js';
import { addGlobalOptions } from '../../src/cli/global-options.js';
import { BUSYBOX_TAR, makeTestEngine, skipUnlessRoot, type TestEngine } from '../helpers/engine.js';
import { freePort } from '../helpers/registry.js';

function which(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Registry {
  domain: string;
  dataDir: string;
  log(): string;
}

interface RegistryOptions {
  tls?: { cert: string; key: string };
  htpasswd?: string;
  token?: { realm: string; certBundle: string };
  /** Extra CA for the readiness probe. */
  ca?: string;
}

/** Starts `docker-registry serve` on a free loopback port; stopped and removed by t.after. */
async function startRegistry(t: TestContext, dir: string, options: RegistryOptions = {}): Promise<Registry> {
  const port = await freePort();
  const dataDir = path.join(dir, `registry-${port}`);
  await fs.mkdir(dataDir, { recursive: true });
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dataDir}/data`,
    '  delete:',
    '    enabled: true',
    '  cache:',
    '    blobdescriptor: inmemory',
    'http:',
    `  addr: 127.0.0.1:${port}`,
  ];
  if (options.tls !== undefined)
    lines.push('  tls:', `    certificate: ${options.tls.cert}`, `    key: ${options.tls.key}`);
  if (options.htpasswd !== undefined) {
    lines.push('auth:', '  htpasswd:', '    realm: tsfig-test', `    path: ${options.htpasswd}`);
  }
  if (options.token !== undefined) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${options.token.realm}`,
      '    service: tsfig-test-registry',
      '    issuer: tsfig-test-issuer',
      `    rootcertbundle: ${options.token.certBundle}`,
    );
  }
  const config = path.join(dataDir, 'config.yml');
  await fs.writeFile(config, `${lines.join('\n')}\n`);
  const logFile = path.join(dataDir, 'registry.log');
  const out = await fs.open(logFile, 'w');
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', out.fd, out.fd] });
  await out.close();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const scheme = options.tls !== undefined ? 'https' : 'http';
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const request = (scheme === 'https' ? https : http).get(
        `${scheme}://127.0.0.1:${port}/v2/`,
        options.ca !== undefined ? { ca: options.ca } : {},
        (res) => {
          res.resume();
          resolve(true);
        },
      );
      request.on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`docker-registry did not start: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { domain: `127.0.0.1:${port}`, dataDir, log: () => readFileSync(logFile, 'utf8') };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A test CA and a server certificate for 127.0.0.1 / localhost signed by it. */
async function makeCerts(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const certs = path.join(dir, 'certs');
  await fs.mkdir(certs, { recursive: true });
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=tsfig test CA',
    ],
    certs,
  );
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'],
    certs,
  );
  await fs.writeFile(path.join(certs, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    ],
    certs,
  );
  return { ca: path.join(certs, 'ca.crt'), cert: path.join(certs, 'server.crt'), key: path.join(certs, 'server.key') };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

interface TokenServer {
  realm: string;
  certBundle: string;
  requests: Array<{ scope: string[]; account: string | undefined }>;
}

/**
 * A token server: anyone gets `pull`; user `alice` with password `s3cret` gets what she asks for. Tokens are JWTs
 * signed RS256 with an x5c header holding the signing certificate, which the registry trusts (rootcertbundle).
 */
async function startTokenServer(t: TestContext, dir: string): Promise<TokenServer> {
  const certs = path.join(dir, 'token');
  await fs.mkdir(certs, { recursive: true });
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'token.key',
      '-out',
      'token.crt',
      '-days',
      '1',
      '-subj',
      '/CN=tsfig test token signer',
    ],
    certs,
  );
  const key = createPrivateKey(readFileSync(path.join(certs, 'token.key')));
  const pem = readFileSync(path.join(certs, 'token.crt'), 'utf8');
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const requests: TokenServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const scopes = url.searchParams.getAll('scope');
    const header = req.headers.authorization;
    let account: string | undefined;
    if (header !== undefined) {
      const [user, pass] = Buffer.from(header.replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':');
      if (user !== 'alice' || pass !== 's3cret') {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      account = user;
    }
    requests.push({ scope: scopes, account });
    const access = scopes.map((scope) => {
      const [type, name, actions] = scope.split(':');
      const wanted = (actions ?? '').split(',');
      return { type, name, actions: account === 'alice' ? wanted : wanted.filter((a) => a === 'pull') };
    });
    const now = Math.floor(Date.now() / 1000);
    const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] }));
    const claims = b64url(
      JSON.stringify({
        iss: 'tsfig-test-issuer',
        sub: account ?? '',
        aud: 'tsfig-test-registry',
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      }),
    );
    const signature = b64url(sign('sha256', Buffer.from(`${head}.${claims}`), key));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: `${head}.${claims}.${signature}`, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  server.unref();
  const { port } = server.address() as AddressInfo;
  return { realm: `http://127.0.0.1:${port}/token`, certBundle: path.join(certs, 'token.crt'), requests };
}

async function run(te: TestEngine, image: string, cmd: string[]): Promise<{ code: number; output: string }> {
  const record = await te.engine.containers.create({ image, cmd });
  try {
    await te.engine.containers.start(record.id);
    const code = await te.engine.containers.wait(record.id, { timeoutMs: 30_000 });
    let output = '';
    for await (const entry of te.engine.containers.logs(record.id)) output += entry.text;
    return { code, output };
  } finally {
    await te.engine.containers.remove(record.id, { force: true });
  }
}

async function setup(t: TestContext): Promise<TestEngine> {
  const te = await makeTestEngine();
  t.after(() => te.cleanup());
  return te;
}

function client(t: TestContext, options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({
    credentials: new CredentialStore({ file: '/nonexistent/tsfig-test/config.json' }),
    backoffMs: 20,
    ...options,
  });
  t.after(() => c.close());
  return c;
}

/** Removes every tag of the test image so that a pull has to fetch it. */
async function forget(te: TestEngine, ...refs: string[]): Promise<void> {
  for (const ref of refs) await te.engine.images.remove(ref, { force: true });
}

async function layerNames(te: TestEngine): Promise<string[]> {
  return (await fs.readdir(te.engine.paths.layers).catch(() => [])).sort();
}

/**
 * A loopback proxy in front of a registry. `hold` (a blob digest): its response is sent but for its last byte until
 * `release()` (or 20 s, so that a pull that waits for it does not hang the test). `cut` (a blob digest): its first
 * response breaks off half way, and every later request for it is forwarded without its Range header, as by a
 * server that cannot resume.
 */
async function startProxy(
  t: TestContext,
  upstream: string,
  options: { hold?: string; cut?: string },
): Promise<{ domain: string; release(): void; requests: string[] }> {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const fallback = setTimeout(release, 20_000);
  const requests: string[] = [];
  let cutDone = false;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push(`${req.method ?? ''} ${url}${req.headers.range !== undefined ? ` ${req.headers.range}` : ''}`);
    const cutting = options.cut !== undefined && url.endsWith(`/blobs/${options.cut}`) && req.method === 'GET';
    const headers = { ...req.headers, host: upstream };
    if (cutting && cutDone) delete headers.range;
    const forward = http.request(`http://${upstream}${url}`, { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      const holding = options.hold !== undefined && url.endsWith(`/blobs/${options.hold}`) && req.method === 'GET';
      if (!holding && !(cutting && !cutDone)) {
        up.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      up.on('data', (chunk: Buffer) => chunks.push(chunk));
      up.on('end', () => {
        const body = Buffer.concat(chunks);
        if (cutting) {
          cutDone = true;
          res.write(body.subarray(0, body.length >> 1), () => res.destroy());
          return;
        }
        res.write(body.subarray(0, body.length - 1));
        void released.then(() => res.end(body.subarray(body.length - 1)));
      });
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    clearTimeout(fallback);
    release();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as AddressInfo;
  return { domain: `127.0.0.1:${port}`, release, requests };
}

/** An image of busybox plus two layers of random data (64 KiB each), pushed to registry as name; its layer digests. */
async function pushLayered(te: TestEngine, c: RegistryClient, ref: string): Promise<string[]> {
  const base = await te.engine.images.resolve('tsfig/busybox:latest');
  const diffIds = [...base.diffIds];
  for (let i = 0; i < 2; i++) {
    const content = path.join(te.dir, `layer-${i}`);
    await fs.mkdir(content, { recursive: true });
    await fs.writeFile(path.join(content, `data-${i}`), randomBytes(64 * 1024));
    const layer = await te.engine.images.addLayer(packDirectory(content), chainIds(diffIds).at(-1) ?? null);
    diffIds.push(layer.diffId);
  }
  const config = { ...base.config, rootfs: { type: 'layers' as const, diff_ids: diffIds }, history: [] };
  await te.engine.images.addImage(Buffer.from(JSON.stringify(config)), { reference: ref });
  const pushed = await pushImage(c, te.engine.images, ref);
  const res = await c.request(ref.split('/')[0] ?? '', 'layered/app', `/v2/layered/app/manifests/${pushed.digest}`, {
    headers: { Accept: MEDIA.dockerManifest },
    what: 'test',
  });
  return (JSON.parse(await res.text()) as { layers: Array<{ digest: string }> }).layers.map((l) => l.digest);
}

describe('registry', { concurrency: false }, () => {
  test('plain HTTP: push (chunked), remove, pull by tag and by digest, run; re-push skips, another repo mounts', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const registry = await startRegistry(t, te.dir);
    const c = client(t);
    const ref = `${registry.domain}/test/busybox:1`;
    await te.engine.images.tag('tsfig/busybox:latest', ref);
    const pushEvents: PushEvent[] = [];
    const pushed = await pushImage(c, te.engine.images, ref, {
      chunkSize: 256 * 1024,
      onEvent: (e) => pushEvents.push(e),
    });
    assert.equal(pushed.mediaType, MEDIA.dockerManifest);
    assert.ok(
      pushEvents.some((e) => e.type === 'layer' && e.status === 'pushing' && (e.current ?? 0) < (e.total ?? 0)),
      'chunked',
    );
    assert.match(registry.log(), /"PATCH \/v2\/test\/busybox\/blobs\/uploads\//);

    await forget(te, ref, 'tsfig/busybox:latest');
    assert.deepEqual(await layerNames(te), []);
    const events: PullEvent[] = [];
    const pulled = await pullImage(c, te.engine.images, ref, { onEvent: (e) => events.push(e) });
    assert.equal(pulled.downloaded, true);
    assert.equal(pulled.digest, pushed.digest);
    assert.ok(events.some((e) => e.type === 'layer' && e.status === 'downloading' && e.total !== undefined));
    assert.deepEqual((await te.engine.images.resolve(ref)).id, pulled.image.id);
    const result = await run(te, ref, ['sh', '-c', 'echo pulled-ok']);
    assert.equal(result.code, 0);
    assert.equal(result.output.trim(), 'pulled-ok');

    // by digest: already there
    const again = await pullImage(c, te.engine.images, `${registry.domain}/test/busybox@${pushed.digest}`);
    assert.equal(again.downloaded, false);
    assert.equal(again.image.id, pulled.image.id);

    // gone, then by digest only
    await forget(te, ref);
    const byDigest = await pullImage(c, te.engine.images, `${registry.domain}/test/busybox@${pushed.digest}`);
    assert.equal(byDigest.downloaded, true);
    const digestRef = `${registry.domain}/test/busybox@${pushed.digest}`;
    assert.equal((await run(te, digestRef, ['sh', '-c', 'echo by-digest'])).output.trim(), 'by-digest');
    assert.deepEqual((await te.engine.images.inspect(digestRef)).RepoDigests, [digestRef]);
    assert.deepEqual((await te.engine.images.inspect(byDigest.image.id)).RepoTags, []);

    // push again: every blob exists; to another repository: mounted, not uploaded
    await te.engine.images.tag(byDigest.image.id, ref);
    const again2: PushEvent[] = [];
    const repushed = await pushImage(c, te.engine.images, ref, { onEvent: (e) => again2.push(e) });
    assert.equal(repushed.digest, pushed.digest);
    assert.ok(again2.every((e) => e.type !== 'layer' || e.status === 'exists'));
    const other = `${registry.domain}/other/busybox:2`;
    await te.engine.images.tag(ref, other);
    const mounted: PushEvent[] = [];
    await pushImage(c, te.engine.images, other, { onEvent: (e) => mounted.push(e) });
    assert.ok(
      mounted.some((e) => e.type === 'layer' && e.status === 'mounted'),
      JSON.stringify(mounted),
    );
    assert.match(registry.log(), /blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=test%2Fbusybox/);

    // a digest tsfig cannot verify is refused before any request
    await assert.rejects(
      pullImage(c, te.engine.images, `${registry.domain}/test/busybox@sha512:${'ab'.repeat(64)}`),
      (error: unknown) => isEngineError(error, 'unsupported') && /verifies sha256 digests only/.test(error.message),
    );
    // unknown tag: not-found naming the registry and the status
    await assert.rejects(pullImage(c, te.engine.images, `${registry.domain}/test/busybox:nope`), (error: unknown) => {
      assert.ok(isEngineError(error, 'not-found'));
      assert.match(
        error.message,
        new RegExp(`registry ${registry.domain.replace(/\./g, '\\.')} answered HTTP 404 pulling .*test/busybox:nope`),
      );
      return true;
    });
  });

  test('CLI: login (checked, stored), image push, image pull, logout', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const htpasswd = path.join(te.dir, 'htpasswd');
    await fs.writeFile(htpasswd, execFileSync('htpasswd', ['-Bbn', 'carol', 'pa55']));
    const registry = await startRegistry(t, te.dir, { htpasswd });
    const env = { ...te.env, DOCKER_CONFIG: path.join(te.dir, 'docker') };
    const cli = async (args: string[], stdin = ''): Promise<string> => {
      let output = '';
      const program = new Command().exitOverride();
      registerRegistryCommands(program, {
        paths: () => te.engine.paths,
        env,
        stdout: { write: (text: string) => (output += text) },
        stderr: { write: () => true },
        readStdin: () => stdin,
      });
      await program.parseAsync(args, { from: 'user' });
      return output;
    };
    await assert.rejects(
      cli(['login', '-u', 'carol', '--password-stdin', registry.domain], 'wrong\n'),
      /HTTP 401 logging in as carol/,
    );
    await assert.rejects(fs.stat(path.join(env.DOCKER_CONFIG, 'config.json')), /ENOENT/);
    assert.equal(
      await cli(['login', '-u', 'carol', '--password-stdin', `http://${registry.domain}/`], 'pa55\n'),
      'Login Succeeded\n',
    );
    const config = JSON.parse(await fs.readFile(path.join(env.DOCKER_CONFIG, 'config.json'), 'utf8')) as {
      auths: Record<string, { auth: string }>;
    };
    assert.equal(config.auths[registry.domain]?.auth, Buffer.from('carol:pa55').toString('base64'));

    const ref = `${registry.domain}/cli/busybox:v1`;
    await te.engine.images.tag('tsfig/busybox:latest', ref);
    const pushed = await cli(['image', 'push', ref]);
    assert.match(
      pushed,
      new RegExp(
        `^The push refers to repository \\[${registry.domain.replace(/\./g, '\\.')}/cli/busybox\\]\n[0-9a-f]{12}: Pushed\nv1: digest: sha256:[0-9a-f]{64} size: \\d+\n$`,
      ),
    );
    await forget(te, ref, 'tsfig/busybox:latest');
    const pulled = await cli(['image', 'pull', ref]);
    assert.match(
      pulled,
      /^v1: Pulling from cli\/busybox\n[0-9a-f]{12}: Download complete\n[0-9a-f]{12}: Pull complete\nDigest: sha256:[0-9a-f]{64}\nStatus: Downloaded newer image for 127\.0\.0\.1:\d+\/cli\/busybox:v1\n127\.0\.0\.1:\d+\/cli\/busybox:v1\n$/,
    );
    assert.equal(await cli(['image', 'pull', '-q', ref]), `${ref}\n`);
    assert.match(await cli(['image', 'pull', ref]), /Status: Image is up to date for/);
    assert.equal(await cli(['logout', registry.domain]), `Removing login credentials for ${registry.domain}\n`);
    assert.equal(await cli(['logout', registry.domain]), `Not logged in to ${registry.domain}\n`);
    await forget(te, ref);
    await assert.rejects(cli(['image', 'pull', ref]), /HTTP 401 pulling/);
  });

  test('compose: push services with image: and build:, pull all (parallel), --ignore-pull-failures', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const registry = await startRegistry(t, te.dir);
    const project = path.join(te.dir, 'project');
    await fs.mkdir(path.join(project, 'app'), { recursive: true });
    await fs.writeFile(path.join(project, 'app', 'Dockerfile'), 'FROM tsfig/busybox:latest\n');
    const app = `${registry.domain}/proj/app:1`;
    const db = `${registry.domain}/proj/db:1`;
    const compose = (extra = ''): string =>
      `name: regproj\nservices:\n  app:\n    image: ${app}\n    build: ./app\n    depends_on: [db]\n  db:\n    image: ${db}\n${extra}`;
    await fs.writeFile(path.join(project, 'compose.yaml'), compose());
    let stderr = '';
    const cli = async (args: string[]): Promise<void> => {
      const program = addGlobalOptions(new Command()).exitOverride();
      registerPullPush(program, {
        engine: () => Promise.resolve(te.engine),
        env: te.env,
        stderr: { write: (text: string) => (stderr += text) },
      });
      await program.parseAsync(['-f', path.join(project, 'compose.yaml'), ...args], { from: 'user' });
    };
    await te.engine.images.tag('tsfig/busybox:latest', app);
    await te.engine.images.tag('tsfig/busybox:latest', db);
    await cli(['push', '--dry-run']);
    assert.equal(stderr, '', 'a dry run pushes nothing (its plan is on stdout)');
    await cli(['push']);
    assert.match(stderr, new RegExp(` Image ${app.replace(/\./g, '\\.')}  Pushed sha256:[0-9a-f]{64}\n`));
    assert.doesNotMatch(stderr, /proj\/db/, 'db has no build: it is not pushed');
    await pushImage(client(t), te.engine.images, db);
    await forget(te, app, db, 'tsfig/busybox:latest');
    stderr = '';
    await cli(['pull', 'app', '--include-deps']);
    assert.match(stderr, / app Pulling\n/);
    assert.match(stderr, / db Pulling\n/);
    assert.match(stderr, / db Pulled\n/);
    assert.equal((await te.engine.images.resolve(app)).id, (await te.engine.images.resolve(db)).id);
    stderr = '';
    await cli(['pull', '--policy', 'missing']);
    assert.equal(stderr, '');
    await cli(['pull', '-q']);
    assert.equal(stderr, '');
    // a service whose image is not in the registry
    await fs.writeFile(
      path.join(project, 'compose.yaml'),
      compose(`  ghost:\n    image: ${registry.domain}/proj/ghost:1\n`),
    );
    await assert.rejects(cli(['pull', 'ghost']), /HTTP 404 pulling .*proj\/ghost:1/);
    stderr = '';
    await cli(['pull', '--ignore-pull-failures']);
    assert.match(stderr, / ghost Error registry .* answered HTTP 404/);
    // one line per failure (the pull's), not the plan operation's too
    assert.equal(stderr.match(/HTTP 404/g)?.length, 1, stderr);
  });

  test('an unreachable registry: an error that says so and how to get the image in', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const port = await freePort();
    await assert.rejects(pullImage(client(t), te.engine.images, `127.0.0.1:${port}/x/y:1`), (error: unknown) => {
      assert.ok(isEngineError(error, 'runtime'));
      assert.match(error.message, new RegExp(`registry 127\\.0\\.0\\.1:${port} is unreachable pulling`));
      assert.match(error.hint ?? '', /tsfig image import FILE NAME/);
      assert.match(error.hint ?? '', /tsfig build/);
      return true;
    });
  });

  test('HTTPS with a test CA: push and pull; without the CA, a certificate error', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const certs = await makeCerts(te.dir);
    const ca = readFileSync(certs.ca, 'utf8');
    const registry = await startRegistry(t, te.dir, { tls: { cert: certs.cert, key: certs.key }, ca });
    const ref = `${registry.domain}/tls/busybox:1`;
    await te.engine.images.tag('tsfig/busybox:latest', ref);
    await assert.rejects(pushImage(client(t), te.engine.images, ref), (error: unknown) => {
      assert.ok(isEngineError(error, 'permission'), String(error));
      assert.match(error.message, /TLS certificate of registry 127\.0\.0\.1/);
      return true;
    });
    const c = client(t, { ca });
    const pushed = await pushImage(c, te.engine.images, ref);
    await forget(te, ref, 'tsfig/busybox:latest');
    const pulled = await pullImage(c, te.engine.images, ref);
    assert.equal(pulled.digest, pushed.digest);
    assert.equal((await run(te, ref, ['sh', '-c', 'echo tls-ok'])).output.trim(), 'tls-ok');
    // a TLS registry is never spoken to in plain HTTP
    assert.doesNotMatch(registry.log(), /http: TLS handshake error.*first record does not look like a TLS handshake/);
  });

  test('htpasswd basic auth: refused without credentials; config.json auths and a credential helper work', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const htpasswd = path.join(te.dir, 'htpasswd');
    await fs.writeFile(htpasswd, execFileSync('htpasswd', ['-Bbn', 'bob', 'hunter2']));
    const registry = await startRegistry(t, te.dir, { htpasswd });
    const ref = `${registry.domain}/basic/busybox:1`;
    await te.engine.images.tag('tsfig/busybox:latest', ref);
    await assert.rejects(pushImage(client(t), te.engine.images, ref), (error: unknown) => {
      assert.ok(isEngineError(error, 'permission'));
      assert.match(error.message, /answered HTTP 401 pushing/);
      assert.match(error.hint ?? '', /tsfig login 127\.0\.0\.1/);
      return true;
    });
    // credentials in config.json (what tsfig login writes)
    const configFile = path.join(te.dir, 'docker', 'config.json');
    const store = new CredentialStore({ file: configFile });
    await store.store(registry.domain, { username: 'bob', password: 'hunter2' });
    const written = JSON.parse(await fs.readFile(configFile, 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.equal(written.auths[registry.domain]?.auth, Buffer.from('bob:hunter2').toString('base64'));
    const c = client(t, { credentials: store });
    await pushImage(c, te.engine.images, ref);
    await forget(te, ref, 'tsfig/busybox:latest');
    await pullImage(c, te.engine.images, ref);
    assert.equal((await run(te, ref, ['true'])).code, 0);

    // a credential helper (credsStore): docker-credential-tsfigtest get
    const bin = path.join(te.dir, 'bin');
    await fs.mkdir(bin);
    await fs.writeFile(
      path.join(bin, 'docker-credential-tsfigtest'),
      `#!/bin/sh\nread server\necho "$server" >> ${te.dir}/helper.log\n[ "$1" = get ] && printf '{"ServerURL":"%s","Username":"bob","Secret":"hunter2"}' "$server"\n`,
      { mode: 0o755 },
    );
    const helperConfig = path.join(te.dir, 'docker2', 'config.json');
    await fs.mkdir(path.dirname(helperConfig));
    await fs.writeFile(helperConfig, JSON.stringify({ credsStore: 'tsfigtest' }));
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
    const viaHelper = client(t, { credentials: new CredentialStore({ file: helperConfig, env }) });
    await forget(te, ref);
    await pullImage(viaHelper, te.engine.images, ref);
    assert.equal((await fs.readFile(path.join(te.dir, 'helper.log'), 'utf8')).trim(), registry.domain);
  });

  test('Bearer tokens: anonymous pull, push with credentials, tokens cached per scope', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const tokens = await startTokenServer(t, te.dir);
    const registry = await startRegistry(t, te.dir, { token: tokens });
    const ref = `${registry.domain}/tok/busybox:1`;
    await te.engine.images.tag('tsfig/busybox:latest', ref);
    await assert.rejects(pushImage(client(t), te.engine.images, ref), (error: unknown) => {
      assert.ok(isEngineError(error, 'permission'), String(error));
      assert.match(error.message, /HTTP 401 pushing/);
      return true;
    });
    const configFile = path.join(te.dir, 'docker', 'config.json');
    const store = new CredentialStore({ file: configFile });
    await store.store(registry.domain, { username: 'alice', password: 's3cret' });
    const before = tokens.requests.length;
    const pushed = await pushImage(client(t, { credentials: store }), te.engine.images, ref);
    const pushTokens = tokens.requests.slice(before);
    assert.ok(pushTokens.length <= 2, `one token per scope, got ${JSON.stringify(pushTokens)}`);
    assert.ok(pushTokens.every((r) => r.account === 'alice'));
    await forget(te, ref, 'tsfig/busybox:latest');
    const anonymous = client(t);
    const pulled = await pullImage(anonymous, te.engine.images, ref);
    assert.equal(pulled.digest, pushed.digest);
    assert.equal((await run(te, ref, ['true'])).code, 0);
    assert.deepEqual(tokens.requests.at(-1), { scope: ['repository:tok/busybox:pull'], account: undefined });
    // login through the token flow (a token with no scope): checked, then stored
    const loginFile = path.join(te.dir, 'docker-login', 'config.json');
    const loginStore = new CredentialStore({ file: loginFile });
    await assert.rejects(
      login(client(t), loginStore, registry.domain, { username: 'alice', password: 'nope' }),
      /cannot get a token/,
    );
    await assert.rejects(fs.stat(loginFile), /ENOENT/);
    await login(client(t), loginStore, registry.domain, { username: 'alice', password: 's3cret' });
    assert.deepEqual(await loginStore.get(registry.domain), { username: 'alice', password: 's3cret' });
    assert.deepEqual(tokens.requests.at(-1), { scope: [], account: 'alice' });
    // wrong password: the token server's refusal names the registry
    await store.store(registry.domain, { username: 'alice', password: 'wrong' });
    await assert.rejects(pullImage(client(t, { credentials: store }), te.engine.images, ref), (error: unknown) => {
      assert.ok(isEngineError(error, 'permission'));
      assert.match(
        error.message,
        new RegExp(`cannot get a token .* for ${registry.domain.replace(/\./g, '\\.')} pulling`),
      );
      return true;
    });
  });

  test('a multi-arch index: only the matching platform is fetched; --platform picks another (zstd layer)', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const registry = await startRegistry(t, te.dir);
    const c = client(t);
    const repo = `${registry.domain}/multi/busybox`;
    const ref = parseReference(`${repo}:index`);
    await te.engine.images.tag('tsfig/busybox:latest', `${repo}:amd64`);
    const amd = await pushImage(c, te.engine.images, `${repo}:amd64`, { format: 'oci' });
    // an arm64 image by hand: the busybox tar as a zstd layer
    const tar = readFileSync(BUSYBOX_TAR);
    const zst = execFileSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 64 * 1024 * 1024 });
    const armLayer = { mediaType: MEDIA.ociLayerZstd, digest: sha256Digest(zst), size: zst.length };
    const armConfigBytes = Buffer.from(
      JSON.stringify({
        architecture: 'arm64',
        os: 'linux',
        config: { Cmd: ['sh', '-c', 'echo arm64-config'] },
        rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}`] },
      }),
    );
    const armConfig = { mediaType: MEDIA.ociConfig, digest: sha256Digest(armConfigBytes), size: armConfigBytes.length };
    await uploadBlob(c, ref, armLayer, { data: zst }, { chunkSize: 1 << 30, what: 'test' });
    await uploadBlob(c, ref, armConfig, { data: armConfigBytes }, { chunkSize: 1 << 30, what: 'test' });
    const put = async (tag: string, mediaType: string, body: Buffer): Promise<void> => {
      const res = await c.request(ref.domain, ref.path, `/v2/${ref.path}/manifests/${tag}`, {
        method: 'PUT',
        actions: 'pull,push',
        headers: { 'Content-Type': mediaType },
        body: () => body,
        ok: [201],
        what: 'test',
      });
      res.body.resume();
    };
    const armManifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: armConfig, layers: [armLayer] }),
    );
    await put('arm64', MEDIA.ociManifest, armManifest);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [
          {
            mediaType: MEDIA.ociManifest,
            digest: sha256Digest(armManifest),
            size: armManifest.length,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
          {
            mediaType: MEDIA.ociManifest,
            digest: sha256Digest(armManifest),
            size: armManifest.length,
            platform: { os: 'unknown', architecture: 'unknown' },
            annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
          },
          {
            mediaType: MEDIA.ociManifest,
            digest: amd.digest,
            size: amd.size,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    await put('index', MEDIA.ociIndex, index);
    await forget(te, `${repo}:amd64`, 'tsfig/busybox:latest');
    const logBefore = registry.log().length;

    const events: PullEvent[] = [];
    const pulled = await pullImage(c, te.engine.images, `${repo}:index`, {
      platform: 'linux/amd64',
      onEvent: (e) => events.push(e),
    });
    assert.equal(pulled.digest, sha256Digest(index));
    assert.equal(pulled.image.config.architecture, 'amd64');
    const fetched = registry.log().slice(logBefore);
    assert.ok(
      !fetched.includes(armLayer.digest) && !fetched.includes(armConfig.digest),
      'nothing of arm64 was fetched',
    );
    assert.ok(!fetched.includes(sha256Digest(armManifest)), 'not even its manifest');
    assert.ok(fetched.includes(amd.digest));
    assert.equal((await run(te, `${repo}:index`, ['sh', '-c', 'echo amd-ok'])).output.trim(), 'amd-ok');

    const arm = await pullImage(c, te.engine.images, `${repo}:index`, { platform: 'linux/arm64' });
    assert.equal(arm.image.id, armConfig.digest);
    assert.equal(arm.image.config.architecture, 'arm64');
    // the zstd layer unpacked to the same content (DiffID): the busybox binary runs (it is amd64 really)
    assert.equal((await run(te, arm.image.id, ['sh', '-c', 'echo zstd-ok'])).output.trim(), 'zstd-ok');

    await assert.rejects(
      pullImage(c, te.engine.images, `${repo}:index`, { platform: 'linux/s390x' }),
      (error: unknown) => {
        assert.ok(isEngineError(error, 'not-found'));
        assert.match(error.message, /no matching manifest for linux\/s390x/);
        assert.equal(
          error.hint,
          'the image is available for: linux/arm64/v8, linux/amd64 (choose one with --platform)',
        );
        return true;
      },
    );
  });

  test('a tampered blob is rejected and nothing is committed to the store', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const registry = await startRegistry(t, te.dir);
    const c = client(t);
    const ref = `${registry.domain}/tamper/busybox:1`;
    await te.engine.images.tag('tsfig/busybox:latest', ref);
    const pushed = await pushImage(c, te.engine.images, ref);
    const manifestRes = await c.request(
      registry.domain,
      'tamper/busybox',
      `/v2/tamper/busybox/manifests/${pushed.digest}`,
      {
        headers: { Accept: MEDIA.dockerManifest },
        what: 'test',
      },
    );
    const manifest = JSON.parse(await manifestRes.text()) as { layers: Array<{ digest: string; size: number }> };
    const layer = manifest.layers[0];
    assert.ok(layer !== undefined);
    const hex = layer.digest.slice('sha256:'.length);
    const dataFile = path.join(
      registry.dataDir,
      'data',
      'docker',
      'registry',
      'v2',
      'blobs',
      'sha256',
      hex.slice(0, 2),
      hex,
      'data',
    );
    const original = await fs.readFile(dataFile);
    const corrupt = Buffer.from(original);
    const middle = Math.floor(corrupt.length / 2);
    corrupt[middle] = (corrupt[middle] ?? 0) ^ 0xff;
    await fs.writeFile(dataFile, corrupt);

    await forget(te, ref, 'tsfig/busybox:latest');
    const layersBefore = await layerNames(te);
    const imagesBefore = await te.engine.images.list();
    await assert.rejects(pullImage(c, te.engine.images, ref), (error: unknown) => {
      assert.ok(isEngineError(error, 'invalid'));
      assert.match(
        error.message,
        new RegExp(`blob digest mismatch pulling .*tamper/busybox:1: expected ${layer.digest}`),
      );
      return true;
    });
    assert.deepEqual(await layerNames(te), layersBefore);
    assert.deepEqual(await te.engine.images.list(), imagesBefore);
    assert.deepEqual(await fs.readdir(path.join(te.engine.paths.root, 'tmp')), []);
    // a truncated blob too
    await fs.writeFile(dataFile, original.subarray(0, original.length - 10));
    await assert.rejects(pullImage(c, te.engine.images, ref), /broke off after \d+ of \d+ bytes pulling/);
    assert.deepEqual(await layerNames(te), layersBefore);
  });

  test('a layer whose content is not the DiffID its config lists is refused, whoever gunzips it; nothing is committed', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const registry = await startRegistry(t, te.dir);
    const c = client(t);
    const ref = parseReference(`${registry.domain}/diffid/busybox:1`);
    // every blob is what its manifest says (their digests verify); the config lists the DiffID of another tar
    const tar = readFileSync(BUSYBOX_TAR);
    const other = Buffer.concat([tar, Buffer.alloc(512)]); // the same files, one more zero block at the end
    const gz = gzipSync(tar);
    const layer = { mediaType: MEDIA.ociLayerGzip, digest: sha256Digest(gz), size: gz.length };
    const configBytes = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['true'] },
        rootfs: { type: 'layers', diff_ids: [sha256Digest(other)] },
      }),
    );
    const config = { mediaType: MEDIA.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length };
    await uploadBlob(c, ref, layer, { data: gz }, { chunkSize: 1 << 30, what: 'test' });
    await uploadBlob(c, ref, config, { data: configBytes }, { chunkSize: 1 << 30, what: 'test' });
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config, layers: [layer] }),
    );
    const res = await c.request(ref.domain, ref.path, `/v2/${ref.path}/manifests/1`, {
      method: 'PUT',
      actions: 'pull,push',
      headers: { 'Content-Type': MEDIA.ociManifest },
      body: () => manifest,
      ok: [201],
      what: 'test',
    });
    res.body.resume();
    await fs.writeFile(path.join(te.dir, 'layer.tar.gz'), gz);
    const layersBefore = await layerNames(te);
    const imagesBefore = await te.engine.images.list();
    // Three ways to gunzip and hash: the native unpacker with ISA-L (when installed), with zlib, or the engine itself
    // (zlib, node:crypto) when the helper has no libcrypto. The variables are read by the helper, which the engine
    // spawns with this environment.
    const modes: Record<string, Record<string, string>> = {
      'native, ISA-L': {},
      'native, zlib': { TSFIG_UNPACK_NO_ISAL: '1' },
      engine: { TSFIG_UNPACK_NO_SHA256: '1' },
    };
    for (const [mode, env] of Object.entries(modes)) {
      Object.assign(process.env, env);
      try {
        await assert.rejects(
          pullImage(c, te.engine.images, `${registry.domain}/diffid/busybox:1`),
          (error: unknown) => {
            assert.ok(isEngineError(error, 'invalid'), mode);
            assert.match(
              error.message,
              new RegExp(`layer digest mismatch: expected ${sha256Digest(other)}, got ${sha256Digest(tar)}`),
              mode,
            );
            return true;
          },
        );
        assert.deepEqual(await layerNames(te), layersBefore, mode);
        assert.deepEqual(await te.engine.images.list(), imagesBefore, mode);
        assert.deepEqual(await fs.readdir(path.join(te.engine.paths.root, 'tmp')), [], mode);
        // the same gzip layer, imported into a root of its own: its DiffID, and a tar-split that gives the tar back
        const root = path.join(te.dir, `import-${Object.keys(env).join('-') || 'default'}`);
        const engine = createEngine({ env: { ...process.env, TSFIG_ROOT: root } });
        const image = await engine.images.importRootfs({ kind: 'file', path: path.join(te.dir, 'layer.tar.gz') });
        assert.deepEqual(image.diffIds, [sha256Digest(tar)], mode);
        const chunks: Buffer[] = [];
        for await (const chunk of reassemble(
          (await readTarSplit(path.join(root, 'layers', sha256Digest(tar).slice(7)))) ?? [],
          path.join(root, 'layers', sha256Digest(tar).slice(7), 'diff'),
        ))
          chunks.push(chunk);
        assert.equal(sha256Digest(Buffer.concat(chunks)), sha256Digest(tar), mode);
      } finally {
        for (const key of Object.keys(env)) delete process.env[key];
      }
    }
  });

  test('a cold pull unpacks a layer while a later layer still downloads, and commits bottom first', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const registry = await startRegistry(t, te.dir);
    const c = client(t);
    const digests = await pushLayered(te, c, `${registry.domain}/layered/app:1`);
    const top = digests.at(-1) as string;
    const proxy = await startProxy(t, registry.domain, { hold: top });
    const root = path.join(te.dir, 'cold');
    const cold = createEngine({ env: { ...process.env, TSFIG_ROOT: root } });
    const events: string[] = [];
    const pulled = await pullImage(c, cold.images, `${proxy.domain}/layered/app:1`, {
      onEvent: (event) => {
        if (event.type !== 'layer') return;
        if (event.status !== 'downloading') events.push(`${digests.indexOf(event.digest)} ${event.status}`);
        // the top layer's last byte comes only once the bottom layer is in the store
        if (event.digest === digests[0] && event.status === 'done') proxy.release();
      },
    });
    assert.ok(
      events.indexOf('0 done') < events.indexOf('2 verified'),
      `the bottom layer was committed before the top one had downloaded: ${events.join(', ')}`,
    );
    for (let i = 0; i < digests.length; i++) {
      assert.ok(events.indexOf(`${i} verified`) < events.indexOf(`${i} done`), `layer ${i} verified first`);
      if (i > 0) assert.ok(events.indexOf(`${i - 1} done`) < events.indexOf(`${i} done`), `layer ${i} after ${i - 1}`);
    }
    assert.equal(pulled.image.diffIds.length, 3);
    for (const [i, chain] of pulled.image.chainIds.slice(1).entries()) {
      await fs.access(path.join(root, 'layers', chain.slice('sha256:'.length), 'diff', `data-${i}`));
    }
    assert.deepEqual(await fs.readdir(path.join(root, 'tmp')), []);
  });

  test('a layer whose download cannot resume (the server ignores Range) is downloaded again and unpacked from a file', async (t) => {
    if (skipUnlessRoot(t)) return;
    const te = await setup(t);
    const registry = await startRegistry(t, te.dir);
    const c = client(t);
    const digests = await pushLayered(te, c, `${registry.domain}/layered/app:1`);
    const cut = digests[1] as string;
    const proxy = await startProxy(t, registry.domain, { cut });
    const root = path.join(te.dir, 'cold');
    const cold = createEngine({ env: { ...process.env, TSFIG_ROOT: root } });
    const pulled = await pullImage(c, cold.images, `${proxy.domain}/layered/app:1`);
    const gets = proxy.requests.filter((line) => line.startsWith(`GET /v2/layered/app/blobs/${cut}`));
    assert.ok(gets.length >= 2 && gets.slice(1).some((line) => / bytes=\d+-$/.test(line)), gets.join('\n'));
    const chain = pulled.image.chainIds[1] as string;
    await fs.access(path.join(root, 'layers', chain.slice('sha256:'.length), 'diff', 'data-0'));
    assert.deepEqual(await fs.readdir(path.join(root, 'tmp')), []);
  });

  test('skopeo interoperability: images skopeo pushes are pulled by tsfig, and the other way round', async (t) => {
    if (skipUnlessRoot(t)) return;
    if (!which('skopeo')) {
      t.skip('skopeo is not installed (apt-get install skopeo)');
      return;
    }
    const te = await setup(t);
    const registry = await startRegistry(t, te.dir);
    const c = client(t);
    // an OCI layout of busybox for skopeo to push
    const layout = path.join(te.dir, 'oci');
    const blobs = path.join(layout, 'blobs', 'sha256');
    await fs.mkdir(blobs, { recursive: true });
    const tar = readFileSync(BUSYBOX_TAR);
    const gz = gzipSync(tar);
    const putBlob = async (data: Buffer): Promise<string> => {
      const digest = sha256Digest(data);
      await fs.writeFile(path.join(blobs, digest.slice(7)), data);
      return digest;
    };
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['sh', '-c', 'echo from-skopeo'] },
        rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] },
      }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: await putBlob(config), size: config.length },
        layers: [{ mediaType: MEDIA.ociLayerGzip, digest: await putBlob(gz), size: gz.length }],
      }),
    );
    const manifestDigest = await putBlob(manifest);
    await fs.writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await fs.writeFile(
      path.join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: MEDIA.ociManifest,
            digest: manifestDigest,
            size: manifest.length,
            annotations: { 'org.opencontainers.image.ref.name': 'latest' },
          },
        ],
      }),
    );
    const skopeo = (args: string[]): string =>
      execFileSync('skopeo', ['--insecure-policy', ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      });
    skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${registry.domain}/skopeo/busybox:1`]);
    const pulled = await pullImage(c, te.engine.images, `${registry.domain}/skopeo/busybox:1`);
    assert.equal(pulled.image.id, sha256Digest(config));
    assert.equal((await run(te, pulled.image.id, ['sh', '-c', 'echo skopeo-pull-ok'])).output.trim(), 'skopeo-pull-ok');

    // tsfig pushes, skopeo copies it to a dir (it verifies every digest) and inspects it
    const ref = `${registry.domain}/tsfig/busybox:1`;
    await te.engine.images.tag('tsfig/busybox:latest', ref);
    const pushed = await pushImage(c, te.engine.images, ref);
    const out = path.join(te.dir, 'skopeo-dir');
    skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${out}`]);
    const copied = JSON.parse(await fs.readFile(path.join(out, 'manifest.json'), 'utf8')) as { layers: unknown[] };
    assert.equal(copied.layers.length, 1);
    const inspected = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])) as {
      Digest: string;
      Architecture: string;
    };
    assert.equal(inspected.Digest, pushed.digest);
    assert.equal(inspected.Architecture, 'amd64');
  });
});
