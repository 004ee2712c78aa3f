// Item 6 of issue #15: tsfig's locks and its resolver's liveness were abstract unix sockets with predictable names
// (`\0tsfig-lock-<sha256(name)>`), which any local user can bind first: `volume create` and `network create` then
// waited for a lock nobody of tsfig held, and a squatted `tsfig-dns-<root>` made tsfig believe its resolver ran, so
// containers had no name resolution. Locks are now hard links to a listening socket in a root-only directory
// (engine/state/lock.ts), which another uid can neither create nor reach. A second local uid binds every one of the
// old names first and tries the new directory; tsfig must still lock, start its resolver and answer names.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, type TestEngine } from '../helpers/engine.js';
import { lockDirectory } from '../../engine/state/lock.js';
import { HOST_LOCK } from '../../engine/network/registry.js';
import { dnsLockName } from '../../engine/network/dns.js';
import { probeUser } from './helpers.js';

/** The abstract name tsfig used for a lock. */
function abstractName(lock: string): string {
  return `\0tsfig-lock-${createHash('sha256').update(lock).digest('hex').slice(0, 40)}`;
}

/**
 * Runs as the probe user: binds every abstract name given (JSON on argv), tries to create a socket and to list in the
 * locks directory, prints what it got as one JSON line, then holds the names until killed.
 */
const SQUATTER = `
const net = require('node:net');
const fs = require('node:fs');
const names = JSON.parse(process.argv[1]);
const lockDir = process.argv[2];
let bound = 0;
const servers = names.map((name) => new Promise((resolve) => {
  const server = net.createServer((socket) => socket.destroy());
  server.once('error', () => resolve());
  server.listen(name, () => { bound++; resolve(); });
}));
Promise.all(servers).then(() => {
  const tryIt = (fn) => { try { fn(); return 'ok'; } catch (error) { return error.code; } };
  const list = tryIt(() => fs.readdirSync(lockDir));
  const create = tryIt(() => fs.writeFileSync(lockDir + '/squat', ''));
  const server = net.createServer();
  server.once('error', (error) => report(error.code));
  server.listen(lockDir + '/squat.sock', () => report('ok'));
  function report(listen) {
    console.log(JSON.stringify({ bound, list, create, listen }));
  }
});
setInterval(() => {}, 1000);
`;

describe('lock names another local user binds first (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let squatter: ChildProcess | undefined;

  before(async () => {
    t = await makeTestEngine();
  });

  after(async () => {
    squatter?.kill('SIGKILL');
    await t.cleanup();
  });

  /** Starts the squatter on the abstract names of locks; resolves with what it got. */
  async function squat(locks: readonly string[]): Promise<unknown> {
    const { uid, gid } = probeUser();
    squatter?.kill('SIGKILL');
    squatter = spawn(
      'setpriv',
      [
        `--reuid=${uid}`,
        `--regid=${gid}`,
        '--clear-groups',
        '--inh-caps=-all',
        '--',
        '/usr/bin/node',
        '-e',
        SQUATTER,
        JSON.stringify(locks.map(abstractName)),
        lockDirectory(),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const report = await new Promise<string>((resolve) =>
      squatter?.stdout?.setEncoding('utf8').once('data', (line: string) => resolve(line.trim())),
    );
    return JSON.parse(report);
  }

  const quick = { timeoutMs: 30_000 };

  async function cli(...args: string[]): Promise<void> {
    const result = await t.cli(args, quick);
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
  }

  test('a squatted resolver liveness name: the resolver still starts and answers names', async () => {
    // tsfig took the bound name for its running resolver and never started one: no name resolved in containers
    const got = await squat([dnsLockName(t.engine.paths.rootId)]);
    assert.deepEqual(got, { bound: 1, list: 'EACCES', create: 'EACCES', listen: 'EACCES' });
    await cli('network', 'create', 'squat-net');
    await cli('container', 'run', '-d', '--network', 'squat-net', '--name', 'squat-a', 'tsfig/busybox', 'sleep', '600');
    try {
      let answer = '';
      for (let i = 0; i < 50 && answer === ''; i++) {
        // busybox nslookup asks the nameserver of resolv.conf (the resolver on the gateway), never /etc/hosts
        const lookup = await t.cli(['container', 'exec', 'squat-a', 'nslookup', 'squat-a'], quick);
        answer = lookup.code === 0 ? lookup.stdout : '';
        if (answer === '') await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.match(answer, /Name:\s+squat-a\nAddress: \d+\.\d+\.\d+\.\d+/, 'the embedded resolver answers');
    } finally {
      await cli('container', 'rm', '-f', 'squat-a');
      await cli('network', 'rm', 'squat-net');
    }
  });

  test('every lock name squatted: volume, network and container commands still lock and finish', async () => {
    const { root, rootId } = t.engine.paths;
    const locks = [
      dnsLockName(rootId),
      `tsfig-net-${rootId}`,
      HOST_LOCK,
      `volumes:${root}`,
      `images:${root}`,
      `${rootId}:container-names`,
      `${rootId}:hosts`,
    ];
    // it holds every old name; the directory of the new ones is closed to it
    assert.deepEqual(await squat(locks), { bound: locks.length, list: 'EACCES', create: 'EACCES', listen: 'EACCES' });
    // each of these waited for one of the squatted locks (for 120 s, then failed)
    await cli('volume', 'create', 'squat-vol');
    await cli('volume', 'rm', 'squat-vol');
    await cli('network', 'create', 'squat-net2');
    await cli('container', 'run', '--rm', '--network', 'squat-net2', 'tsfig/busybox', 'true');
    await cli('network', 'rm', 'squat-net2');
  });
});
